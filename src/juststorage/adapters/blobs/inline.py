"""InlineBlobStore: blobs of at most `max_bytes` kept in the metadata database (SPEC §8.1),
in front of the store that keeps the larger ones (a class's files or S3 objects).

An upload's body is held in memory up to the threshold; one byte more and everything
is handed on to the larger blobs' store, so no more than the threshold is ever held to
decide. A body that stayed small is stored nowhere before its commit: `confirm()`
writes it through the group commit's unit of work, in the transaction that takes its
reference, so N small uploads cost one database commit and no file or S3 object.
Its address names its content (`inline:<hex>`): `scan` lists the inline rows with
their hash, so GC's and fsck's orphan rules apply unchanged. The bytes are deleted
with their blob row, in the transaction that deletes it (`BlobIndex.forget*`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from datetime import UTC, datetime
from types import TracebackType
from uuid import UUID

from juststorage.application.blob_ports import BlobReader, BlobStore, StagedBlob
from juststorage.application.downloads import InlineReader
from juststorage.application.ports import MetadataStore, UnitOfWork
from juststorage.application.records import (
    INLINE_PREFIX,
    BlobLocation,
    StoredBlob,
    TempFile,
    is_inline_address,
)
from juststorage.domain.errors import NotFound
from juststorage.domain.model import ContentHash, StorageClass

_SCAN_BATCH = 500
# Inline rows record no time of their own: they are written and deleted in the
# transactions that write and delete their blob rows, so one without a row is damage,
# never an upload in flight, and counts as older than any grace period.
_LONG_AGO = datetime(1970, 1, 1, tzinfo=UTC)


class InlineStagedBlob:
    """One upload's bytes: in memory while they fit under the threshold, else on the
    larger blobs' store (`spill`, entered on an exit stack made then, which the
    staging block leaves with it: `_InlineStaging`)."""

    def __init__(
        self,
        max_bytes: int,
        spill: Callable[[], AbstractAsyncContextManager[StagedBlob]],
    ) -> None:
        self._max_bytes = max_bytes
        self._spill = spill
        self.stack: AsyncExitStack | None = None  # made by a spill, left by the block
        self._buffer = bytearray()
        self._larger: StagedBlob | None = None
        self._digest: ContentHash | None = None

    @property
    def spilled(self) -> bool:
        """True once the body went over the threshold and on to the larger store."""
        return self._larger is not None

    async def write(self, chunk: bytes) -> None:
        if self._larger is not None:
            await self._larger.write(chunk)
            return
        if len(self._buffer) + len(chunk) <= self._max_bytes:
            self._buffer += chunk
            return
        # Over the threshold: everything goes on to the larger store from here, so at
        # most the threshold is ever held in memory.
        self.stack = AsyncExitStack()
        self._larger = await self.stack.enter_async_context(self._spill())
        held, self._buffer = bytes(self._buffer), bytearray()
        if held:
            await self._larger.write(held)
        await self._larger.write(chunk)

    async def seal(self) -> tuple[ContentHash, int]:
        if self._larger is not None:
            return await self._larger.seal()
        # Nothing to make durable yet: the bytes commit with their object (confirm).
        self._digest = ContentHash(hashlib.sha256(self._buffer).hexdigest())
        return self._digest, len(self._buffer)

    @property
    def address(self) -> str:
        if self._larger is not None:
            return self._larger.address
        if self._digest is None:
            raise RuntimeError("address before seal()")
        return INLINE_PREFIX + self._digest.hex

    async def publish(self) -> bool:
        if self._larger is not None:
            return await self._larger.publish()
        if self._digest is None:
            raise RuntimeError("publish() before seal()")
        return False  # stored by confirm(), inside the commit's transaction

    def inline_bytes(self, blob: BlobLocation) -> bytes | bytearray | None:
        if self._larger is not None or self._digest is None or blob.address != self.address:
            return None
        return self._buffer  # as confirm() writes it: the buffer itself, no copy

    async def confirm(self, blob: BlobLocation, *, uow: UnitOfWork) -> bool:
        if self._larger is not None:
            return await self._larger.confirm(blob, uow=uow)
        if self._digest is None:
            raise RuntimeError("confirm() before seal()")
        if blob.address != self.address:
            # A dedup hit on a copy kept elsewhere (a file, an S3 object, stored before
            # inlining or above an earlier threshold). The bytes are here: the row moves
            # inline in this transaction, so every tenant's reads of this content take
            # the same path whoever stored it first (SPEC §5). The old copy is left for
            # GC's orphan step (a download may be reading it).
            await uow.blobs.move_inline(blob, self._buffer)
            return False
        # Under the row lock acquire() took: in the transaction that commits the object.
        # The buffer itself (both drivers take a bytearray): no second copy in memory.
        return await uow.blobs.store_inline(blob, self._buffer)


class _InlineStaging:
    """The block of one inline staging. The larger store's stage() is entered only if
    the body spills; leaving the block then runs its cleanup (temp file or object
    removed), as its own block would. A class, not a generator-based context
    manager with an exit stack: this runs for every small upload."""

    def __init__(self, staged: InlineStagedBlob) -> None:
        self._staged = staged

    async def __aenter__(self) -> InlineStagedBlob:
        return self._staged

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        stack = self._staged.stack
        if stack is None:
            return False
        return bool(await stack.__aexit__(exc_type, exc, tb))


class InlineBlobStore:
    """`BlobStore` keeping blobs of at most `max_bytes` in the metadata database and
    handing every other blob, and every address not `inline:`, to `larger`. At
    `max_bytes` 0 no new blob goes inline, and the existing inline rows still work."""

    def __init__(self, metadata: MetadataStore, larger: BlobStore, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.metadata = metadata
        self.larger = larger
        self.max_bytes = max_bytes

    async def prepare(self) -> None:
        await self.larger.prepare()

    def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AbstractAsyncContextManager[StagedBlob]:
        if self.max_bytes == 0:
            # Inlining is off for new uploads (0-byte ones too); the inline rows that
            # exist are still read, scanned and collected until migrate-blobs moves them.
            return self.larger.stage(storage_class, upload_id, owner)
        return _InlineStaging(
            InlineStagedBlob(
                self.max_bytes, lambda: self.larger.stage(storage_class, upload_id, owner)
            )
        )

    async def _data(self, location: BlobLocation) -> bytes:
        async with self.metadata.snapshot() as view:
            data = await view.blobs.inline_data(location)
        if data is None:
            raise NotFound("no such object")
        return data

    async def open(
        self,
        location: BlobLocation,
        *,
        first: int = 0,
        length: int | None = None,
        background: bool = False,
    ) -> BlobReader:
        if location.is_inline:
            return InlineReader(await self._data(location))
        return await self.larger.open(location, first=first, length=length, background=background)

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        if location.is_inline:
            return ContentHash(hashlib.sha256(await self._data(location)).hexdigest())
        return await self.larger.digest_of(location)

    async def probe(self, storage_class: StorageClass) -> None:
        await self.larger.probe(storage_class)

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        return await self.larger.space(storage_class)

    async def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        async for batch in self.larger.scan(storage_class):
            yield batch
        after = ""
        while True:
            async with self.metadata.snapshot() as view:
                rows = await view.blobs.inline_stored(storage_class, after, _SCAN_BATCH)
            if rows:
                yield [
                    StoredBlob(storage_class, INLINE_PREFIX + h.hex, size, _LONG_AGO, h)
                    for h, size in rows
                ]
            if len(rows) < _SCAN_BATCH:
                return
            after = rows[-1][0].hex

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        if is_inline_address(address):
            # The bytes were deleted with their row, in the caller's transaction
            # (GC's forget_if_unreferenced, an orphan's forget): nothing is left here.
            return True
        return await self.larger.remove(storage_class, address)

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        return await self.larger.temp_files(storage_class)

    async def remove_temp(self, temp: TempFile) -> None:
        await self.larger.remove_temp(temp)

    async def rewrite(self, location: BlobLocation, chunks: AsyncIterable[bytes]) -> None:
        if not location.is_inline:
            await self.larger.rewrite(location, chunks)
            return
        data = bytearray()
        async for chunk in chunks:
            data += chunk
        async with self.metadata.transaction() as uow:
            # The row is already inline at this address: this rewrites its bytes.
            if not await uow.blobs.move_inline(location, data):
                raise NotFound("no such inline blob")
            await uow.commit()
