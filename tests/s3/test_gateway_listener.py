"""The S3 listener's bounds before authentication: the size and time of a request
head, idle connections, and the number of connections of a worker. Raw sockets
against a real server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from juststorage.config import Settings
from juststorage.s3.listener import bind, server_for
from juststorage.s3.protocol import HEADER_BYTES_MAX, ListenerLimits
from juststorage.testing import child_pids
from s3.conftest import Gateway

MIB = 1024 * 1024


def _rss_bytes(pid: int) -> int:
    """The resident memory of `pid` and its children."""
    total = 0
    for each in [pid, *child_pids(pid)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _port(gateway: Gateway) -> int:
    return int(gateway.s3_url.rsplit(":", 1)[1])


@pytest.mark.e2e
def test_an_oversized_request_head_is_refused_without_growing_the_worker(
    s3_gateway_sqlite: Gateway,
) -> None:
    pid = s3_gateway_sqlite.server.pid
    before = _rss_bytes(pid)
    sent = 0
    answer = b""
    line = b"X-Pad: " + b"a" * 8000 + b"\r\n"
    with socket.create_connection(("127.0.0.1", _port(s3_gateway_sqlite)), timeout=10) as sock:
        try:
            sock.sendall(b"GET /acme.docs/a.txt HTTP/1.1\r\nHost: x\r\n")
            while sent < 64 * MIB:
                sock.sendall(line)
                sent += len(line)
            grown = _rss_bytes(pid) - before
        except (BrokenPipeError, ConnectionResetError):
            grown = _rss_bytes(pid) - before
        with contextlib.suppress(OSError):
            answer = sock.recv(4096)
    assert sent < 4 * MIB, f"the server took {sent} bytes of headers"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert grown < 4 * MIB, f"the server grew by {grown} bytes"


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@contextlib.asynccontextmanager
async def _serving(limits: ListenerLimits, tmp_path: Path) -> AsyncIterator[int]:
    settings = Settings(data_dir=tmp_path)
    server = server_for(_ok, settings, limits)
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closed the connection (reading what it sent)."""
    started = time.monotonic()
    async with asyncio.timeout(limit):
        while await reader.read(65536):
            pass
    return time.monotonic() - started


@pytest.mark.anyio
async def test_a_slow_head_is_closed_after_the_header_timeout(tmp_path: Path) -> None:
    limits = ListenerLimits(header_read_seconds=1.0, keep_alive_seconds=30)
    async with _serving(limits, tmp_path) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")

        async def trickle() -> None:
            with contextlib.suppress(OSError):
                for _ in range(60):  # a header line every 0.2 s: never idle
                    await asyncio.sleep(0.2)
                    writer.write(b"X-Slow: 1\r\n")
                    await writer.drain()

        dripping = asyncio.create_task(trickle())
        elapsed = await _closed_after(reader, 10)
        dripping.cancel()
        writer.close()
    assert 0.8 < elapsed < 5


@pytest.mark.anyio
async def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(
    tmp_path: Path,
) -> None:
    limits = ListenerLimits(header_read_seconds=30, keep_alive_seconds=1)
    async with _serving(limits, tmp_path) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)  # sends nothing
        elapsed = await _closed_after(reader, 10)
        writer.close()
    assert 0.8 < elapsed < 5


@pytest.mark.anyio
async def test_a_complete_head_then_keep_alive_still_works(tmp_path: Path) -> None:
    async with _serving(ListenerLimits(header_read_seconds=1.0), tmp_path) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n")
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            assert await reader.readexactly(2) == b"ok"
            await asyncio.sleep(1.5)  # longer than the head timeout, between requests
        writer.close()


@pytest.mark.anyio
async def test_connections_past_the_cap_get_slow_down(tmp_path: Path) -> None:
    async with _serving(ListenerLimits(connections_max=3), tmp_path) as port:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"<Code>SlowDown</Code>" in answer
        writer.close()
        for _, each in held:
            each.close()
            await each.wait_closed()
        await asyncio.sleep(0.2)  # the server sees the closes
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        writer.close()


def test_the_head_cap_is_the_main_listeners() -> None:
    from juststorage.cli import granian_main

    assert HEADER_BYTES_MAX == granian_main.HEADER_BYTES_MAX
    assert ListenerLimits().header_read_seconds * 1000 == granian_main.HEADER_READ_TIMEOUT_MS
