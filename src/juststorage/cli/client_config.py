"""What the object commands share: the SDK, server URL and credential, progress.

The commands talk to a running server through the Python SDK (`juststorage-client`,
`sdks/python`), imported lazily: the server-side commands never need it, and a
missing SDK is one clear error instead of a failing `juststorage --help`.
"""

from __future__ import annotations

import os
import sys
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import click

from juststorage.cli.errors import BadUsage, CommandFailed

DEFAULT_URL = "http://127.0.0.1:8080"
PROGRESS_MIN_BYTES = 8 * 1024 * 1024


def sdk() -> ModuleType:
    """The SDK module, imported on first use (its errors are mapped in `cli.errors`)."""
    try:
        import juststorage_client
    except ImportError:
        raise CommandFailed(
            "the object commands need the juststorage-client package: "
            "pip install -e sdks/python (make install does it)"
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
    """`--url` and `--token` on an object command."""
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


class Progress:
    """A stderr progress bar with the transfer rate, shown only for large transfers
    on a terminal (or when forced); otherwise a no-op."""

    def __init__(self, total: int | None, label: str, enabled: bool | None) -> None:
        show = enabled if enabled is not None else sys.stderr.isatty()
        self._active = bool(show) and (total is None or total >= PROGRESS_MIN_BYTES)
        self._started = time.monotonic()
        self._done = 0
        self._bar: Any = None
        if self._active:
            self._bar = click.progressbar(
                length=total or 0,
                label=label,
                file=sys.stderr,
                show_eta=True,
                show_percent=True,
                item_show_func=lambda _: self.rate(),
            )
            self._bar.__enter__()

    def rate(self) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        return f"{self._done / elapsed / 2**20:.1f} MiB/s"

    def __call__(self, n: int) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(n, current_item=n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            click.echo(f"{self._done / 2**20:.1f} MiB at {self.rate()}", err=True)
