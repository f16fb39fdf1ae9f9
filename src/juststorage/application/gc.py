"""Garbage collection: one bounded pass (SPEC §5).

Order of a pass: expire `WRITING` rows and temp files older than the grace
period; finish deletes; remove blobs unreferenced for at least the grace period;
remove blob files that no row knows (left by a crash between publish and
commit; on a keyed store such as S3, objects whose key no row records: a crash
before the commit, or a dedup hit whose fresh copy was not deleted yet); purge old
`DELETED` rows. Every removal of a blob file happens inside
the transaction that deleted (or claimed) its row, so an upload taking a new
reference to the same bytes waits for it and then publishes the file afresh.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import Clock, MetadataStore, ProcessLiveness
from juststorage.domain.model import StorageClass

GC_LEASE = "gc"


@dataclass(frozen=True, slots=True)
class GcPolicy:
    grace_seconds: float
    batch: int = 500
    lease_seconds: float = 600.0
    # An upload owned by a process GC cannot check (another machine) is taken for dead
    # only when its row is this old: uploads touch their row every HEARTBEAT_SECONDS.
    remote_owner_seconds: float = 300.0


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


async def collect_garbage(
    metadata: MetadataStore,
    blobs: BlobStore,
    clock: Clock,
    policy: GcPolicy,
    liveness: ProcessLiveness,
) -> GcReport:
    """Run one pass unless another live process is running one (claimed through the database).

    Uploads whose owner still runs are never touched, whatever the grace period.
    """
    holder = liveness.identity()
    now = clock.now()
    if not await _claim_lease(
        metadata, liveness, holder, now + timedelta(seconds=policy.lease_seconds)
    ):
        return GcReport(ran=False)
    report = GcReport()
    try:
        cutoff = now - timedelta(seconds=policy.grace_seconds)
        remote_cutoff = now - timedelta(
            seconds=max(policy.grace_seconds, policy.remote_owner_seconds)
        )
        phases: list[Callable[[], Awaitable[None]]] = [
            lambda: _expire_uploads(
                metadata, blobs, liveness, policy, cutoff, remote_cutoff, report
            ),
            lambda: _finish_deletes(metadata, policy, report),
            lambda: _remove_unreferenced(metadata, blobs, policy, cutoff, report),
            lambda: _remove_orphan_files(metadata, blobs, policy, cutoff, report),
            lambda: _remove_orphan_keys(metadata, blobs, cutoff, report),
            lambda: _purge_deleted(metadata, policy, cutoff, report),
        ]
        for phase in phases:
            await phase()
            # Keep the lease for a long pass; if it was lost, another pass owns GC now.
            renewed_until = clock.now() + timedelta(seconds=policy.lease_seconds)
            if not await _claim_lease(metadata, liveness, holder, renewed_until):
                break
    finally:
        async with metadata.transaction() as uow:
            await uow.leases.release(GC_LEASE, holder)
            await uow.commit()
    return report


async def _claim_lease(
    metadata: MetadataStore, liveness: ProcessLiveness, holder: str, until: datetime
) -> bool:
    async with metadata.transaction() as uow:
        claimed = await uow.leases.claim(GC_LEASE, holder, until)
        if not claimed:
            # A pass killed mid-way leaves its lease behind; take it over if its holder
            # is certainly dead rather than wait for it to expire.
            current = await uow.leases.holder_of(GC_LEASE)
            if current is not None and liveness.is_dead(current):
                claimed = await uow.leases.claim(GC_LEASE, holder, until, replacing=current)
        await uow.commit()
    return claimed


async def _expire_uploads(
    metadata: MetadataStore,
    blobs: BlobStore,
    liveness: ProcessLiveness,
    policy: GcPolicy,
    cutoff: datetime,
    remote_cutoff: datetime,
    report: GcReport,
) -> None:
    while True:
        async with metadata.snapshot() as view:
            candidates = await view.objects.writing_older_than(cutoff, policy.batch)
        expired = 0
        for upload in candidates:
            if liveness.is_dead(upload.owner) or upload.updated_at < remote_cutoff:
                async with metadata.transaction() as uow:
                    # Only if no heartbeat arrived since we looked: then it is still dead.
                    removed = await uow.objects.discard_writing(
                        upload.id, last_touched=upload.updated_at
                    )
                    await uow.commit()
                expired += removed
        report.expired_uploads += expired
        # A full batch may hide more dead uploads behind it (SPEC: one pass reaps them all).
        if len(candidates) < policy.batch or expired == 0:
            break
    for storage_class in StorageClass:
        old = [t for t in await blobs.temp_files(storage_class) if t.modified_at < cutoff]
        async with metadata.snapshot() as view:
            live = await view.objects.writing_among([u for t in old if (u := _uuid(t.upload_id))])
        for temp in old:
            # A temp file whose upload still has its WRITING row belongs to that upload,
            # and so does one whose name carries an owner that still runs (small uploads
            # write no WRITING row); any other (finished, failed, reaped, crashed) is
            # garbage. An owner on another machine is judged by age, as for WRITING rows.
            if _uuid(temp.upload_id) in live:
                continue
            owner = temp.owner
            if owner and not liveness.is_dead(owner) and temp.modified_at >= remote_cutoff:
                continue
            await blobs.remove_temp(temp)
            report.temp_files_removed += 1


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def _purge_deleted(
    metadata: MetadataStore, policy: GcPolicy, cutoff: datetime, report: GcReport
) -> None:
    async with metadata.transaction() as uow:
        report.deleted_rows_purged = await uow.objects.purge_deleted(cutoff, policy.batch)
        await uow.commit()


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
                    if await uow.objects.ids_of_blob(location):
                        continue  # a drifted count: committed objects still use it (rolls back)
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
                        if await uow.objects.ids_of_blob(stored.location):
                            continue  # its row was lost, not its objects: for fsck (rolls back)
                        await blobs.remove(stored.location)
                        await uow.blobs.forget(stored.location)
                        report.orphan_blobs_removed += 1
                        report.removed_hashes.append(stored.location.content_hash.hex)
                    await uow.commit()


async def _remove_orphan_keys(
    metadata: MetadataStore, blobs: BlobStore, cutoff: datetime, report: GcReport
) -> None:
    """Objects of a keyed store that no blob row names and no live upload is writing."""
    for storage_class in StorageClass:
        if not blobs.keyed(storage_class):
            continue
        async for batch in blobs.scan_keys(storage_class):
            old = [k for k in batch if k.modified_at < cutoff]
            if not old:
                continue
            async with metadata.snapshot() as view:
                # WRITING rows first, then blob rows: an upload that is no longer
                # WRITING has either committed (the second query then sees its key;
                # commits are atomic) or can never commit (commit_upload needs the
                # WRITING row), so a key unknown to both can never become the blob.
                writing = await view.objects.writing_among(
                    [k.upload_id for k in old if k.upload_id is not None]
                )
                known = await view.blobs.known_keys(storage_class, [k.key for k in old])
            for stored in old:
                if stored.key in known or stored.upload_id in writing:
                    continue
                if await blobs.remove_key(storage_class, stored.key):
                    report.orphan_blobs_removed += 1
