"""Garbage collection: one bounded pass (SPEC §5).

Order of a pass: expire `WRITING` rows and temp files older than the grace
period; finish deletes; remove blobs unreferenced for at least the grace period;
remove blob files that no row knows (left by a crash between publish and
commit); purge old `DELETED` rows. Every removal of a blob file happens inside
the transaction that deleted (or claimed) its row, so an upload taking a new
reference to the same bytes waits for it and then publishes the file afresh.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from juststorage.application.ports import BlobStore, Clock, MetadataStore
from juststorage.domain.model import StorageClass

GC_LEASE = "gc"


@dataclass(frozen=True, slots=True)
class GcPolicy:
    grace_seconds: float
    batch: int = 500
    lease_seconds: float = 600.0


@dataclass(slots=True)
class GcReport:
    """What one pass did. `ran` is False when another process held the GC lease."""

    ran: bool = True
    expired_uploads: int = 0
    temp_files_removed: int = 0
    deletes_finished: int = 0
    blobs_removed: int = 0
    orphan_blobs_removed: int = 0
    deleted_rows_purged: int = 0
    removed_hashes: list[str] = field(default_factory=list)

    @property
    def blob_files_removed(self) -> int:
        return self.blobs_removed + self.orphan_blobs_removed


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def collect_garbage(
    metadata: MetadataStore,
    blobs: BlobStore,
    clock: Clock,
    policy: GcPolicy,
    *,
    holder: str | None = None,
) -> GcReport:
    """Run one pass unless another process is running one (claimed through the database)."""
    holder = holder or default_holder()
    now = clock.now()
    async with metadata.transaction() as uow:
        claimed = await uow.leases.claim(
            GC_LEASE, holder, now + timedelta(seconds=policy.lease_seconds)
        )
        await uow.commit()
    if not claimed:
        return GcReport(ran=False)
    report = GcReport()
    try:
        cutoff = now - timedelta(seconds=policy.grace_seconds)
        await _expire_uploads(metadata, blobs, policy, cutoff, report)
        await _finish_deletes(metadata, policy, report)
        await _remove_unreferenced(metadata, blobs, policy, cutoff, report)
        await _remove_orphan_files(metadata, blobs, policy, cutoff, report)
        async with metadata.transaction() as uow:
            report.deleted_rows_purged = await uow.objects.purge_deleted(cutoff, policy.batch)
            await uow.commit()
    finally:
        async with metadata.transaction() as uow:
            await uow.leases.release(GC_LEASE, holder)
            await uow.commit()
    return report


async def _expire_uploads(
    metadata: MetadataStore,
    blobs: BlobStore,
    policy: GcPolicy,
    cutoff: datetime,
    report: GcReport,
) -> None:
    while True:
        async with metadata.transaction() as uow:
            stale = await uow.objects.expire_writing(cutoff, policy.batch)
            await uow.commit()
        report.expired_uploads += len(stale)
        if len(stale) < policy.batch:
            break
    for storage_class in StorageClass:
        for temp in await blobs.temp_files(storage_class):
            # A live upload keeps writing its temp file; one untouched for the grace is dead.
            if temp.modified_at < cutoff:
                await blobs.remove_temp(temp)
                report.temp_files_removed += 1


async def _finish_deletes(metadata: MetadataStore, policy: GcPolicy, report: GcReport) -> None:
    while True:
        async with metadata.transaction() as uow:
            finished = await uow.objects.finish_deletes(policy.batch)
            await uow.commit()
        report.deletes_finished += finished
        if finished < policy.batch:
            break


async def _remove_unreferenced(
    metadata: MetadataStore,
    blobs: BlobStore,
    policy: GcPolicy,
    cutoff: datetime,
    report: GcReport,
) -> None:
    while True:
        async with metadata.snapshot() as view:
            candidates = await view.blobs.unreferenced(cutoff, policy.batch)
        removed_any = False
        for location in candidates:
            async with metadata.transaction() as uow:
                # Re-checked under the row lock: an upload may have taken a reference since.
                if await uow.blobs.forget_if_unreferenced(location, cutoff):
                    await blobs.remove(location)  # before commit, while the row is locked
                    report.blobs_removed += 1
                    report.removed_hashes.append(location.content_hash.hex)
                    removed_any = True
                await uow.commit()
        if len(candidates) < policy.batch or not removed_any:
            break


async def _remove_orphan_files(
    metadata: MetadataStore,
    blobs: BlobStore,
    policy: GcPolicy,
    cutoff: datetime,
    report: GcReport,
) -> None:
    for storage_class in StorageClass:
        async for batch in blobs.scan(storage_class):
            old = [b for b in batch if b.modified_at < cutoff]
            if not old:
                continue
            async with metadata.snapshot() as view:
                known = await view.blobs.known([b.location for b in old])
            for stored in old:
                if stored.location in known:
                    continue
                async with metadata.transaction() as uow:
                    # Claiming inserts a locked row: an upload of the same bytes waits
                    # for this transaction, then publishes the file again.
                    if await uow.blobs.claim_orphan(stored.location, stored.size_bytes):
                        await blobs.remove(stored.location)
                        await uow.blobs.forget(stored.location)
                        report.orphan_blobs_removed += 1
                        report.removed_hashes.append(stored.location.content_hash.hex)
                    await uow.commit()
