"""STYLE G1: layers import inwards only. Walks the AST of every module of the package.

domain  ←  application  ←  adapters  ←  bootstrap  ←  api / s3 / cli / worker
config, logs and deploy stand alone (config_errors, the one exception config raises,
is apart so the CLI can name it without pydantic); the entry points may use them, and deploy's
image entry point reads the server's settings (config) to prepare its directories.
testing (the launcher of tests, bench and scripts) stands alone too, and nothing
imports it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "juststorage"
ANY = None  # any third-party package but the layer's banned ones
# Database, object-store and token drivers: adapters only.
DRIVERS = {"sqlite3", "asyncpg", "psycopg", "obstore", "aiobotocore", "botocore", "jwt"}
FRAMEWORKS = {"starlette", "click", "granian"}  # the entry points' own

# layer → (parts of the package it may import besides itself, third-party it may import)
RULES: dict[str, tuple[set[str], set[str] | None]] = {
    "domain": (set(), set()),
    "application": ({"domain"}, {"anyio"}),
    "adapters": ({"domain", "application"}, ANY),
    "config_errors": (set(), set()),
    "config": ({"config_errors"}, {"pydantic"}),
    "logs": ({"domain"}, set()),
    # The image's entry point prepares the directories the server's settings name.
    "deploy": ({"config"}, {"yaml", "tomli_w"}),
    # The launcher of tests, bench and scripts: it runs the CLI as a process and
    # talks HTTP to it, so it imports nothing of the package.
    "testing": (set(), {"httpx"}),
    "bootstrap": ({"domain", "application", "adapters", "config"}, set()),
    "worker": ({"domain", "application", "bootstrap"}, set()),
    # api/app.py starts the S3 listener of each worker (imported only when configured).
    "api": (
        {"__init__", "domain", "application", "bootstrap", "config", "logs", "worker", "s3"},
        ANY,
    ),
    # The S3 gateway: an entry point beside the API, whose services and state it shares.
    "s3": (
        {"__init__", "domain", "application", "bootstrap", "config", "logs", "worker", "api"},
        ANY,
    ),
    "cli": (
        {
            "__init__",
            "domain",
            "application",
            "bootstrap",
            "config",
            "config_errors",
            "logs",
            "deploy",
            "worker",
            "s3",
        },
        ANY,
    ),
    "__main__": ({"cli"}, set()),
    "__init__": (set(), set()),
}
BANNED = {
    "adapters": FRAMEWORKS,
    "api": DRIVERS | {"click", "granian"},
    "s3": DRIVERS | {"click", "granian"},
    "cli": DRIVERS | {"starlette"},
}
# Imports the rules do not allow, each with its way out. Nothing else may join.
KNOWN: dict[str, set[str]] = {}


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of every module `source` imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                source_module = ".".join([*base, node.module] if node.module else base)
            else:
                assert node.module is not None
                source_module = node.module
            if source_module == "juststorage":  # `from juststorage import bootstrap`
                names.update(f"juststorage.{alias.name}" for alias in node.names)
            else:
                names.add(source_module)
    return names


def layer_of(module: str) -> str:
    """`juststorage.adapters.metadata.sqlite` → `adapters`; `juststorage` and the names
    its `__init__` defines (`juststorage.__version__`) → `__init__`."""
    parts = module.split(".")
    if len(parts) > 1 and ((PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").exists()):
        return parts[1]
    return "__init__"


def violations(layer: str, names: set[str]) -> list[str]:
    internal, third_party = RULES[layer]
    bad = []
    for name in sorted(names):
        top = name.split(".")[0]
        if top == "juststorage":
            part = layer_of(name)
            if part != layer and part not in internal:
                bad.append(name)
        elif top in BANNED.get(layer, DRIVERS | FRAMEWORKS):
            bad.append(name)
        elif top == "__future__" or top in sys.stdlib_module_names:
            continue
        elif third_party is not ANY and top not in third_party:
            bad.append(name)
    return bad


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def test_every_module_belongs_to_a_layer() -> None:
    assert {layer_of(m) for m in package_modules()} == set(RULES)


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_imports_point_inwards(layer: str) -> None:
    modules = {m: p for m, p in package_modules().items() if layer_of(m) == layer}
    assert modules, f"no modules of {layer} under {PACKAGE}"
    found = {}
    for module, path in modules.items():
        context = module if path.name != "__init__.py" else module + ".__init__"
        names = imported_modules(path.read_text("utf-8"), context)
        bad = set(violations(layer, names)) - KNOWN.get(module, set())
        if bad:
            found[module] = sorted(bad)
    assert found == {}


def test_known_exceptions_are_still_needed() -> None:
    modules = package_modules()
    for module, allowed in KNOWN.items():
        names = imported_modules(modules[module].read_text("utf-8"), module)
        assert allowed <= set(violations(layer_of(module), names)), module


@pytest.mark.parametrize(
    ("layer", "source", "bad"),
    [
        ("domain", "import sqlite3", ["sqlite3"]),
        (
            "domain",
            "from juststorage.application.ports import Clock",
            ["juststorage.application.ports"],
        ),
        ("domain", "import anyio", ["anyio"]),
        ("domain", "from ..adapters import metrics", ["juststorage.adapters"]),
        ("application", "from starlette.requests import Request", ["starlette.requests"]),
        ("application", "import jwt", ["jwt"]),
        (
            "application",
            "from juststorage.adapters.metadata import sqlite",
            ["juststorage.adapters.metadata"],
        ),
        ("application", "from juststorage.api import errors", ["juststorage.api"]),
        ("application", "from juststorage import bootstrap", ["juststorage.bootstrap"]),
        (
            "application",
            "import prometheus_client, granian, click",
            ["click", "granian", "prometheus_client"],
        ),
        ("application", "from . import ports\nimport hashlib\nimport anyio.to_thread", []),
        ("adapters", "from juststorage.config import Settings", ["juststorage.config"]),
        ("adapters", "from juststorage import bootstrap", ["juststorage.bootstrap"]),
        (
            "adapters",
            "from juststorage.api.errors import STATUS_OF_CODE",
            ["juststorage.api.errors"],
        ),
        ("adapters", "from juststorage.cli import main", ["juststorage.cli"]),
        ("adapters", "import starlette, asyncpg, sqlite3", ["starlette"]),
        ("adapters", "from juststorage.application.ports import Clock", []),
        (
            "api",
            "from juststorage.adapters.metrics import Metrics",
            ["juststorage.adapters.metrics"],
        ),
        ("api", "import sqlite3, asyncpg", ["asyncpg", "sqlite3"]),
        ("api", "from juststorage.cli import main", ["juststorage.cli"]),
        ("api", "from juststorage import __version__\nfrom juststorage.bootstrap import build", []),
        ("worker", "from juststorage.api import app", ["juststorage.api"]),
        ("worker", "from juststorage.adapters import metrics", ["juststorage.adapters"]),
        ("cli", "from juststorage.api.errors import STATUS_OF_CODE", ["juststorage.api.errors"]),
        ("cli", "import click, asyncpg", ["asyncpg"]),
        ("bootstrap", "from juststorage.api.app import create_app", ["juststorage.api.app"]),
        ("config", "from juststorage.domain import model", ["juststorage.domain"]),
        ("logs", "from juststorage.config import Settings", ["juststorage.config"]),
        ("logs", "from juststorage.domain.timestamps import utc_text", []),
        (
            "deploy",
            "from juststorage.bootstrap import build\nimport yaml, starlette",
            ["juststorage.bootstrap", "starlette"],
        ),
    ],
)
def test_the_layering_check_catches_reverse_imports(
    layer: str, source: str, bad: list[str]
) -> None:
    module = f"juststorage.{layer}.example"
    assert violations(layer, imported_modules(source, module)) == bad
