"""Stored things the blob index does not know: one routine for GC and fsck, the same
for every store.

A store's `scan` reports each stored thing with who may still adopt it
(`StoredBlob`): any upload of its content, one upload, or nobody. It is an orphan
when no blob row accounts for it and no upload that may adopt it is in flight, and
it is not the blob of a version whose row was lost (damage: the bytes name the upload
of a version whose content has no row; fsck reports it as missing-row).
Removing one takes the same care whoever calls: bytes that name their content are
removed under that content's row lock, so an upload of the same bytes waits and
then publishes them again.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import MetadataStore
from juststorage.application.records import BlobLocation, StoredBlob
from juststorage.domain.model import ObjectVersion, StorageClass


class Removal(enum.Enum):
    """What `remove_orphan` did: `REMOVED` it, found it `GONE` already (another pass
    or an operator removed it since the scan: repaired all the same), or `KEPT` it (a
    row or an object turned up for its content meanwhile)."""

    REMOVED = "removed"
    GONE = "gone"
    KEPT = "kept"


@dataclass(frozen=True, slots=True)
class LostRow:
    """Stored bytes that name their upload, whose committed (or deleting) version
    has no blob row: the row was lost (damage), the bytes are still its blob."""

    stored: StoredBlob
    version: ObjectVersion

    @property
    def blob(self) -> BlobLocation:
        """The blob the lost row named: the version's content at these bytes' address."""
        return BlobLocation(
            self.version.storage_class, self.version.content_hash, self.stored.address
        )


@dataclass(frozen=True, slots=True)
class Unindexed:
    """One batch of stored things no blob row accounts for: `orphans` nothing may
    adopt any more, and the bytes of `lost_rows` (kept: fsck records their rows)."""

    orphans: list[StoredBlob]
    lost_rows: list[LostRow]


async def find_unindexed(
    metadata: MetadataStore,
    blobs: BlobStore,
    storage_class: StorageClass,
    *,
    stored_before: datetime | None = None,
) -> AsyncIterator[Unindexed]:
    """Batches of the class's stored things that no blob row accounts for and no
    upload in flight may adopt, the bytes of lost rows told apart from the orphans;
    with `stored_before`, only those older than it."""
    async for batch in blobs.scan(storage_class):
        candidates = [s for s in batch if stored_before is None or s.modified_at < stored_before]
        if not candidates:
            continue
        async with metadata.snapshot() as view:
            # WRITING rows first, then blob rows: an upload that is no longer WRITING
            # has either committed (the later queries then see its version and its
            # address; commits are atomic) or can never commit (commit_upload needs
            # the WRITING row), so a thing unknown to both can never become the blob
            # of an upload that owns it.
            writing = await view.objects.writing_among(
                [s.upload_id for s in candidates if s.upload_id is not None]
            )
            # Then, of the other uploads, the versions whose blob has no row: their
            # bytes are the lost row's blob, and kept. Keeping is always safe; calling
            # a thing an orphan because its version's blob has a row (a dedup hit's
            # copy) is safe against a concurrent commit too: these uploads are past
            # their WRITING row, so their versions are as committed. That row serves
            # the version from its own address and goes away only once no committed
            # version uses it; if it records this thing's address (fsck's repair),
            # the blob rows queried next account for the thing.
            settled = [
                s.upload_id
                for s in candidates
                if s.upload_id is not None and s.upload_id not in writing
            ]
            rowless = {v.id: v for v in await view.objects.without_blob_row_among(settled)}
            known = await view.blobs.known(storage_class, candidates)
        unknown = [s for s in candidates if s.address not in known and s.upload_id not in writing]
        # A version whose blob has a row is a dedup hit: its own copy is redundant.
        lost = [LostRow(s, rowless[s.upload_id]) for s in unknown if s.upload_id in rowless]
        orphans = [s for s in unknown if s.upload_id not in rowless]
        if orphans or lost:
            yield Unindexed(orphans, lost)


async def find_orphans(
    metadata: MetadataStore,
    blobs: BlobStore,
    storage_class: StorageClass,
    *,
    stored_before: datetime | None = None,
) -> AsyncIterator[list[StoredBlob]]:
    """The orphans of `find_unindexed`, batch by batch (GC's orphan step)."""
    async for batch in find_unindexed(metadata, blobs, storage_class, stored_before=stored_before):
        if batch.orphans:
            yield batch.orphans


async def remove_orphan(metadata: MetadataStore, blobs: BlobStore, stored: StoredBlob) -> Removal:
    """Remove one thing `find_orphans` reported, and say what became of it."""
    if stored.content_hash is None:
        # Only the upload that wrote it could adopt it, and that upload has no WRITING
        # row left, and no version whose blob lacks a row (find_unindexed): nothing
        # can make it a blob any more.
        return _removal(await blobs.remove(stored.storage_class, stored.address))
    location = BlobLocation(stored.storage_class, stored.content_hash, stored.address)
    async with metadata.transaction() as uow:
        # Claiming inserts a locked row: an upload of the same bytes waits for this
        # transaction, then publishes the blob again.
        if not await uow.blobs.claim_orphan(location, stored.size_bytes):
            if await uow.blobs.claim_stale(location):
                # The row keeps its copy of the other kind (inline or not): this one is
                # redundant, and the row's lock keeps uploads from adopting it meanwhile.
                removed = await blobs.remove(stored.storage_class, stored.address)
                await uow.commit()
                return _removal(removed)
            return Removal.KEPT  # a row appeared since the scan (rolls back)
        if await uow.objects.ids_of_blob(location):
            # Its row was lost, not its objects: fsck's missing-row (rolls back).
            return Removal.KEPT
        removed = await blobs.remove(stored.storage_class, stored.address)  # before commit
        await uow.blobs.forget(location)
        await uow.commit()
    return _removal(removed)


def _removal(removed: bool) -> Removal:
    return Removal.REMOVED if removed else Removal.GONE
