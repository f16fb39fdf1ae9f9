"""/health, /ready and /metrics: no credentials needed (SPEC §2 Operations)."""

from __future__ import annotations

import contextlib
import os

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from juststorage.bootstrap import Services
from juststorage.domain.errors import StorageError
from juststorage.domain.model import StorageClass

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def check_readiness(services: Services) -> dict[str, str]:
    """One entry per dependency: "ok" or why it is not."""
    checks: dict[str, str] = {}
    try:
        await services.metadata.ping()
        checks["database"] = "ok"
    except StorageError as exc:
        checks["database"] = exc.message
    for storage_class in StorageClass:
        try:
            await services.blobs.probe(storage_class)
            checks[storage_class.value] = "ok"
        except StorageError as exc:
            checks[storage_class.value] = exc.message
    return checks


async def ready(request: Request) -> Response:
    checks = await check_readiness(request.app.state.services)
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
    )


async def refresh_census(services: Services) -> None:
    """Recount objects by state for the gauges (a read of the database)."""
    async with services.metadata.snapshot() as view:
        census = await view.objects.census()
    services.metrics.observe_census(census)


async def refresh_scrape_gauges(services: Services) -> None:
    """Readiness, free space per root, then the census (the last, as it may fail)."""
    services.metrics.observe_readiness(await check_readiness(services))
    roots = {
        StorageClass.HOT: services.settings.hot_dir,
        StorageClass.COLD: services.settings.cold_dir,
    }
    for storage_class, root in roots.items():
        if services.blobs.keyed(storage_class):
            continue  # an object store: no file system to measure
        with contextlib.suppress(OSError):
            fs = await anyio.to_thread.run_sync(os.statvfs, root)
            services.metrics.observe_disk(
                storage_class.value, fs.f_bavail * fs.f_frsize, fs.f_blocks * fs.f_frsize
            )
    await refresh_census(services)


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    # On a database failure, serve the counters anyway; the census keeps its last values.
    with contextlib.suppress(StorageError):
        await refresh_scrape_gauges(services)
    return Response(services.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)
