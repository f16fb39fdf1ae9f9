"""Move blobs between the metadata database and their class's store when
`JUSTSTORAGE_INLINE_MAX_BYTES` changes (SPEC §8.1), verified by hash, resumable,
while the server keeps running.

Out of line (inline blobs now over the threshold): read the row's bytes, refuse them
unless they hash to the row's name, and store them durably in the class's store
under an upload id of their own, registered first as an upload's is (a `WRITING`
row: GC's orphan step keeps a stored thing whose upload is in flight, which is all
that protects an S3 object named by its upload). Then in one transaction point the
row at that copy, delete its inline bytes and the `WRITING` row; the copy is
adopted (`confirm`) under the row's lock. Into line (blobs kept as a file or S3
object, now at most the threshold): read and verify the copy, then in one
transaction write the bytes inline and point the row at them, only while the row
still names that copy. The old copy is left to GC's orphan step (`claim_stale`,
under the row's lock, once older than the grace period): a download that looked the
row up before the move may still be streaming it. A row GC removed or an upload
re-pointed meanwhile is skipped. Running it again continues where it stopped.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from juststorage.application.blob_ports import BlobStore
from juststorage.application.migrate_blobs import (
    MigrationReport,
    Progress,
    blob_name,
    open_source,
)
from juststorage.application.ports import Clock, MetadataStore
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import StorageError
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    StorageClass,
    TenantId,
)

_PAGE = 200
# The `WRITING` row of a copy in flight names no tenant's object: a name no tenant can
# have (tenant names start with a-z or 0-9), never listed or committed.
_MIGRATION_TENANT = TenantId.trusted("_migrate-blobs")
_MIGRATION_NAMESPACE = Namespace.trusted("_inline")


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def migrate_inline(
    metadata: MetadataStore,
    larger: BlobStore,
    storage_class: StorageClass,
    max_bytes: int,
    *,
    owner: str = "",
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> MigrationReport:
    """Make the class's blobs follow `max_bytes`: inline ones over it move to `larger`
    (the class's file or S3 store), others of at most it move inline (none when
    `max_bytes` is 0). A missing or damaged copy is reported and skipped. `owner`
    (this process, as uploads name theirs) and `clock` stamp the `WRITING` row of
    each copy moved out."""
    report = MigrationReport()
    mover = _Mover(metadata, larger, report, owner, clock or _SystemClock())
    for inline in (False, True) if max_bytes > 0 else (False,):
        after = ""
        while True:
            async with metadata.snapshot() as view:
                page = await view.blobs.to_move(
                    storage_class, inline=inline, max_bytes=max_bytes, after=after, limit=_PAGE
                )
            for location, size in page:
                if inline:
                    await _into_line(metadata, larger, location, size, report)
                else:
                    await mover.out_of_line(location, size)
                if progress is not None:
                    progress(report.copied, report.bytes_copied)
            if len(page) < _PAGE:
                break
            after = page[-1][0].content_hash.hex
    async with metadata.snapshot() as view:
        for inline in (False, True) if max_bytes > 0 else (False,):
            report.remaining += await view.blobs.count_to_move(
                storage_class, inline=inline, max_bytes=max_bytes
            )
    return report


class _Mover:
    """Moves inline blobs out to `larger`, each copy registered while it is in flight."""

    def __init__(
        self,
        metadata: MetadataStore,
        larger: BlobStore,
        report: MigrationReport,
        owner: str,
        clock: Clock,
    ) -> None:
        self.metadata, self.larger, self.report = metadata, larger, report
        self.owner, self.clock = owner, clock

    async def out_of_line(self, location: BlobLocation, size: int) -> None:
        metadata, report = self.metadata, self.report
        async with metadata.snapshot() as view:
            data = await view.blobs.inline_data(location)
        if data is None:
            report.problems.append(f"{blob_name(location)}: the inline bytes are missing")
            return
        copy_id = uuid.uuid4()
        async with metadata.transaction(durable=False) as uow:
            # Before anything is stored under copy_id: GC keeps what an upload in
            # flight stored, and drops the row of a dead owner only after the grace.
            await uow.objects.add_writing(self._upload(copy_id, location))
            await uow.commit()
        try:
            await self._copy(location, size, data, copy_id)
        finally:
            await _forget_writing(metadata, copy_id)  # gone already after a move

    def _upload(self, copy_id: uuid.UUID, location: BlobLocation) -> NewUpload:
        return NewUpload(
            id=copy_id,
            tenant_id=_MIGRATION_TENANT,
            namespace=_MIGRATION_NAMESPACE,
            key=ObjectKey(location.content_hash.hex),
            storage_class=location.storage_class,
            content_type="application/octet-stream",
            created_at=self.clock.now(),
            owner=self.owner,
        )

    async def _copy(
        self, location: BlobLocation, size: int, data: bytes, copy_id: uuid.UUID
    ) -> None:
        report = self.report
        async with self.larger.stage(location.storage_class, copy_id, self.owner) as staged:
            await staged.write(data)
            digest, copied = await staged.seal()  # durable in the store, unreferenced
            if digest != location.content_hash or copied != size:
                report.problems.append(
                    f"{blob_name(location)}: the inline bytes hash to {digest.hex}"
                )
                return  # leaving stage deletes the copy
            await staged.publish()  # durable at its address before the row points at it
            copy = BlobLocation(location.storage_class, digest, staged.address)
            async with self.metadata.transaction() as uow:
                # Only a row still inline: GC may have removed it meanwhile. The copy's
                # WRITING row goes in the same commit that lets the blob row name it.
                await uow.objects.discard_writing(copy_id)
                moved = await uow.blobs.move_out_of_line(location, copy.address)
                if moved:
                    await staged.confirm(copy, uow=uow)  # keep the copy: it is the blob now
                await uow.commit()
            report.count(moved, size)


async def _forget_writing(metadata: MetadataStore, copy_id: uuid.UUID) -> None:
    """Best effort: drop a copy's WRITING row now rather than wait for GC."""
    try:
        async with metadata.transaction(durable=False) as uow:
            await uow.objects.discard_writing(copy_id)
            await uow.commit()
    except StorageError:
        pass  # GC removes a stale WRITING row of a dead owner after the grace period


async def _into_line(
    metadata: MetadataStore,
    larger: BlobStore,
    location: BlobLocation,
    size: int,
    report: MigrationReport,
) -> None:
    """Keep the bytes inline; the old copy is left to GC (see the module's notes)."""
    reader = await open_source(larger, location, report)
    if reader is None:
        return
    try:
        data = b"".join([c async for c in reader.chunks(0, size)])
    finally:
        await reader.close()
    digest = ContentHash(hashlib.sha256(data).hexdigest())
    if digest != location.content_hash or len(data) != size:
        report.problems.append(f"{blob_name(location)}: the source bytes hash to {digest.hex}")
        return
    async with metadata.transaction() as uow:
        # Only a row still at that copy: GC or an upload may have changed it meanwhile.
        moved = await uow.blobs.move_inline(location, data)
        await uow.commit()
    report.count(moved, size)
