"""The S3 listener on SIGTERM: it stops accepting, closes idle keep-alive connections
at once (over TLS too, whose clients never answer a close_notify while idle), lets
a request in flight finish within the grace, and cuts what is left after it."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from starlette.types import Receive, Scope, Send

from juststorage.config import Settings
from juststorage.s3.listener import bind, server_for
from s3.clients_support import REGION, Gateway, S3Key, start_gateway

EXIT_WITHIN_S = 5.0
TENANT = "acme"


def _connect(gw: Gateway) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", gw.s3_port), timeout=10)
    if gw.ca is None:
        return sock
    context = ssl.create_default_context(cafile=str(gw.ca))
    return context.wrap_socket(sock, server_hostname="127.0.0.1")


def _boto3(gw: Gateway, key: S3Key) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=gw.s3_url,
        aws_access_key_id=key.key_id,
        aws_secret_access_key=key.secret,
        region_name=REGION,
        verify=str(gw.ca) if gw.ca is not None else True,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def _sigterm(gw: Gateway) -> float:
    """Seconds from SIGTERM until the server exited (status 0), at most EXIT_WITHIN_S
    plus a margin; a server still running then fails the caller's assertion."""
    popen = gw.server.process.popen
    started = time.monotonic()
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout=EXIT_WITHIN_S + 3)
    except Exception:
        return float("inf")
    assert popen.returncode == 0, gw.server.log_tail()
    return time.monotonic() - started


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.e2e
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_sigterm_with_idle_keep_alive_connections_exits_at_once(tmp_path: Path, tls: bool) -> None:
    gw = start_gateway(tmp_path, tls=tls)
    try:
        key = gw.s3_key((TENANT,))
        client = _boto3(gw, key)
        client.put_object(Bucket=f"{TENANT}.docs", Key="k", Body=b"v")  # its pool keeps it
        silent = _connect(gw)  # connected, never sends a byte
        elapsed = _sigterm(gw)
        assert elapsed < EXIT_WITHIN_S, f"exited after {elapsed:.1f} s"
        assert silent.recv(1) == b""  # closed by the server
        silent.close()
        client.close()
    finally:
        gw.stop()


@pytest.mark.e2e
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_a_request_in_flight_at_sigterm_is_answered(tmp_path: Path, tls: bool) -> None:
    gw = start_gateway(tmp_path, tls=tls)
    try:
        key = gw.s3_key((TENANT,))
        body = b"in flight " * 10_000
        url = f"{gw.s3_url}/{TENANT}.docs/late"
        request = AWSRequest(method="PUT", url=url, data=body)
        S3SigV4Auth(Credentials(key.key_id, key.secret), "s3", REGION).add_auth(request)
        head = f"PUT /{TENANT}.docs/late HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in request.prepare().headers.items()
        )
        head += f"Host: 127.0.0.1:{gw.s3_port}\r\n\r\n"  # after Content-Length
        conn = _connect(gw)
        conn.sendall(head.encode() + body[:1000])
        popen = gw.server.process.popen
        popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + EXIT_WITHIN_S
        while not _refused(gw.s3_port):  # the listener stopped accepting
            assert time.monotonic() < deadline, "the listener still accepts"
            time.sleep(0.05)
        conn.sendall(body[1000:])
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        conn.close()
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 200 OK", answer[:300]
        assert b"\r\nconnection: close\r\n" in rest.lower()
        popen.wait(timeout=EXIT_WITHIN_S)
        assert popen.returncode == 0
    finally:
        gw.stop()


async def _waits_for_its_body(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.anyio
async def test_a_stalled_request_is_cut_after_the_grace(tmp_path: Path) -> None:
    server = server_for(_waits_for_its_body, Settings(data_dir=tmp_path))
    server.config.timeout_graceful_shutdown = 1
    sock = bind("127.0.0.1", 0)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        writer.write(b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npart")
        await writer.drain()
        await asyncio.sleep(0.2)  # the request is in the app, waiting for the rest
        started = time.monotonic()
        server.should_exit = True
        async with asyncio.timeout(5):
            await task
            assert await reader.read() == b""  # the connection is closed, not left open
        assert time.monotonic() - started < 3
        writer.close()
    finally:
        server.should_exit = True
        sock.close()
