"""The S3 store's part store: the parts of multipart upload sessions (SPEC §8.2) on
an `s3://` root.

Layout under a class root, beside `blobs/`:

    <prefix>/parts/<session id>/<n>.<attempt>.<owner>   one object per part sent

As on the filesystem (filesystem_parts.py), each attempt at a part is written
under a fresh name, streamed (a multipart upload of `S3_PART_BYTES` pieces, so
memory stays bounded whatever the part's size) and hashed on the way; the part row
names it once S3 has stored it, and `<owner>` lets GC judge an object no row names
(or an unfinished multipart upload of one, which `scan` lists too). An unfinished
upload's time is when it began and never advances, however long the part takes:
what keeps GC off a part being sent is its writer's lease (part_leases.py).

Completion happens in the store: one multipart upload of `blobs/<object id>` whose
parts are UploadPartCopy of the part objects (no byte is sent again through this
process), completed by S3, then committed like an upload's object (its WRITING row
guards it from GC meanwhile). Only the parts the session's running hash does not
cover are read, to hash them (each also on its own, checked against its row's
sha256: a part object changed since its 200 is refused, DamagedPart). S3 wants every
piece but the last to be at least 5 MiB; with a smaller
`JUSTSTORAGE_UPLOAD_PART_MIN_BYTES` and such parts, the parts are instead streamed
through this process into a new object.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING
from uuid import UUID

import obstore
from obstore.store import S3Store

from juststorage.adapters.blobs import s3_multipart
from juststorage.adapters.blobs.filesystem_parts import parse_part_name, part_name
from juststorage.adapters.blobs.s3 import BLOBS_DIR, S3BlobStore
from juststorage.adapters.blobs.s3_io import (
    READ_CHUNK_BYTES,
    S3Connection,
    S3Root,
    hash_into,
    translated_s3_errors,
)
from juststorage.adapters.blobs.staging import cleaned_up
from juststorage.application.blob_ports import Hasher, StagedBlob
from juststorage.application.ports import UnitOfWork
from juststorage.application.records import BlobLocation
from juststorage.application.session_records import (
    PartCheck,
    PartFile,
    SessionPart,
    StreamSlot,
)
from juststorage.domain.errors import StorageError
from juststorage.domain.model import ContentHash, StorageClass

if TYPE_CHECKING:
    from obstore import AsyncWritableFile

PARTS_DIR = "parts/"
S3_MIN_PIECE = 5 * 1024 * 1024
S3_MAX_PIECE = 5 * 1024**3
_UNFINISHED = "?multipart"  # marks the address of an unfinished multipart upload of a part


class S3Part:
    """One part's object, streamed while it is hashed."""

    def __init__(
        self,
        store: S3Store,
        connection: S3Connection,
        root: S3Root,
        key: str,
        name: str,
        writer: AsyncWritableFile,
        part_bytes: int,
        running: Hasher | None,
    ) -> None:
        self._store = store
        self._connection = connection
        self._root = root
        self._key = key
        self._name = name
        self._writer = writer
        self._part_bytes = part_bytes
        self._running = running
        self._hasher = hashlib.sha256()
        self._size = 0
        self._stored = False
        self._kept = False

    @property
    def address(self) -> str:
        return self._name

    def keep(self) -> None:
        self._kept = True

    async def write(self, chunk: bytes) -> None:
        await hash_into(self._hasher, chunk, self._running)
        with translated_s3_errors("part upload"):
            await self._writer.write(chunk)
        self._size += len(chunk)

    async def seal(self) -> tuple[ContentHash, int]:
        with translated_s3_errors("part upload"):
            await self._writer.close()  # S3's 200: durable under its own key
        self._stored = True
        return ContentHash(self._hasher.hexdigest()), self._size

    async def aclose(self) -> None:
        if self._kept:
            return
        try:
            if self._stored:
                with translated_s3_errors("delete"):
                    await obstore.delete_async(self._store, self._key)
            elif self._size >= self._part_bytes:
                with translated_s3_errors("abort"):
                    await s3_multipart.abort_uploads_of(self._connection, self._root, self._key)
        except StorageError:
            pass  # GC removes what is left


