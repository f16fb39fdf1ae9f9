"""STYLE G1: layers import inwards only. Walks the AST of every module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "juststorage"
BANNED = {"starlette", "sqlite3", "click", "jwt", "prometheus_client", "granian"}
ALLOWED = {
    "domain": ("juststorage.domain",),
    "application": ("juststorage.domain", "juststorage.application", "anyio"),
}


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of every module `source` imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                assert node.module is not None
                names.add(node.module)
    return names


def violations(layer: str, names: set[str]) -> list[str]:
    bad = []
    for name in sorted(names):
        top = name.split(".")[0]
        if top in BANNED:
            bad.append(name)
        elif top == "__future__" or top in sys.stdlib_module_names:
            continue
        elif not any(name == a or name.startswith(a + ".") for a in ALLOWED[layer]):
            bad.append(name)
    return bad


def modules_of(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", ["domain", "application"])
def test_layer_imports_point_inwards(layer: str) -> None:
    assert modules_of(layer), f"no modules found under {PACKAGE / layer}"
    found = {}
    for path in modules_of(layer):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        bad = violations(layer, imported_modules(path.read_text("utf-8"), module))
        if bad:
            found[module] = bad
    assert found == {}


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
        ("application", "from juststorage import bootstrap", ["juststorage"]),
        (
            "application",
            "import prometheus_client, granian, click",
            ["click", "granian", "prometheus_client"],
        ),
        ("application", "from . import ports\nimport hashlib\nimport anyio.to_thread", []),
    ],
)
def test_the_layering_check_catches_reverse_imports(
    layer: str, source: str, bad: list[str]
) -> None:
    module = f"juststorage.{layer}.example"
    assert violations(layer, imported_modules(source, module)) == bad
