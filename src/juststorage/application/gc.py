"""Garbage collection: one bounded pass (SPEC §5).

Order of a pass: expire `WRITING` rows and temp files older than the grace
period; finish deletes; remove blobs unreferenced for at least the grace period;
remove stored things that no row knows (orphans.py: left by a crash between
publish and commit, or a dedup hit's fresh copy not deleted yet); purge old
`DELETED` rows. Every removal of bytes that name their content happens inside
the transaction that deleted (or claimed) its row, so an upload taking a new
reference to the same bytes waits for it and then publishes them afresh.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from juststorage.application.blob_ports import BlobStore, PartStore
from juststorage.application.orphans import Removal, find_orphans, remove_orphan
from juststorage.application.ports import Clock, MetadataStore, ProcessLiveness
from juststorage.application.session_upkeep import (
    expire_sessions,
    find_leaked_parts,
    remove_leaked_part,
    remove_stale_leases,
)
from juststorage.domain.model import StorageClass

GC_LEASE = "gc"
# A release's `released_at` is its transaction's clock, read before that transaction
# commits, and backups may run on other hosts: a blob released this long before a
# backup's hold began may still be named by the backup's snapshot.
BACKUP_HOLD_SKEW = timedelta(seconds=60)


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
    sessions_expired: int = 0
    part_files_removed: int = 0
    removed_hashes: list[str] = field(default_factory=list)
    # A backup in progress held back blobs released since it began and every orphan.
    held_by_backup: bool = False

    @property
    def blob_files_removed(self) -> int:
        return self.blobs_removed + self.orphan_blobs_removed


async def collect_garbage(
    metadata: MetadataStore,
    blobs: BlobStore,
    clock: Clock,
    policy: GcPolicy,
    liveness: ProcessLiveness,
    parts: Mapping[StorageClass, PartStore] | None = None,
) -> GcReport:
    """Run one pass unless another live process is running one (claimed through the database).

    Uploads whose owner still runs are never touched, whatever the grace period.
    With `parts`, the pass also deletes expired multipart upload sessions and the
    part bytes no row names (session_upkeep.py).
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
        held_since = await _backup_holds(metadata, liveness, now)
        blob_cutoff = cutoff if held_since is None else min(cutoff, held_since - BACKUP_HOLD_SKEW)
        report.held_by_backup = held_since is not None
        phases: list[Callable[[], Awaitable[None]]] = [
            lambda: _expire_uploads(
                metadata, blobs, liveness, policy, cutoff, remote_cutoff, report
            ),
            lambda: _finish_deletes(metadata, policy, report),
            lambda: _remove_unreferenced(metadata, blobs, policy, blob_cutoff, report),
            lambda: _purge_deleted(metadata, policy, cutoff, report),
        ]
        if held_since is None:
            # Orphans include the old copies migrate-blobs and inline moves leave, which
            # a backup's snapshot may still name: none is removed while one runs.
            phases.insert(3, lambda: _remove_orphans(metadata, blobs, cutoff, report))
        if parts:
            phases.insert(
                1,
                lambda: _reap_sessions(
                    metadata, parts, liveness, policy, now, cutoff, remote_cutoff, report
                ),
            )
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


async def _backup_holds(
    metadata: MetadataStore, liveness: ProcessLiveness, now: datetime
) -> datetime | None:
    """The start of the oldest backup in progress (docs/durability.md), or None.

    A hold that lapsed, or whose holder is known dead (a killed backup), holds
    nothing; such rows are deleted here.
    """
    async with metadata.snapshot() as view:
        holds = await view.holds.all()
    live = []
    for hold_id, holder, started_at, expires_at in holds:
        if expires_at > now and not liveness.is_dead(holder):
            live.append(started_at)
            continue
        async with metadata.transaction() as uow:
            await uow.holds.release(hold_id)
            await uow.commit()
    return min(live) if live else None


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
    async def expire_batch() -> tuple[int, bool]:
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
        return len(candidates), expired > 0

    await _in_batches(policy.batch, expire_batch)
    for storage_class in StorageClass:
        old = [t for t in await blobs.temp_files(storage_class) if t.modified_at < cutoff]
        async with metadata.snapshot() as view:
            live = await view.objects.writing_among([t.upload_id for t in old if t.upload_id])
        for temp in old:
            # A temp file whose upload still has its WRITING row belongs to that upload,
            # and so does one whose name carries an owner that still runs (small uploads
            # write no WRITING row); any other (finished, failed, reaped, crashed) is
            # garbage. An owner on another machine is judged by age, as for WRITING rows.
            if temp.upload_id in live:
                continue
            owner = temp.owner
            if owner and not liveness.is_dead(owner) and temp.modified_at >= remote_cutoff:
                continue
            await blobs.remove_temp(temp)
            report.temp_files_removed += 1


async def _reap_sessions(
    metadata: MetadataStore,
    parts: Mapping[StorageClass, PartStore],
    liveness: ProcessLiveness,
    policy: GcPolicy,
    now: datetime,
    cutoff: datetime,
    remote_cutoff: datetime,
    report: GcReport,
) -> None:
    """Expired sessions (their TTL is their grace), then leaked part bytes."""
    report.sessions_expired += await expire_sessions(metadata, parts, now, policy.batch)
    found = await find_leaked_parts(metadata, parts, liveness, cutoff, remote_cutoff, now)
    for leaked in found:
        if await remove_leaked_part(metadata, parts, leaked, liveness, now):
            report.part_files_removed += 1
    await remove_stale_leases(metadata, liveness, now)


async def _in_batches(batch: int, step: Callable[[], Awaitable[tuple[int, bool]]]) -> None:
    """Repeat `step` (it returns how many candidates it saw and whether it removed any)
    while it sees a full batch and makes progress: a full batch may hide more behind
    it (SPEC: one pass reaps them all)."""
    while True:
        seen, progressed = await step()
        if seen < batch or not progressed:
            return


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
    async def remove_batch() -> tuple[int, bool]:
        async with metadata.snapshot() as view:
            candidates = await view.blobs.unreferenced(cutoff, policy.batch)
        removed_any = False
        for location in candidates:
            async with metadata.transaction() as uow:
                # Re-checked under the row lock: an upload may have taken a reference since.
                if await uow.blobs.forget_if_unreferenced(location, cutoff):
                    if await uow.objects.ids_of_blob(location):
                        continue  # a drifted count: committed objects still use it (rolls back)
                    # Before commit, while the row is locked. False: nothing at that
                    # address here (gone already, or another store's address after
                    # migrate-blobs, whose file the orphan step then removes and counts).
                    if await blobs.remove(location.storage_class, location.address):
                        report.blobs_removed += 1
                        report.removed_hashes.append(location.content_hash.hex)
                    removed_any = True
                await uow.commit()
        return len(candidates), removed_any

    await _in_batches(policy.batch, remove_batch)


async def _remove_orphans(
    metadata: MetadataStore, blobs: BlobStore, cutoff: datetime, report: GcReport
) -> None:
    """Stored things older than the grace period that the index does not know."""
    for storage_class in StorageClass:
        async for orphans in find_orphans(metadata, blobs, storage_class, stored_before=cutoff):
            for stored in orphans:
                if await remove_orphan(metadata, blobs, stored) is Removal.REMOVED:
                    report.orphan_blobs_removed += 1
                    if stored.content_hash is not None:
                        report.removed_hashes.append(stored.content_hash.hex)
