"""The separate `/metrics` listener of `JUSTSTORAGE_METRICS_ADDR` (SPEC §2 Operations)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import start_http_server

from juststorage.api.operations import refresh_census
from juststorage.bootstrap import Services
from juststorage.config import parse_host_port
from juststorage.domain.errors import StorageError

log = logging.getLogger("juststorage.metrics")
CENSUS_INTERVAL_SECONDS = 15.0


async def _refresh_forever(services: Services) -> None:
    while True:
        with contextlib.suppress(StorageError):
            await refresh_census(services)
        await asyncio.sleep(CENSUS_INTERVAL_SECONDS)


@contextlib.asynccontextmanager
async def metrics_listener(services: Services) -> AsyncIterator[None]:
    """Serve the registry on its own address, refreshing the gauges in the background.

    With several worker processes only the first binds the address; the others
    log a warning (their counters are not exported there).
    """
    address = services.settings.metrics_addr
    if address is None:
        yield
        return
    host, port = parse_host_port(address)
    server = None
    try:
        server, _ = start_http_server(port, addr=host, registry=services.metrics.registry)
    except OSError as exc:
        log.warning("metrics listener %s not started: %s", address, exc.strerror)
    refresher = asyncio.create_task(_refresh_forever(services))
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        if server is not None:
            server.shutdown()
            server.server_close()
