"""The scrub loop (SPEC §8.9): `application.scrub.scrub_step` again and again while
this process holds the scrub lease, a retry now and then while another does; each
finding is logged, each byte read is counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from juststorage.application.scrub import Finding, Scrubber, ScrubPolicy, scrub_step
from juststorage.bootstrap import Services
from juststorage.domain.errors import StorageError, details_of

log = logging.getLogger("juststorage.scrub")
# The record attribute juststorage.logs formats as structured fields (logs.FIELDS_ATTR;
# the worker layer does not import the logging setup).
_FIELDS = "fields"


def scrub_policy(services: Services) -> ScrubPolicy:
    settings = services.settings
    # A ranged read of a blob lasts at most a quarter of an S3 request's timeout.
    return ScrubPolicy(
        bytes_per_second=settings.scrub_bytes_per_s,
        request_seconds=settings.s3_timeout_seconds / 4,
    )


def make_scrubber(services: Services, policy: ScrubPolicy | None = None) -> Scrubber:
    return Scrubber(
        services.metadata,
        services.blobs,
        services.clock,
        services.liveness,
        policy or scrub_policy(services),
        on_bytes=services.metrics.scrub_bytes.inc,
    )


def log_finding(finding: Finding) -> None:
    """One line per blob found corrupt or missing (or good again): its class, hash and
    the objects that hold it."""
    location = finding.location
    objects = [r.describe() for r in finding.references]
    fields = {
        "storage_class": location.storage_class.value,
        "content_hash": location.content_hash.hex,
        "detail": finding.detail,
        "objects": objects,
    }
    where = f"{location.storage_class.value} sha256:{location.content_hash.hex}"
    if finding.gone:
        log.info("scrub: blob %s is no longer stored", where, extra={_FIELDS: fields})
        return
    if finding.good:
        log.info("scrub: blob %s reads back good again", where, extra={_FIELDS: fields})
        return
    held = ", ".join(objects) if objects else "no committed object"
    log.log(
        logging.ERROR if finding.new else logging.WARNING,
        "scrub: %s blob %s (%s); held by %s",
        "corrupt" if finding.new else "still corrupt",
        where,
        finding.detail,
        held,
        extra={_FIELDS: fields},
    )


async def run_scrub_loop(services: Services, policy: ScrubPolicy | None = None) -> None:
    """Scrub forever at `JUSTSTORAGE_SCRUB_BYTES_PER_S`; 0 (the default) turns it off."""
    policy = policy or scrub_policy(services)
    if policy.bytes_per_second <= 0:
        return
    scrubber = make_scrubber(services, policy)
    retry = policy.lease_seconds / 2
    try:
        while True:
            try:
                report = await scrub_step(scrubber)
            except StorageError as exc:
                log.warning("scrub step failed, will retry: %s: %s", exc.message, details_of(exc))
                await asyncio.sleep(retry)
                continue
            except Exception:
                # A bug must not end scrubbing for the life of the process.
                log.exception("scrub step crashed, will retry")
                await asyncio.sleep(retry)
                continue
            for finding in report.findings:
                log_finding(finding)
            if report.passes_completed and report.position is not None:
                position = report.position
                log.info(
                    "scrub pass %d done in %.1f s",
                    position.pass_number - 1,
                    position.last_pass_seconds or 0.0,
                )
            if not report.ran:
                # Another process scrubs; jitter keeps several from asking at once.
                await asyncio.sleep(retry * random.uniform(0.8, 1.2))
    finally:
        # Let another process take over at once rather than when the lease lapses.
        with contextlib.suppress(Exception):
            await asyncio.shield(scrubber.release())
