"""An SDK client for one object command, built from the resolved connection.

A server that answers 401 to a command that had no credential gets the user told
how to give one, instead of only "Unauthorized".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from juststorage.cli.client_config import (
    Connection,
    chosen_profile,
    missing_credential_hint,
    resolve_connection,
    sdk,
)
from juststorage.cli.errors import UnauthorizedFailure
from juststorage.cli.tls import client_tls


@contextmanager
def open_client(url: str | None, token: str | None) -> Iterator[Any]:
    """The SDK client for `--url`, `--token` and `--profile` (see `resolve_connection`)."""
    connection = resolve_connection(url, token, chosen_profile())
    with connected(connection) as client:
        yield client


@contextmanager
def connected(connection: Connection) -> Iterator[Any]:
    js = sdk()
    with js.Client(connection.url, connection.token, **client_tls()) as client:
        try:
            yield client
        except js.Unauthorized as exc:
            if connection.token is not None:
                raise
            raise UnauthorizedFailure(f"{exc}; {missing_credential_hint(connection)}") from None
