"""End-to-end fixtures: the real `juststorage serve` as a subprocess on 127.0.0.1.

`start_server(**env)` (module scope) starts a server on a free port with a fresh
data directory, waits for `/health`, and stops it by its PID when the module
ends. Only processes started here are ever signalled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from server_process import Server, start

StartServer = Callable[..., Server]


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """A factory: `start_server(JUSTSTORAGE_X="1", ...)` → a healthy Server (module scope)."""
    servers: list[Server] = []
    tmp_root = tmp_path_factory.mktemp("e2e")

    def factory(**extra_env: str) -> Server:
        server = start(tmp_root, extra_env)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
