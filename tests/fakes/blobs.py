"""FakeBlobStore: the blob port, blobs and staged uploads in dicts, each with the
modification time a file would have (from the store's clock).

By default it addresses blobs by their content, like the filesystem; with
`by_upload=True` by their upload, like S3: sealing stores the bytes under the
upload's own address, the blob row decides whether they are kept, and `scan`
reports them with the upload that may adopt them.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from uuid import UUID

from fakes.clock import FakeClock
from juststorage.application.ports import UnitOfWork
from juststorage.application.records import BlobLocation, StoredBlob, TempFile
from juststorage.domain.errors import NotFound, StorageError
from juststorage.domain.model import ContentHash, StorageClass

READ_CHUNK_BYTES = 1024 * 1024


class FakeStagedBlob:
    def __init__(self, store: FakeBlobStore, temp: tuple[StorageClass, UUID]) -> None:
        self._store = store
        self._temp = temp
        self._buffer = bytearray()
        self._hasher = hashlib.sha256()
        self._digest: ContentHash | None = None
        self.kept = False  # by_upload: the blob row names these bytes

    async def write(self, chunk: bytes) -> None:
        if self._digest is not None:
            raise RuntimeError("write() after seal()")
        self._hasher.update(chunk)
        self._buffer += chunk
        self._store.temps[self._temp] = self._store.clock.now()  # the temp file's mtime

    async def seal(self) -> tuple[ContentHash, int]:
        self._digest = ContentHash(self._hasher.hexdigest())
        if self._store.by_upload:
            self._place()  # like S3: durable under the upload's own address at once
        return self._digest, len(self._buffer)

    @property
    def address(self) -> str:
        if self._store.by_upload:
            return str(self._temp[1])
        if self._digest is None:
            raise RuntimeError("address before seal()")
        return self._digest.hex  # like the filesystem: the address follows from the hash

    async def publish(self) -> bool:
        if self._store.by_upload:
            if self._digest is None:
                raise RuntimeError("publish() before seal()")
            return False  # stored under its own address already (seal)
        return self._place()

    def inline_bytes(self, blob: BlobLocation) -> bytes | bytearray | None:
        return None  # this store keeps no blob in the database

    async def confirm(self, blob: BlobLocation, *, uow: UnitOfWork) -> bool:
        if self._digest is None:
            raise RuntimeError("confirm() before seal()")
        if self._store.by_upload:
            # The row names this upload's address (these bytes are the blob) or an
            # older copy's (a dedup hit: the end of stage removes ours).
            self.kept = blob.address == self.address
            return self.kept
        if (self._temp[0], self._digest.hex) in self._store.blobs:
            return False
        return self._place()

    def _place(self) -> bool:
        if self._digest is None:
            raise RuntimeError("publish() before seal()")
        written_at = self._store.temps.get(self._temp)
        if written_at is None:
            raise StorageError("storage I/O error: the temp file is gone")
        location = (self._temp[0], self.address)
        if location in self._store.blobs:
            return False
        self._store.blobs[location] = bytes(self._buffer)
        self._store.modified[location] = written_at  # a hard link keeps the temp's mtime
        return True


class FakeBlobReader:
    path = None

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        if self._data is None:
            raise RuntimeError("reader is closed")
        offset, end = first, first + length
        while offset < end:
            data = self._data[offset : min(end, offset + READ_CHUNK_BYTES)]
            if not data:
                raise StorageError("blob file is shorter than its recorded size")
            offset += len(data)
            yield data

    async def close(self) -> None:
        self._data = None


class FakeBlobStore:
    """Blobs and temp files in dicts, each with the modification time a file would have."""

    def __init__(
        self, clock: FakeClock | None = None, *, scan_batch: int = 500, by_upload: bool = False
    ) -> None:
        self.clock = clock or FakeClock()
        self.by_upload = by_upload
        self.blobs: dict[tuple[StorageClass, str], bytes] = {}
        self.modified: dict[tuple[StorageClass, str], datetime] = {}
        self.temps: dict[tuple[StorageClass, UUID], datetime] = {}  # staged uploads
        self.owners: dict[tuple[StorageClass, UUID], str] = {}  # their owners
        self._scan_batch = scan_batch
        self.free_bytes, self.total_bytes = 1 << 30, 1 << 32  # what `space` reports

    async def prepare(self) -> None:
        pass

    @asynccontextmanager
    async def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AsyncIterator[FakeStagedBlob]:
        temp = (storage_class, upload_id)
        if temp in self.temps:
            raise StorageError(f"upload {upload_id} is already staged")
        self.owners[temp] = owner
        self.temps[temp] = self.clock.now()
        staged = FakeStagedBlob(self, temp)
        try:
            yield staged
        finally:
            if self.by_upload and not staged.kept:
                await self.remove(storage_class, staged.address)
            self.temps.pop(temp, None)
            self.owners.pop(temp, None)

    async def open(
        self,
        location: BlobLocation,
        *,
        first: int = 0,
        length: int | None = None,
        background: bool = False,
    ) -> FakeBlobReader:
        data = self.blobs.get((location.storage_class, location.address))
        if data is None:
            raise NotFound("no such object")
        return FakeBlobReader(data)

    async def probe(self, storage_class: StorageClass) -> None:
        pass

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        return self.free_bytes, self.total_bytes

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        key = (storage_class, address)
        self.modified.pop(key, None)
        return self.blobs.pop(key, None) is not None

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        return [
            TempFile(cls, str(upload_id), when, upload_id, self.owners.get((cls, upload_id), ""))
            for (cls, upload_id), when in self.temps.items()
            if cls is storage_class
        ]

    async def remove_temp(self, temp: TempFile) -> None:
        key = (temp.storage_class, temp.upload_id)
        self.temps.pop(key, None)  # type: ignore[arg-type]
        self.owners.pop(key, None)  # type: ignore[arg-type]

    async def rewrite(self, location: BlobLocation, chunks: AsyncIterable[bytes]) -> None:
        data = b"".join([chunk async for chunk in chunks])
        key = (location.storage_class, location.address)
        self.blobs[key] = data
        self.modified[key] = self.clock.now()

    async def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        found = [
            self._stored(cls, address, data)
            for (cls, address), data in sorted(self.blobs.items())
            if cls is storage_class
        ]
        for start in range(0, len(found), self._scan_batch):
            yield found[start : start + self._scan_batch]

    def _stored(self, storage_class: StorageClass, address: str, data: bytes) -> StoredBlob:
        modified_at = self.modified[(storage_class, address)]
        if self.by_upload:
            return StoredBlob(
                storage_class, address, len(data), modified_at, upload_id=UUID(address)
            )
        return StoredBlob(
            storage_class, address, len(data), modified_at, content_hash=ContentHash(address)
        )

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        data = self.blobs.get((location.storage_class, location.address))
        if data is None:
            raise NotFound("blob file is missing")
        return ContentHash(hashlib.sha256(data).hexdigest())

    # Test helpers (not part of the port): damage and crash leftovers.
    def put(self, location: BlobLocation, data: bytes, modified_at: datetime) -> None:
        """A blob file with these bytes, whatever their hash (a corrupt or orphan file)."""
        key = (location.storage_class, location.address)
        self.blobs[key] = data
        self.modified[key] = modified_at
