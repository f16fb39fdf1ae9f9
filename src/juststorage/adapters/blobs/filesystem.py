"""FilesystemBlobStore: blobs as files under one root directory per storage class.

Layout of a root (SPEC §5):

    <root>/sha256/<hh>/<hh>/<64 hex>   published blobs, named by their SHA-256
    <root>/tmp/<upload id>.tmp          uploads in flight (same file system: link is atomic)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import anyio

from juststorage.adapters import threads
from juststorage.adapters.blobs import fsio
from juststorage.application.records import BlobLocation, StoredBlob, StoredKey, TempFile
from juststorage.domain.errors import InsufficientStorage, NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash, StorageClass

_READ_CHUNK_BYTES = 1024 * 1024
_INLINE_READ_BYTES = 64 * 1024  # small reads from the page cache are cheaper than a thread hop
_FILE_MODE = 0o640
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SCAN_BATCH = 500


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

    def __init__(
        self,
        root: Path,
        dirs: fsio.DurableShardDirs,
        temp_path: Path,
        chunk_bytes: int,
        writeback_bytes: int,
    ) -> None:
        self._root = root
        self._dirs = dirs
        self.temp_path = temp_path
        self._chunk_bytes = chunk_bytes
        self._writeback_bytes = writeback_bytes
        self._hasher = hashlib.sha256()
        self._buffer = bytearray()
        self._pending: asyncio.Task[None] | None = None
        self._size = 0
        self._written_back_to = 0
        self._digest: ContentHash | None = None
        # The file is created by the first flush, in the worker thread that writes it:
        # a small body costs one thread hop (create, write, fsync), not two.
        self._fd = -1

    def _ensure_file(self) -> None:
        """Create the temp file if this is the first flush (in a worker thread: a
        create in a busy directory can wait on the file system's journal)."""
        if self._fd < 0:
            self._fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= self._chunk_bytes:
            await self._wait_pending()
            data, self._buffer = self._buffer, bytearray()
            self._pending = asyncio.ensure_future(threads.run_sync(self._consume, data))

    async def seal(self) -> tuple[ContentHash, int]:
        await self._wait_pending()
        data, self._buffer = self._buffer, bytearray()
        await threads.run_sync(self._finish, data)
        assert self._digest is not None
        return self._digest, self._size

    @property
    def key(self) -> str | None:
        return None  # the content path follows from the hash

    async def publish(self) -> bool:
        if self._digest is None:
            raise RuntimeError("publish() before seal()")
        return await threads.run_sync(self._link_into_place, self._digest)

    async def confirm(self, blob: BlobLocation) -> bool:
        if self._digest is None:
            raise RuntimeError("confirm() before seal()")
        # Almost always still there; gone only when a GC pass took an unreferenced
        # blob between publish() and acquire. A link asks the file system itself (on
        # NFS a lookup may be answered from a stale client cache); EEXIST, the common
        # answer, costs no more than a lookup. Whatever the row says, the link makes
        # the content path whole again.
        final = blob_path_string(str(self._root), self._digest)
        try:
            os.link(self.temp_path, final)
        except FileExistsError:
            return False
        except OSError:
            # A directory of the path is gone too: the full path creates it again
            # (or reports the error).
            return await threads.run_sync(self._link_into_place, self._digest)
        await threads.run_sync(_fsync_parent, final)
        return True

    async def aclose(self) -> None:
        """Close and remove the temp file, after any write still running in a thread.

        Waits for that write (at most one chunk) so the file is gone when this returns.
        """
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the caller is already failing or done
        self._discard()

    async def _wait_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    def _consume(self, data: bytearray) -> None:
        with _translated_os_errors():
            self._ensure_file()
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
            self._ensure_file()  # an empty body
            # The bytes must be durable before any name points at them.
            fsio.fsync_fd(self._fd)
        self._digest = ContentHash(self._hasher.hexdigest())

    def _link_into_place(self, digest: ContentHash) -> bool:
        hex_digest = digest.hex
        with _translated_os_errors():
            final = self._dirs.ensure(hex_digest) / hex_digest
            # link, not rename: an existing blob is never replaced, and a concurrent
            # publish of the same bytes cannot clobber it (EEXIST means dedup).
            try:
                return fsio.durable_link(self.temp_path, final)
            except FileNotFoundError:
                if not self.temp_path.exists():
                    raise
            # A shard directory was removed behind this process's back: make it again.
            self._dirs.forget()
            self._dirs.ensure(hex_digest)
            return fsio.durable_link(self.temp_path, final)

    def _discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        fsio.unlink_quietly(self.temp_path)


class _FileBlobReader:
    def __init__(self, path: str, fd: int) -> None:
        self._path = path
        self._fd = fd

    @property
    def path(self) -> Path | None:
        return Path(self._path)

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        offset, end = first, first + length
        while offset < end:
            size = min(_READ_CHUNK_BYTES, end - offset)
            if size <= _INLINE_READ_BYTES:
                data = os.pread(self._fd, size, offset)
            else:
                data = await threads.run_sync(os.pread, self._fd, size, offset)
            if not data:
                raise StorageError("blob file is shorter than its recorded size")
            offset += len(data)
            yield data

    async def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _sorted_names(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


def _fsync_parent(path: str) -> None:
    with _translated_os_errors():
        fsio.fsync_dir(Path(path).parent)


def _blobs_in(folder: Path, storage_class: StorageClass) -> list[StoredBlob]:
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in sorted(entries, key=lambda e: e.name):
        if not _HEX64.fullmatch(entry.name):
            continue
        try:
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        found.append(
            StoredBlob(
                BlobLocation(storage_class, ContentHash(entry.name)),
                stat.st_size,
                datetime.fromtimestamp(stat.st_mtime, UTC),
            )
        )
    return found


def blob_path(root: Path, digest: ContentHash) -> Path:
    """`<root>/sha256/<hh>/<hh>/<hex>` (SPEC §5)."""
    return Path(blob_path_string(str(root), digest))


def blob_path_string(root: str, digest: ContentHash) -> str:
    """`blob_path` as a string: no pathlib on the GET path (its joins were 5 % of a
    4 KiB GET's event-loop time)."""
    hex_digest = digest.hex
    return f"{root}/sha256/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}"


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
        self._root_strings = {c: str(root) for c, root in self.roots.items()}
        self._dirs = {c: fsio.DurableShardDirs(root / "sha256") for c, root in self.roots.items()}
        self._chunk_bytes = chunk_bytes
        self._writeback_bytes = writeback_every_bytes

    async def prepare(self) -> None:
        """Create each root with its `sha256/` and `tmp/` directories, durably."""
        with _translated_os_errors():
            await threads.run_sync(self._prepare)

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
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AsyncIterator[_FileStagedBlob]:
        root = self.roots[storage_class]
        staged = _FileStagedBlob(
            root,
            self._dirs[storage_class],
            root / "tmp" / TempFile.name_for(upload_id, owner),
            self._chunk_bytes,
            self._writeback_bytes,
        )
        try:
            yield staged
        finally:
            # Published or not, the temp name goes: a published blob lives on
            # under its content path (a hard link to the same inode). Shielded, so a
            # cancelled upload still removes its temp file before the block is left.
            with anyio.CancelScope(shield=True):
                await staged.aclose()

    async def open(
        self, location: BlobLocation, *, first: int = 0, length: int | None = None
    ) -> _FileBlobReader:
        path = blob_path_string(self._root_strings[location.storage_class], location.content_hash)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("no such object") from None
        except OSError as exc:
            raise StorageError(f"cannot open blob: {exc.strerror}") from exc
        return _FileBlobReader(path, fd)

    async def probe(self, storage_class: StorageClass) -> None:
        await threads.run_sync(self._probe, self.roots[storage_class])

    async def remove(self, location: BlobLocation) -> bool:
        path = self.path_of(location)

        def unlink() -> bool:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            fsio.fsync_dir(path.parent)  # the removal is durable before GC commits
            return True

        with _translated_os_errors():
            return await threads.run_sync(unlink)

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        folder = self.temp_dir(storage_class)

        def listing() -> list[TempFile]:
            found = []
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.endswith(".tmp") and entry.is_file(follow_symlinks=False):
                        try:
                            mtime = entry.stat(follow_symlinks=False).st_mtime
                        except FileNotFoundError:
                            continue
                        found.append(
                            TempFile(storage_class, entry.name, datetime.fromtimestamp(mtime, UTC))
                        )
            return found

        with _translated_os_errors():
            return await threads.run_sync(listing)

    async def remove_temp(self, temp: TempFile) -> None:
        path = self.temp_dir(temp.storage_class) / temp.name
        with _translated_os_errors():
            await threads.run_sync(fsio.unlink_quietly, path)

    async def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        root = self.roots[storage_class] / "sha256"
        with _translated_os_errors():
            firsts = await threads.run_sync(_sorted_names, root)
        for first in firsts:
            with _translated_os_errors():
                seconds = await threads.run_sync(_sorted_names, root / first)
            for second in seconds:
                folder = root / first / second
                with _translated_os_errors():
                    batch = await threads.run_sync(_blobs_in, folder, storage_class)
                for start in range(0, len(batch), _SCAN_BATCH):
                    yield batch[start : start + _SCAN_BATCH]

    def keyed(self, storage_class: StorageClass) -> bool:
        return False

    async def scan_keys(self, storage_class: StorageClass) -> AsyncIterator[list[StoredKey]]:
        return
        yield  # an async generator that yields nothing: no keyed blobs here

    async def remove_key(self, storage_class: StorageClass, key: str) -> bool:
        raise StorageError("the filesystem store has no keyed blobs")

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        path = self.path_of(location)

        def digest() -> ContentHash:
            hasher = hashlib.sha256()
            with open(path, "rb", buffering=0) as handle:
                while chunk := handle.read(_READ_CHUNK_BYTES):
                    hasher.update(chunk)
            return ContentHash(hasher.hexdigest())

        try:
            return await threads.run_sync(digest)
        except FileNotFoundError:
            raise NotFound(f"blob file {path} is missing") from None
        except OSError as exc:
            raise StorageError(f"cannot read blob {path}: {exc.strerror}") from exc

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
