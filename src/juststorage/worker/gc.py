"""The GC loop: interval with jitter around `application.gc.collect_garbage`."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from juststorage.application.gc import GcPolicy, GcReport, collect_garbage
from juststorage.bootstrap import Services
from juststorage.domain.errors import StorageError, details_of

log = logging.getLogger("juststorage.gc")


def gc_policy(services: Services) -> GcPolicy:
    return GcPolicy(grace_seconds=services.settings.gc_grace_seconds)


async def run_gc_pass(services: Services) -> GcReport:
    """One pass, counted in metrics and logged."""
    started = time.perf_counter()
    report = await collect_garbage(
        services.metadata,
        services.blobs,
        services.clock,
        gc_policy(services),
        services.liveness,
        services.part_stores,
    )
    if report.ran:
        services.metrics.gc_runs.inc()
        services.metrics.gc_deleted_blobs.inc(report.blob_files_removed)
        services.metrics.gc_duration.observe(time.perf_counter() - started)
        log.info(
            "gc pass: %d stale uploads, %d temp files, %d deletes finished, %d blobs,"
            " %d orphan files removed, %d deleted rows purged, %d upload sessions expired,"
            " %d part files removed",
            report.expired_uploads,
            report.temp_files_removed,
            report.deletes_finished,
            report.blobs_removed,
            report.orphan_blobs_removed,
            report.deleted_rows_purged,
            report.sessions_expired,
            report.part_files_removed,
        )
    return report


async def run_gc_loop(services: Services) -> None:
    """Run passes forever, every `gc_interval_seconds` ±20 %; 0 turns the loop off."""
    interval = services.settings.gc_interval_seconds
    if interval <= 0:
        return
    while True:
        # Jitter keeps several processes from all trying at the same moment.
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
        try:
            await run_gc_pass(services)
        except StorageError as exc:
            log.warning("gc pass failed, will retry: %s: %s", exc.message, details_of(exc))
        except Exception:
            # A bug must not end background GC for the life of the process.
            log.exception("gc pass crashed, will retry")
