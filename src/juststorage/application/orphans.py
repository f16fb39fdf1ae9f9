"""Stored things the blob index does not know: one routine for GC and fsck, the same
for every store.

A store's `scan` reports each stored thing with who may still adopt it
(`StoredBlob`): any upload of its content, one upload, or nobody. It is an orphan
when no blob row accounts for it and no upload that may adopt it is in flight.
Removing one takes the same care whoever calls: bytes that name their content are
removed under that content's row lock, so an upload of the same bytes waits and
then publishes them again.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from datetime import datetime

from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import MetadataStore
from juststorage.application.records import BlobLocation, StoredBlob
from juststorage.domain.model import StorageClass


class Removal(enum.Enum):
    """What `remove_orphan` did: `REMOVED` it, found it `GONE` already (another pass
    or an operator removed it since the scan: repaired all the same), or `KEPT` it (a
    row or an object turned up for its content meanwhile)."""

    REMOVED = "removed"
    GONE = "gone"
    KEPT = "kept"


async def find_orphans(
    metadata: MetadataStore,
    blobs: BlobStore,
    storage_class: StorageClass,
    *,
    stored_before: datetime | None = None,
) -> AsyncIterator[list[StoredBlob]]:
    """Batches of the class's stored things that no blob row accounts for and no
    upload in flight may adopt; with `stored_before`, only those older than it."""
    async for batch in blobs.scan(storage_class):
        candidates = [s for s in batch if stored_before is None or s.modified_at < stored_before]
        if not candidates:
            continue
        async with metadata.snapshot() as view:
            # WRITING rows first, then blob rows: an upload that is no longer WRITING
            # has either committed (the second query then sees its address; commits
            # are atomic) or can never commit (commit_upload needs the WRITING row),
            # so a thing unknown to both can never become the blob of an upload
            # that owns it.
            writing = await view.objects.writing_among(
                [s.upload_id for s in candidates if s.upload_id is not None]
            )
            known = await view.blobs.known(storage_class, candidates)
        orphans = [s for s in candidates if s.address not in known and s.upload_id not in writing]
        if orphans:
            yield orphans


async def remove_orphan(metadata: MetadataStore, blobs: BlobStore, stored: StoredBlob) -> Removal:
    """Remove one thing `find_orphans` reported, and say what became of it."""
    if stored.content_hash is None:
        # Only the upload that wrote it could adopt it, and that upload has no WRITING
        # row left (find_orphans): nothing can make it a blob any more.
        return _removal(await blobs.remove(stored.storage_class, stored.address))
    location = BlobLocation(stored.storage_class, stored.content_hash, stored.address)
    async with metadata.transaction() as uow:
        # Claiming inserts a locked row: an upload of the same bytes waits for this
        # transaction, then publishes the blob again.
        if not await uow.blobs.claim_orphan(location, stored.size_bytes):
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
