"""Security tests: the real `juststorage serve` on 127.0.0.1, attacked (see docs/security.md).

`start_server(**env)` (module scope) starts a server with a fresh data directory and
stops it by its PID when the module ends. Only processes started here are signalled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from server_process import Server, start

StartServer = Callable[..., Server]


@pytest.fixture(scope="module")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    servers: list[Server] = []
    tmp_root = tmp_path_factory.mktemp("security")

    def factory(**extra_env: str) -> Server:
        server = start(tmp_root, extra_env)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
