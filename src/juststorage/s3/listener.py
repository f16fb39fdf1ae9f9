"""The S3 listener of one worker process: uvicorn (httptools) on the worker's own
event loop, bound with SO_REUSEPORT like the main listener, so every worker serves
S3 with its own services, caches, group commit, rate limiter and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Generator

import uvicorn
from starlette.types import ASGIApp

from juststorage.api.state import ApiState
from juststorage.bootstrap import Services
from juststorage.config import Settings, parse_host_port
from juststorage.s3.app import S3App
from juststorage.s3.draining import drain
from juststorage.s3.protocol import ListenerLimits, bounded_protocol
from juststorage.s3.signing import build_s3_authenticator

log = logging.getLogger("juststorage.s3")
SHUTDOWN_SECONDS = 10
BACKLOG = 1024


class _WorkerServer(uvicorn.Server):
    """uvicorn without its signal handlers: the worker's server (granian) owns the
    signals and ends this server through the app's lifespan."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await drain(self, sockets, self.config.timeout_graceful_shutdown or 0)


def domains_of(settings: Settings) -> tuple[str, ...]:
    """The domains under which a Host of `<bucket>.<domain>` names a bucket."""
    if settings.s3_domain:
        return (settings.s3_domain.lower().strip("."),)
    return ("localhost",)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port shared by this server's workers (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def server_for(
    app: ASGIApp, settings: Settings, limits: ListenerLimits | None = None
) -> uvicorn.Server:
    """A uvicorn server of `app` whose connections are bounded by `limits` (see
    s3.protocol; the defaults match the main listener's)."""
    limits = limits or ListenerLimits()
    tls = (
        {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
        if settings.tls_cert is not None and settings.tls_key is not None
        else {}
    )
    config = uvicorn.Config(
        app,
        http=bounded_protocol(limits),
        lifespan="off",
        access_log=False,  # the app writes the access line (api.request_log)
        log_config=None,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=limits.keep_alive_seconds,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        **tls,  # type: ignore[arg-type]
    )
    return _WorkerServer(config)


@contextlib.asynccontextmanager
async def s3_listener(services: Services, state: ApiState) -> AsyncIterator[None]:
    """Serve the S3 gateway on `JUSTSTORAGE_S3_ADDR` while the block runs (nothing
    when it is unset); the block's end closes the listener and waits for the
    requests in flight (at most SHUTDOWN_SECONDS)."""
    settings = services.settings
    if settings.s3_addr is None:
        yield
        return
    host, port = parse_host_port(settings.s3_addr)
    app = S3App(services, state, build_s3_authenticator(services), domains_of(settings))
    server = server_for(app, settings)
    sock = bind(host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            task.result()  # its failure to start, raised here
        yield
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), SHUTDOWN_SECONDS + 1)
        except (TimeoutError, asyncio.CancelledError):
            server.force_exit = True
            task.cancel()
        except Exception:
            log.exception("the S3 listener stopped with an error")
        sock.close()
