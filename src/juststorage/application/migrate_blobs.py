"""Move blobs from the filesystem store to another store (S3), verified by hash,
resumable, while the server keeps running on the filesystem (docs/scale-out.md).

For each blob row of the class still at its content address (the filesystem's):
stream the file into the target while hashing it (the target's own writer), refuse
it unless the bytes hash to the row's name, optionally read the copy back and hash
it again, then record the copy's address on the row in a transaction that only
succeeds while the row is still at its content address. A row GC deleted meanwhile,
or one a new upload re-pointed, is left alone and its copy deleted; a copy orphaned
by a crash is removed by the target's GC after the grace. Running it again continues
where it stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from juststorage.application.blob_ports import BlobReader, BlobStore
from juststorage.application.ports import MetadataStore
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import NotFound
from juststorage.domain.model import StorageClass

_PAGE = 200

Progress = Callable[[int, int], None]  # (blobs copied, bytes copied)


@dataclass(slots=True)
class MigrationReport:
    copied: int = 0
    bytes_copied: int = 0
    skipped: int = 0  # the row changed meanwhile (removed by GC, or re-pointed)
    problems: list[str] = field(default_factory=list)  # missing or damaged source files
    remaining: int = 0  # rows of the class still at their content address

    @property
    def complete(self) -> bool:
        return self.remaining == 0 and not self.problems

    def count(self, moved: bool, size: int) -> None:
        """One blob of `size` bytes moved, or skipped (`moved` False: its row changed
        meanwhile)."""
        if moved:
            self.copied += 1
            self.bytes_copied += size
        else:
            self.skipped += 1


def blob_name(location: BlobLocation) -> str:
    """How a problem names a blob: its class and hash."""
    return f"{location.storage_class.value} sha256:{location.content_hash.hex}"


async def open_source(
    store: BlobStore, location: BlobLocation, report: MigrationReport
) -> BlobReader | None:
    """A reader of the blob's copy in `store`; None, reported, when it is missing."""
    try:
        return await store.open(location)
    except NotFound:
        report.problems.append(f"{blob_name(location)}: the source file is missing")
        return None


async def migrate_blobs(
    metadata: MetadataStore,
    source: BlobStore,
    target: BlobStore,
    storage_class: StorageClass,
    *,
    verify_copy: bool = True,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy every blob of `storage_class` still at its content address from `source`
    to `target`.

    Raises ValueError if `target` addresses blobs by their content too (there is
    nothing to record), and what the stores raise for an unreachable store; a
    missing or damaged source file is reported and skipped.
    """
    report = MigrationReport()
    after: BlobLocation | None = None
    while True:
        async with metadata.snapshot() as view:
            page = await view.blobs.content_addressed(storage_class, after, _PAGE)
        for location, size in page:
            await _copy_one(metadata, source, target, location, size, verify_copy, report)
            if progress is not None:
                progress(report.copied, report.bytes_copied)
        if len(page) < _PAGE:
            break
        after = page[-1][0]
    async with metadata.snapshot() as view:
        report.remaining = len(await view.blobs.content_addressed(storage_class, None, 1_000_000))
    return report


async def _copy_one(
    metadata: MetadataStore,
    source: BlobStore,
    target: BlobStore,
    location: BlobLocation,
    size: int,
    verify_copy: bool,
    report: MigrationReport,
) -> None:
    name = blob_name(location)
    reader = await open_source(source, location, report)
    if reader is None:
        return
    try:
        async with target.stage(location.storage_class, uuid.uuid4()) as staged:
            async for chunk in reader.chunks(0, size):
                await staged.write(chunk)
            digest, copied = await staged.seal()  # durable in the target, unreferenced
            if digest != location.content_hash or copied != size:
                report.problems.append(f"{name}: the source bytes hash to sha256:{digest.hex}")
                return  # leaving stage deletes the copy
            copy = BlobLocation(location.storage_class, digest, staged.address)
            if copy.address == location.address:
                raise ValueError("the target store addresses blobs by their content too")
            if verify_copy and await target.digest_of(copy) != digest:
                report.problems.append(f"{name}: the copy read back differs")
                return
            async with metadata.transaction() as uow:
                # Only a row still at its content address: GC may have removed it, or a
                # new upload of the same bytes may have re-pointed it, meanwhile.
                moved = await uow.blobs.relocate(location, copy.address)
                if moved:
                    await staged.publish()
                    await staged.confirm(copy, uow=uow)  # keep the copy: it is the blob now
                await uow.commit()
            report.count(moved, size)
    finally:
        await reader.close()
