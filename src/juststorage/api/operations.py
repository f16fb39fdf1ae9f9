"""/health, /ready and /metrics: no credentials needed (SPEC §2 Operations)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import cast

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from juststorage.api.errors import request_id_of
from juststorage.api.state import ApiState, api_state
from juststorage.application.scrub_records import SCRUB_NAME
from juststorage.bootstrap import Services
from juststorage.domain.errors import InsufficientStorage, StorageError, Unavailable, details_of
from juststorage.domain.model import StorageClass
from juststorage.logs import FIELDS_ATTR

log = logging.getLogger("juststorage.api")

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


READY_CHECK_SECONDS = 5.0  # a readiness probe must answer sooner than its caller gives up


async def check_readiness(
    services: Services,
    running: dict[str, asyncio.Task[None]],
    timeout_s: float = READY_CHECK_SECONDS,
    request_id: str = "",
) -> dict[str, str]:
    """One entry per dependency: "ok" or why it is not.

    The checks run at once, each given `timeout_s`: an unreachable database or
    object store (whose own timeouts are much longer) makes this 503 in seconds.
    A check still running then is left to finish in the background, in `running`
    (by dependency): the next call waits for it instead of starting another.
    A failed check says why in a few words, without paths or hosts (anyone may
    ask): the short reason of an Unavailable or InsufficientStorage, else (a bug,
    whose message may carry the driver's text) "internal error". The details go to
    the log, under `request_id` when a request asked.
    """
    probes: dict[str, Callable[[], Awaitable[None]]] = {"database": services.metadata.ping}
    for storage_class in StorageClass:
        probes[storage_class.value] = functools.partial(services.blobs.probe, storage_class)
    tasks = {name: _check(running, name, probe) for name, probe in probes.items()}
    await asyncio.wait(tasks.values(), timeout=timeout_s)
    checks: dict[str, str] = {}
    for name, task in tasks.items():
        if not task.done():
            checks[name] = f"no answer within {timeout_s:g} s"
        elif isinstance(task.exception(), StorageError):
            failure = cast(StorageError, task.exception())
            checks[name] = _shown(failure)
            log.warning(
                "not ready: %s: %s: %s",
                name,
                failure.message,
                details_of(failure),
                extra={FIELDS_ATTR: {"request_id": request_id}} if request_id else None,
            )
        elif task.exception() is not None:
            raise cast(BaseException, task.exception())
        else:
            checks[name] = "ok"
    return checks


def _shown(failure: StorageError) -> str:
    """What a failed check may say to anyone who asks."""
    if isinstance(failure, Unavailable | InsufficientStorage):
        return failure.message
    return "internal error"


def _check(
    running: dict[str, asyncio.Task[None]], name: str, probe: Callable[[], Awaitable[None]]
) -> asyncio.Task[None]:
    """The running check of this dependency, or a new one."""
    task = running.get(name)
    if task is None or task.done():
        task = asyncio.ensure_future(probe())
        running[name] = task
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


async def ready(request: Request) -> Response:
    checks = await check_readiness(
        request.app.state.services,
        api_state(request).running_checks,
        request_id=request_id_of(request),
    )
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


async def refresh_census(services: Services) -> None:
    """Recount objects by state, and read the scrub's state, for the gauges (a read
    of the database)."""
    async with services.metadata.snapshot() as view:
        census = await view.objects.census()
        corrupt = await view.scrub.count_corrupt()
        position = await view.scrub.position(SCRUB_NAME)
    services.metrics.observe_census(census)
    services.metrics.observe_scrub(corrupt, position, services.settings.scrub_bytes_per_s)


async def refresh_scrape_gauges(
    services: Services, running_checks: dict[str, asyncio.Task[None]]
) -> None:
    """Readiness, free space per root, then the census (the last, as it may fail)."""
    services.metrics.observe_readiness(await check_readiness(services, running_checks))
    for storage_class in StorageClass:
        space = await services.blobs.space(storage_class)
        if space is not None:  # None: a store with no disk to measure (S3)
            services.metrics.observe_disk(storage_class.value, *space)
    await refresh_census(services)


async def refresh_for_scrape(services: Services, state: ApiState) -> None:
    """`refresh_scrape_gauges`, or the refresh already under way in this process.

    However many scrapers ask at once, one refresh runs at a time; a scraper that
    gives up (disconnects) does not cancel the refresh the others wait for.
    """
    task = state.scrape_refresh
    if task is None or task.done():
        task = asyncio.ensure_future(refresh_scrape_gauges(services, state.running_checks))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        state.scrape_refresh = task
    await asyncio.shield(task)


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    # On a database failure, serve the counters anyway; the census keeps its last values.
    with contextlib.suppress(StorageError):
        await refresh_for_scrape(services, api_state(request))
    return Response(services.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)
