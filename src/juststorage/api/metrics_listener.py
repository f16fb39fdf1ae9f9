"""The separate `/metrics` listener of `JUSTSTORAGE_METRICS_ADDR` (SPEC §2 Operations)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from prometheus_client import start_http_server

from juststorage.api.operations import refresh_scrape_gauges
from juststorage.api.state import ApiState
from juststorage.bootstrap import Services
from juststorage.config import parse_host_port
from juststorage.domain.errors import StorageError

log = logging.getLogger("juststorage.metrics")
CENSUS_INTERVAL_SECONDS = 15.0


SAMPLE_INTERVAL_SECONDS = 1.0


@runtime_checkable
class _PooledStore(Protocol):
    def connections_in_use(self) -> tuple[int, int]: ...


def sample_gauges(services: Services, state: ApiState) -> None:
    """This process's share of the summed gauges: uploads in flight, pool use."""
    metrics = services.metrics
    metrics.uploads_in_flight.set(state.throttle.uploads_in_flight)
    if isinstance(services.metadata, _PooledStore):
        in_use, size = services.metadata.connections_in_use()
        metrics.db_connections_in_use.set(in_use)
        metrics.db_connections_max.set(size)


async def _sample_forever(services: Services, state: ApiState) -> None:
    while True:
        sample_gauges(services, state)
        await asyncio.sleep(SAMPLE_INTERVAL_SECONDS)


async def _refresh_forever(services: Services, state: ApiState) -> None:
    while True:
        with contextlib.suppress(StorageError):
            await refresh_scrape_gauges(services, state.running_checks)
        await asyncio.sleep(CENSUS_INTERVAL_SECONDS)


@contextlib.asynccontextmanager
async def _running(task: asyncio.Task[None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def metrics_listener(services: Services, state: ApiState) -> AsyncIterator[None]:
    """Sample this process's gauges every second and, with `metrics_addr` set, serve
    the registry on its own address, refreshing the census in the background.

    With several worker processes only the first binds the address; the others
    log why not. The one that does serves the sum of all of them (multiprocess mode).
    """
    sampler = asyncio.create_task(_sample_forever(services, state))
    async with _running(sampler), _separate_listener(services, state):
        yield


@contextlib.asynccontextmanager
async def _separate_listener(services: Services, state: ApiState) -> AsyncIterator[None]:
    address = services.settings.metrics_addr
    if address is None:
        yield
        return
    host, port = parse_host_port(address)
    try:
        server, _ = start_http_server(port, addr=host, registry=services.metrics.registry)
    except OSError as exc:
        log.warning("metrics listener %s not started: %s", address, exc.strerror)
        yield
        return
    try:
        async with _running(asyncio.create_task(_refresh_forever(services, state))):
            yield
    finally:
        server.shutdown()
        server.server_close()
