"""GC and fsck of multipart upload sessions (SPEC §8.2): expired sessions, and part
bytes no part row names.

A part's bytes are written before its row and removed after it, so what a crash
leaves is always bytes without a row: a part whose upload was cut off (its writer
died), the parts of a session aborted, expired or completed just before the
process died. Bytes a row names are never touched. Bytes without a row are leaked
once their writer is gone. A part being written is covered by its writer's lease
(part_leases.py), renewed while the body streams however slowly it arrives, and
released in the transaction of the part row: bytes of a session whose lease is
held by the bytes' owner are never leaked. Other bytes are leaked when the process
named in them is dead or, for a writer on another machine, when they were not
written to for `remote_owner_seconds`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

from juststorage.application.blob_ports import PartStore
from juststorage.application.part_leases import LEASE_PREFIX, part_writers, stale_leases
from juststorage.application.ports import MetadataStore, ProcessLiveness
from juststorage.application.session_records import PartFile, stored_name
from juststorage.domain.model import StorageClass


async def expire_sessions(
    metadata: MetadataStore,
    parts: Mapping[StorageClass, PartStore],
    now: datetime,
    batch: int,
) -> int:
    """Delete sessions past their expiry (open or completed), then their parts' bytes;
    how many. Rows first: a crash in between leaves bytes no row names (leaked)."""
    count = 0
    while True:
        async with metadata.snapshot() as view:
            expired = await view.sessions.expired_sessions(now, batch)
        for session in expired:
            async with metadata.transaction() as uow:
                removed = await uow.sessions.remove_session(session.id)
                await uow.commit()
            store = parts.get(session.storage_class)
            if store is not None:
                await store.remove_session(session.storage_class, session.id)
            count += removed is not None
        if len(expired) < batch:
            return count


async def find_leaked_parts(
    metadata: MetadataStore,
    parts: Mapping[StorageClass, PartStore],
    liveness: ProcessLiveness,
    stored_before: datetime,
    remote_before: datetime,
    now: datetime,
) -> list[PartFile]:
    """Part bytes no row names, whose writer is gone (see the module's docstring),
    last written before `stored_before`."""
    leaked: list[PartFile] = []
    for storage_class, store in parts.items():
        files = await store.scan(storage_class)
        if not files:
            continue
        async with metadata.snapshot() as view:
            # Rows and leases in one snapshot: a part row commits with its lease's release.
            known = _stored_names(
                await view.sessions.part_addresses(sorted({f.session_id for f in files}))
            )
            writers = part_writers(await view.leases.named(LEASE_PREFIX), liveness, now)
        for found in files:
            if found.session_id in known and (
                not found.address or found.address in known[found.session_id]
            ):
                continue  # a part of an open session, or its folder
            if found.owner in writers.get(found.session_id, ()):
                continue  # being written (however long since its last byte)
            if found.modified_at >= stored_before:
                continue
            owner_runs = found.owner and not liveness.is_dead(found.owner)
            if owner_runs and found.modified_at >= remote_before:
                continue
            leaked.append(found)
    return leaked


async def remove_leaked_part(
    metadata: MetadataStore,
    parts: Mapping[StorageClass, PartStore],
    leaked: PartFile,
    liveness: ProcessLiveness,
    now: datetime,
) -> bool:
    """Remove leaked bytes unless a row names them by now, or their owner has taken a
    lease on a part of the session since; True if removed. The folder of a session
    without a row goes with its last part."""
    store = parts.get(leaked.storage_class)
    if store is None:
        return False
    async with metadata.snapshot() as view:
        known = _stored_names(await view.sessions.part_addresses([leaked.session_id]))
        writers = part_writers(await view.leases.named(LEASE_PREFIX), liveness, now)
    if leaked.owner in writers.get(leaked.session_id, ()):
        return False
    if leaked.session_id not in known:  # not open: all of it is garbage
        await store.remove_session(leaked.storage_class, leaked.session_id)
        return True
    if not leaked.address or leaked.address in known[leaked.session_id]:
        return False
    await store.remove(leaked.storage_class, leaked.session_id, leaked.address)
    return True


async def remove_stale_leases(
    metadata: MetadataStore, liveness: ProcessLiveness, now: datetime
) -> int:
    """Delete the part leases that expired or whose holder died (their writer is gone
    without releasing them); how many."""
    async with metadata.snapshot() as view:
        stale = stale_leases(await view.leases.named(LEASE_PREFIX), liveness, now)
    for name, holder in stale:
        async with metadata.transaction(durable=False) as uow:
            await uow.leases.release(name, holder)
            await uow.commit()
    return len(stale)


def _stored_names(addresses: dict[UUID, set[str]]) -> dict[UUID, set[str]]:
    """The stored files (or objects) the part rows name: a range names its file."""
    return {session: {stored_name(a) for a in names} for session, names in addresses.items()}


def describe_part(found: PartFile) -> str:
    """Where leaked bytes are, for reports: `parts/<session id>/<address>`."""
    return f"parts/{found.session_id}/{found.address}".rstrip("/")
