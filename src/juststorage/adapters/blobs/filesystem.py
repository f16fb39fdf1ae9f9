"""FilesystemBlobStore: blobs as files under one root directory per storage class.

Layout of a root (SPEC §5):

    <root>/sha256/<hh>/<hh>/<64 hex>   published blobs, named by their SHA-256
    <root>/tmp/<upload id>.tmp          uploads in flight (same file system: link is atomic)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from uuid import UUID

import anyio.to_thread

from juststorage.adapters.blobs import fsio
from juststorage.application.ports import BlobLocation
from juststorage.domain.errors import InsufficientStorage, NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash, StorageClass

_READ_CHUNK_BYTES = 1024 * 1024
_INLINE_READ_BYTES = 64 * 1024  # small reads from the page cache are cheaper than a thread hop
_FILE_MODE = 0o640


@contextmanager
def _translated_os_errors() -> Iterator[None]:
    """Turn OSError into domain errors at the adapter's edge."""
    try:
        yield
    except OSError as exc:
        if fsio.is_out_of_space(exc):
            raise InsufficientStorage("the storage root is full") from exc
        raise StorageError(f"storage I/O error: {exc.strerror}") from exc


class _FileStagedBlob:
    """One upload's temp file. Writes are pipelined: hashing and writing chunk k
    runs in a worker thread while the caller receives chunk k+1."""

    def __init__(self, root: Path, temp_path: Path, chunk_bytes: int, writeback_bytes: int) -> None:
        self._root = root
        self.temp_path = temp_path
        self._chunk_bytes = chunk_bytes
        self._writeback_bytes = writeback_bytes
        self._hasher = hashlib.sha256()
        self._buffer = bytearray()
        self._pending: asyncio.Task[None] | None = None
        self._size = 0
        self._written_back_to = 0
        self._digest: ContentHash | None = None
        with _translated_os_errors():
            self._fd = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= self._chunk_bytes:
            await self._wait_pending()
            data, self._buffer = self._buffer, bytearray()
            self._pending = asyncio.ensure_future(anyio.to_thread.run_sync(self._consume, data))

    async def seal(self) -> tuple[ContentHash, int]:
        await self._wait_pending()
        data, self._buffer = self._buffer, bytearray()
        await anyio.to_thread.run_sync(self._finish, data)
        assert self._digest is not None
        return self._digest, self._size

    async def publish(self) -> bool:
        if self._digest is None:
            raise RuntimeError("publish() before seal()")
        return await anyio.to_thread.run_sync(self._link_into_place, self._digest)

    def close(self) -> None:
        """Close and remove the temp file, after any write still running in a thread."""
        if self._pending is not None and not self._pending.done():
            self._pending.add_done_callback(lambda _: self._discard())
        else:
            self._discard()

    async def _wait_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    def _consume(self, data: bytearray) -> None:
        with _translated_os_errors():
            self._hasher.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._size += len(data)
            if (
                self._writeback_bytes
                and self._size - self._written_back_to >= self._writeback_bytes
            ):
                # Start write-back of what is written so far, so the final fsync is short.
                os.posix_fadvise(
                    self._fd, self._written_back_to, self._size, os.POSIX_FADV_DONTNEED
                )
                self._written_back_to = self._size

    def _finish(self, data: bytearray) -> None:
        if data:
            self._consume(data)
        with _translated_os_errors():
            # The bytes must be durable before any name points at them.
            fsio.fsync_fd(self._fd)
        self._digest = ContentHash(self._hasher.hexdigest())

    def _link_into_place(self, digest: ContentHash) -> bool:
        final = blob_path(self._root, digest)
        with _translated_os_errors():
            fsio.makedirs_durable(final.parent, stop_at=self._root)
            # link, not rename: an existing blob is never replaced, and a concurrent
            # publish of the same bytes cannot clobber it (EEXIST means dedup).
            created = fsio.durable_link(self.temp_path, final)
        return created

    def _discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        fsio.unlink_quietly(self.temp_path)


class _FileBlobReader:
    def __init__(self, path: Path, fd: int) -> None:
        self.path: Path | None = path
        self._fd = fd

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        offset, end = first, first + length
        while offset < end:
            size = min(_READ_CHUNK_BYTES, end - offset)
            if size <= _INLINE_READ_BYTES:
                data = os.pread(self._fd, size, offset)
            else:
                data = await anyio.to_thread.run_sync(os.pread, self._fd, size, offset)
            if not data:
                raise StorageError("blob file is shorter than its recorded size")
            offset += len(data)
            yield data

    async def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def blob_path(root: Path, digest: ContentHash) -> Path:
    """`<root>/sha256/<hh>/<hh>/<hex>` (SPEC §5)."""
    return root / "sha256" / digest.hex[:2] / digest.hex[2:4] / digest.hex


class FilesystemBlobStore:
    """Blob store on local (or shared) file systems, one root per storage class."""

    def __init__(
        self,
        roots: Mapping[StorageClass, Path],
        *,
        chunk_bytes: int = 1024 * 1024,
        writeback_every_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.roots = dict(roots)
        self._chunk_bytes = chunk_bytes
        self._writeback_bytes = writeback_every_bytes

    async def prepare(self) -> None:
        """Create each root with its `sha256/` and `tmp/` directories, durably."""
        with _translated_os_errors():
            await anyio.to_thread.run_sync(self._prepare)

    def _prepare(self) -> None:
        for root in self.roots.values():
            for sub in ("sha256", "tmp"):
                fsio.makedirs_durable(root / sub, stop_at=Path(root.anchor))

    def temp_dir(self, storage_class: StorageClass) -> Path:
        return self.roots[storage_class] / "tmp"

    def path_of(self, location: BlobLocation) -> Path:
        return blob_path(self.roots[location.storage_class], location.content_hash)

    @asynccontextmanager
    async def stage(
        self, storage_class: StorageClass, upload_id: UUID
    ) -> AsyncIterator[_FileStagedBlob]:
        root = self.roots[storage_class]
        staged = _FileStagedBlob(
            root,
            root / "tmp" / f"{upload_id}.tmp",
            self._chunk_bytes,
            self._writeback_bytes,
        )
        try:
            yield staged
        finally:
            # Published or not, the temp name goes: a published blob lives on
            # under its content path (a hard link to the same inode).
            staged.close()

    async def open(self, location: BlobLocation) -> _FileBlobReader:
        path = self.path_of(location)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("no such object") from None
        except OSError as exc:
            raise StorageError(f"cannot open blob: {exc.strerror}") from exc
        return _FileBlobReader(path, fd)

    async def probe(self, storage_class: StorageClass) -> None:
        await anyio.to_thread.run_sync(self._probe, self.roots[storage_class])

    @staticmethod
    def _probe(root: Path) -> None:
        path = root / "tmp" / f".probe-{uuid.uuid4().hex}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
                fsio.unlink_quietly(path)
        except OSError as exc:
            raise Unavailable(f"{root} is not writable: {exc.strerror}") from exc
