"""What the object commands share: the SDK, server URL and credential, state files.

The commands talk to a running server through the Python SDK (`juststorage-client`,
`sdks/python`, a dependency of this package), imported lazily: the server-side
commands never need it, and a missing SDK is one clear error instead of a failing
`juststorage --help`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from juststorage.cli.errors import BadUsage, CommandFailed
from juststorage.cli.tls import tls_options

DEFAULT_URL = "http://127.0.0.1:8080"


def sdk() -> ModuleType:
    """The SDK module, imported on first use (its errors are mapped in `cli.errors`)."""
    try:
        import juststorage_client
    except ImportError:
        raise CommandFailed(
            "the object commands need the juststorage-client package, a dependency of"
            " juststorage: reinstall juststorage (pip install ./sdks/python .)"
        ) from None
    return juststorage_client


@dataclass(frozen=True)
class Connection:
    url: str
    token: str | None


def client_config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("JUSTSTORAGE_CLIENT_CONFIG"):
        return Path(environ["JUSTSTORAGE_CLIENT_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "juststorage" / "client.toml"


def transfer_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where interrupted uploads keep their state: beside the client config."""
    return client_config_path(environ).parent / "transfers"


def resolve_connection(
    url: str | None, token: str | None, environ: Mapping[str, str] = os.environ
) -> Connection:
    """Flags, then JUSTSTORAGE_URL / JUSTSTORAGE_TOKEN, then the client config file."""
    path = client_config_path(environ)
    file: dict[str, Any] = {}
    if path.is_file():
        try:
            file = tomllib.loads(path.read_text("utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadUsage(f"cannot read {path}: {exc}") from None
    token = token or environ.get("JUSTSTORAGE_TOKEN") or file.get("token")
    if token is None and file.get("token_file"):
        token = Path(str(file["token_file"])).expanduser().read_text("utf-8").strip()
    return Connection(
        url=str(url or environ.get("JUSTSTORAGE_URL") or file.get("url") or DEFAULT_URL),
        token=str(token) if token else None,
    )


def connection_options(command: Any) -> Any:
    """`--url`, `--token`, `--ca-cert` and `--insecure` on an object command."""
    command = tls_options(command)
    command = click.option(
        "--token",
        metavar="TOKEN",
        help="API key or JWT [env JUSTSTORAGE_TOKEN, or `token` in the client config].",
    )(command)
    return click.option(
        "--url",
        metavar="URL",
        help=f"Server URL [env JUSTSTORAGE_URL, or `url` in the client config; {DEFAULT_URL}].",
    )(command)


def json_option(command: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(command)
