"""The S3 listener's shutdown: stop accepting, close idle connections at once, give
the requests in flight a bounded grace, then close whatever is left.

uvicorn's own shutdown closes an idle connection with `transport.close()`, which
over TLS sends close_notify and then waits for the peer's (up to the loop's SSL
shutdown timeout, 30 s): a pooled keep-alive connection of a client reads nothing
while idle, so it never answers, and the worker outlived the grace of its server.
Here a connection the server closed is dropped as soon as everything it was sent
has left the TLS layer: its close_notify is not awaited."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

TICK_SECONDS = 0.05


async def drain(server: uvicorn.Server, sockets: list[socket.socket] | None, grace: float) -> None:
    """Shut `server` down within about `grace` seconds (see the module docstring)."""
    for listening in server.servers:
        listening.close()
    for sock in sockets or []:
        sock.close()
    state = server.server_state
    for connection in list(state.connections):
        # Idle: closed now; busy: closed once its response is sent (no keep-alive).
        connection.shutdown()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while (state.connections or state.tasks) and loop.time() < deadline:
        for connection in list(state.connections):
            _drop_if_flushed(connection)
        await asyncio.sleep(TICK_SECONDS)
    for connection in list(state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.abort()
    for task in list(state.tasks):
        task.cancel()
    if state.tasks:
        await asyncio.wait(list(state.tasks), timeout=0.5)


def _drop_if_flushed(connection: Any) -> None:
    """Abort the transport of a connection the server is closing once nothing it
    wrote waits in it: the bytes are with the kernel, which still sends them."""
    transport = getattr(connection, "transport", None)
    if transport is None or not transport.is_closing():
        return
    if transport.get_write_buffer_size() == 0:
        transport.abort()
