"""Move blobs between the metadata database and their class's store when
`JUSTSTORAGE_INLINE_MAX_BYTES` changes (SPEC §8.1), verified by hash, resumable,
while the server keeps running.

Out of line (inline blobs now over the threshold): read the row's bytes, refuse them
unless they hash to the row's name, store them durably in the class's store, then in
one transaction point the row at that copy and delete its inline bytes; the copy is
adopted (`confirm`) under the row's lock. Into line (blobs kept as a file or S3
object, now at most the threshold): read and verify the copy, then in one
transaction write the bytes inline and point the row at them, only while the row
still names that copy. The old copy is removed after the page's commits, under the
row's lock (`claim_stale`, as GC's orphan step does); a crash before that leaves it
to GC. A row GC removed or an upload re-pointed meanwhile is skipped.
Running it again continues where it stopped.
"""

from __future__ import annotations

import hashlib
import uuid

from juststorage.application.blob_ports import BlobStore
from juststorage.application.migrate_blobs import MigrationReport, Progress
from juststorage.application.ports import MetadataStore
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import NotFound
from juststorage.domain.model import ContentHash, StorageClass

_PAGE = 200


async def migrate_inline(
    metadata: MetadataStore,
    larger: BlobStore,
    storage_class: StorageClass,
    max_bytes: int,
    *,
    progress: Progress | None = None,
) -> MigrationReport:
    """Make the class's blobs follow `max_bytes`: inline ones over it move to `larger`
    (the class's file or S3 store), others of at most it move inline (none when
    `max_bytes` is 0). A missing or damaged copy is reported and skipped."""
    report = MigrationReport()
    for inline in (False, True) if max_bytes > 0 else (False,):
        after = ""
        while True:
            async with metadata.snapshot() as view:
                page = await view.blobs.to_move(
                    storage_class, inline=inline, max_bytes=max_bytes, after=after, limit=_PAGE
                )
            moved: list[BlobLocation] = []
            for location, size in page:
                if inline:
                    if await _into_line(metadata, larger, location, size, report):
                        moved.append(location)
                else:
                    await _out_of_line(metadata, larger, location, size, report)
                if progress is not None:
                    progress(report.copied, report.bytes_copied)
            for old in moved:
                # After the page's commits (a download that read the row before its move
                # has opened the copy by now), under the row's lock and only while the
                # row stays inline, as GC removes such a copy. A crash before this
                # leaves the copy to GC.
                async with metadata.transaction() as uow:
                    if await uow.blobs.claim_stale(old):
                        await larger.remove(old.storage_class, old.address)
                    await uow.commit()
            if len(page) < _PAGE:
                break
            after = page[-1][0].content_hash.hex
    async with metadata.snapshot() as view:
        for inline in (False, True) if max_bytes > 0 else (False,):
            report.remaining += await view.blobs.count_to_move(
                storage_class, inline=inline, max_bytes=max_bytes
            )
    return report


def _name(location: BlobLocation) -> str:
    return f"{location.storage_class.value} sha256:{location.content_hash.hex}"


async def _out_of_line(
    metadata: MetadataStore,
    larger: BlobStore,
    location: BlobLocation,
    size: int,
    report: MigrationReport,
) -> None:
    async with metadata.snapshot() as view:
        data = await view.blobs.inline_data(location)
    if data is None:
        report.problems.append(f"{_name(location)}: the inline bytes are missing")
        return
    async with larger.stage(location.storage_class, uuid.uuid4()) as staged:
        await staged.write(data)
        digest, copied = await staged.seal()  # durable in the store, unreferenced
        if digest != location.content_hash or copied != size:
            report.problems.append(f"{_name(location)}: the inline bytes hash to {digest.hex}")
            return  # leaving stage deletes the copy
        await staged.publish()  # durable at its address before the row points at it
        copy = BlobLocation(location.storage_class, digest, staged.address)
        async with metadata.transaction() as uow:
            # Only a row still inline: GC may have removed it meanwhile.
            if await uow.blobs.move_out_of_line(location, copy.address):
                await staged.confirm(copy, uow)  # keep the copy: it is the blob now
                report.copied += 1
                report.bytes_copied += size
            else:
                report.skipped += 1
            await uow.commit()


async def _into_line(
    metadata: MetadataStore,
    larger: BlobStore,
    location: BlobLocation,
    size: int,
    report: MigrationReport,
) -> bool:
    """True if the row now keeps the bytes inline (its old copy is to be removed)."""
    try:
        reader = await larger.open(location)
    except NotFound:
        report.problems.append(f"{_name(location)}: the source file is missing")
        return False
    try:
        data = b"".join([c async for c in reader.chunks(0, size)])
    finally:
        await reader.close()
    digest = ContentHash(hashlib.sha256(data).hexdigest())
    if digest != location.content_hash or len(data) != size:
        report.problems.append(f"{_name(location)}: the source bytes hash to {digest.hex}")
        return False
    async with metadata.transaction() as uow:
        # Only a row still at that copy: GC or an upload may have changed it meanwhile.
        moved = await uow.blobs.move_inline(location, data)
        await uow.commit()
    if moved:
        report.copied += 1
        report.bytes_copied += size
    else:
        report.skipped += 1
    return moved