class S3AssembledBlob:
    """A completed session's object, stored by S3 from the parts (`copy_into`)."""

    def __init__(self, store: S3Store, key: str, digest: ContentHash, size: int) -> None:
        self._store = store
        self._key = key
        self._digest = digest
        self._size = size
        self._published = False

    @property
    def address(self) -> str:
        return self._key

    async def write(self, chunk: bytes) -> None:
        raise RuntimeError("an assembled blob is written by the store")

    async def seal(self) -> tuple[ContentHash, int]:
        return self._digest, self._size

    async def publish(self) -> bool:
        return False  # stored under its own key already

    def inline_bytes(self, blob: BlobLocation) -> bytes | bytearray | None:
        return None  # an assembled S3 object is never kept inline

    async def confirm(self, blob: BlobLocation, *, uow: UnitOfWork) -> bool:
        # The row names this object (its bytes are the blob) or an older copy's (a
        # dedup hit: this object goes when the block is left).
        self._published = blob.address == self._key
        return self._published

    async def aclose(self) -> None:
        if self._published:
            return
        try:
            with translated_s3_errors("delete"):
                await obstore.delete_async(self._store, self._key)
        except StorageError:
            pass  # an object no row names: GC's orphan step removes it


class S3PartStore:
    """`PartStore` on the `s3://` roots of an `S3BlobStore` (the same clients)."""

    def __init__(self, blobs: S3BlobStore) -> None:
        self.blobs = self._blobs = blobs
        self.roots = blobs.roots
        self._connection = blobs.connection

    def _key(self, session_id: UUID, address: str) -> str:
        if not address or "/" in address:
            raise StorageError("not a part address")
        return f"{PARTS_DIR}{session_id}/{address.removesuffix(_UNFINISHED)}"

    def receive(
        self,
        storage_class: StorageClass,
        session_id: UUID,
        number: int,
        owner: str,
        running: Hasher | None = None,
        stream: StreamSlot | None = None,  # every part its own object here
    ) -> AbstractAsyncContextManager[S3Part]:
        name = part_name(number, owner)
        key = self._key(session_id, name)
        store = self._blobs.object_store(storage_class)
        writer = obstore.open_writer_async(
            store,
            key,
            buffer_size=self._blobs.part_bytes,
            max_concurrency=self._blobs.max_concurrency,
        )
        part = S3Part(
            store,
            self._connection,
            self.roots[storage_class],
            key,
            name,
            writer,
            self._blobs.part_bytes,
            running,
        )
        return cleaned_up(part)

    @asynccontextmanager
    async def assemble(
        self,
        storage_class: StorageClass,
        session_id: UUID,
        parts: Sequence[SessionPart],
        upload_id: UUID,
        owner: str,
        hashed: Hasher | None,
        hashed_parts: int,
        *,
        reuse_stream: bool = False,  # no streams here: every part its own object
    ) -> AsyncIterator[StagedBlob]:
        store = self._blobs.object_store(storage_class)
        keys = [self._key(session_id, p.address) for p in parts]
        with translated_s3_errors("part sizes"):
            sizes = [(await obstore.head_async(store, k))["size"] for k in keys]
        if any(size < S3_MIN_PIECE for size in sizes[:-1]):
            # S3 would refuse such pieces: the bytes go through this process once,
            # each part checked against its row on the way.
            async with self._blobs.stage(storage_class, upload_id, owner) as staged:
                for part in parts:
                    check = PartCheck.of(part)
                    async for chunk in self.read(storage_class, session_id, part.address):
                        await hash_into(check.hasher, chunk)
                        await staged.write(chunk)
                    check.verify()
                yield staged
            return
        hasher: Hasher = hashed.copy() if hashed is not None else hashlib.sha256()
        for part in parts[hashed_parts:]:
            check = PartCheck.of(part)
            async for chunk in self.read(storage_class, session_id, part.address):
                await hash_into(check.hasher, chunk, hasher)
            check.verify()
        key = f"{BLOBS_DIR}{upload_id}"
        sources = [piece for k, size in zip(keys, sizes, strict=True) for piece in _pieces(k, size)]
        assembled = S3AssembledBlob(store, key, ContentHash(hasher.hexdigest()), sum(sizes))
        async with cleaned_up(assembled):
            if sources:
                with translated_s3_errors("complete"):
                    await s3_multipart.copy_into(
                        self._connection, self.roots[storage_class], key, sources
                    )
            else:
                with translated_s3_errors("complete"):
                    await obstore.put_async(store, key, b"")
            yield assembled

    async def read(
        self, storage_class: StorageClass, session_id: UUID, address: str
    ) -> AsyncIterator[bytes]:
        store = self._blobs.object_store(storage_class)
        with translated_s3_errors("part read"):
            result = await obstore.get_async(store, self._key(session_id, address))
            async for piece in result.stream(min_chunk_size=READ_CHUNK_BYTES // 2):
                yield bytes(piece)

    async def remove(self, storage_class: StorageClass, session_id: UUID, address: str) -> None:
        if not address:
            return  # no folders in an object store
        key = self._key(session_id, address)
        try:
            if address.endswith(_UNFINISHED):
                with translated_s3_errors("abort"):
                    await s3_multipart.abort_uploads_of(
                        self._connection, self.roots[storage_class], key
                    )
            else:
                with translated_s3_errors("delete"):
                    await obstore.delete_async(self._blobs.object_store(storage_class), key)
        except StorageError:
            pass  # GC's next pass

    async def remove_session(self, storage_class: StorageClass, session_id: UUID) -> None:
        found = await self._scan(storage_class, f"{PARTS_DIR}{session_id}/")
        for part in found:
            await self.remove(storage_class, session_id, part.address)

    async def scan(self, storage_class: StorageClass) -> list[PartFile]:
        return await self._scan(storage_class, PARTS_DIR)

    async def _scan(self, storage_class: StorageClass, prefix: str) -> list[PartFile]:
        store = self._blobs.object_store(storage_class)
        found: list[PartFile] = []
        with translated_s3_errors("list"):
            async for page in obstore.list(store, prefix=prefix, chunk_size=500):
                for meta in page:
                    part = _part_file(
                        storage_class, meta["path"], meta["size"], meta["last_modified"]
                    )
                    if part is not None:
                        found.append(part)
        with translated_s3_errors("list multipart uploads"):
            unfinished = await s3_multipart.unfinished_uploads(
                self._connection, self.roots[storage_class], prefix
            )
        for upload in unfinished:
            part = _part_file(storage_class, upload.key, 0, upload.initiated_at)
            if part is not None:
                found.append(
                    PartFile(
                        storage_class,
                        part.session_id,
                        part.address + _UNFINISHED,
                        0,
                        part.modified_at,
                        part.owner,
                    )
                )
        return found


def _part_file(
    storage_class: StorageClass, key: str, size: int, modified_at: object
) -> PartFile | None:
    folder, _, name = key.removeprefix(PARTS_DIR).partition("/")
    try:
        session_id = UUID(folder)
    except ValueError:
        return None
    parsed = parse_part_name(name)
    if parsed is None:
        return None
    return PartFile(storage_class, session_id, name, size, modified_at, parsed[1])  # type: ignore[arg-type]


def _pieces(key: str, size: int) -> list[tuple[str, int, int]]:
    """Byte ranges of one part object, each at most 5 GiB and, split evenly, each at
    least 2.5 GiB when there are several."""
    if size == 0:
        return []
    count = -(-size // S3_MAX_PIECE)
    step = -(-size // count)
    return [(key, first, min(first + step, size) - 1) for first in range(0, size, step)]
