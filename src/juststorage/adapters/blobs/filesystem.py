"""FilesystemBlobStore: blobs as files under one root directory per storage class.

Layout of a root (SPEC §5):

    <root>/sha256/<hh>/<hh>/<64 hex>   published blobs, named by their SHA-256
    <root>/tmp/<upload id>.tmp          uploads in flight (same file system: link is atomic)

A blob's address is its hash's hex: the content path follows from it. `open` and
`digest_of` find a blob by its hash, so a row that migrate-blobs has already pointed
at the blob's copy in another store is still served from here until the switch.
The write side (temp file, seal, link) is in filesystem_staging.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from juststorage.adapters import threads
from juststorage.adapters.blobs import fsio
from juststorage.adapters.blobs.filesystem_staging import (
    FILE_MODE,
    FileStagedBlob,
    blob_path,
    blob_path_string,
    parse_temp_name,
    temp_name,
    translated_os_errors,
)
from juststorage.adapters.blobs.staging import cleaned_up
from juststorage.application.records import BlobLocation, StoredBlob, TempFile
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash, StorageClass

_READ_CHUNK_BYTES = 1024 * 1024
_INLINE_READ_BYTES = 64 * 1024  # small reads from the page cache are cheaper than a thread hop
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SCAN_BATCH = 500


class _FileBlobReader:
    def __init__(self, path: str, fd: int, inline_read_bytes: int = _INLINE_READ_BYTES) -> None:
        self._path = path
        self._fd = fd
        self._inline_read_bytes = inline_read_bytes  # 0: every read in a thread

    @property
    def path(self) -> Path | None:
        return Path(self._path)

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        offset, end = first, first + length
        while offset < end:
            size = min(_READ_CHUNK_BYTES, end - offset)
            try:
                if size <= self._inline_read_bytes:
                    data = os.pread(self._fd, size, offset)
                else:
                    data = await threads.run_sync(os.pread, self._fd, size, offset)
            except OSError as exc:
                # EIO from a bad sector (or a directory where the file was): the
                # domain's error, which a download answers with 500 and the scrub
                # records as an unreadable blob.
                raise StorageError(f"cannot read blob: {exc.strerror}") from exc
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
                storage_class,
                entry.name,
                stat.st_size,
                datetime.fromtimestamp(stat.st_mtime, UTC),
                content_hash=ContentHash(entry.name),  # any upload of these bytes adopts it
            )
        )
    return found


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
        with translated_os_errors():
            await threads.run_sync(self._prepare)

    def _prepare(self) -> None:
        for root in self.roots.values():
            for sub in ("sha256", "tmp"):
                fsio.makedirs_durable(root / sub, stop_at=Path(root.anchor))

    def temp_dir(self, storage_class: StorageClass) -> Path:
        return self.roots[storage_class] / "tmp"

    def path_of(self, location: BlobLocation) -> Path:
        return blob_path(self.roots[location.storage_class], location.content_hash)

    def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AbstractAsyncContextManager[FileStagedBlob]:
        root = self.roots[storage_class]
        staged = FileStagedBlob(
            root,
            self._dirs[storage_class],
            root / "tmp" / temp_name(upload_id, owner),
            self._chunk_bytes,
            self._writeback_bytes,
        )
        # Published or not, the temp name goes on leaving: a published blob lives on
        # under its content path (a hard link to the same inode).
        return cleaned_up(staged)

    async def open(
        self,
        location: BlobLocation,
        *,
        first: int = 0,
        length: int | None = None,
        background: bool = False,
    ) -> _FileBlobReader:
        path = blob_path_string(self._root_strings[location.storage_class], location.content_hash)
        try:
            if background:
                fd = await threads.run_sync(os.open, path, os.O_RDONLY)
            else:
                fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("no such object") from None
        except OSError as exc:
            raise StorageError(f"cannot open blob: {exc.strerror}") from exc
        # A background reader's pages are likely cold: a read may wait for the disk.
        return _FileBlobReader(path, fd, 0 if background else _INLINE_READ_BYTES)

    async def probe(self, storage_class: StorageClass) -> None:
        await threads.run_sync(self._probe, self.roots[storage_class])

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        if not _HEX64.fullmatch(address):
            # Another store's address (a row migrate-blobs re-pointed while this store
            # still served it): the file here under its hash, if any, has no row
            # left once GC commits, and the orphan scan removes it.
            return False
        path = blob_path(self.roots[storage_class], ContentHash(address))

        def unlink() -> bool:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            fsio.fsync_dir(path.parent)  # the removal is durable before GC commits
            return True

        with translated_os_errors():
            return await threads.run_sync(unlink)

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        try:
            fs = await threads.run_sync(os.statvfs, self.roots[storage_class])
        except OSError:
            return None  # cannot be measured now; the gauge keeps its last value
        return fs.f_bavail * fs.f_frsize, fs.f_blocks * fs.f_frsize

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
                        upload_id, owner = parse_temp_name(entry.name)
                        modified_at = datetime.fromtimestamp(mtime, UTC)
                        found.append(
                            TempFile(storage_class, entry.name, modified_at, upload_id, owner)
                        )
            return found

        with translated_os_errors():
            return await threads.run_sync(listing)

    async def remove_temp(self, temp: TempFile) -> None:
        path = self.temp_dir(temp.storage_class) / temp.name
        with translated_os_errors():
            await threads.run_sync(fsio.unlink_quietly, path)

    async def rewrite(self, location: BlobLocation, chunks: AsyncIterable[bytes]) -> None:
        temp = self.temp_dir(location.storage_class) / temp_name(uuid.uuid4())
        dirs = self._dirs[location.storage_class]
        with translated_os_errors():
            fd = await threads.run_sync(
                os.open, temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE
            )
        try:
            with translated_os_errors():
                async for chunk in chunks:
                    await threads.run_sync(_write_all, fd, chunk)
                await threads.run_sync(fsio.fsync_fd, fd)
        except BaseException:
            os.close(fd)
            fsio.unlink_quietly(temp)
            raise
        os.close(fd)

        def replace() -> None:
            # Over the damaged file (or where a missing one was): the name points at
            # the old bytes or the new ones, never at a partial file.
            final = dirs.ensure(location.content_hash.hex) / location.content_hash.hex
            os.replace(temp, final)
            fsio.fsync_dir(final.parent)

        try:
            with translated_os_errors():
                await threads.run_sync(replace)
        finally:
            fsio.unlink_quietly(temp)

    async def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        root = self.roots[storage_class] / "sha256"
        with translated_os_errors():
            firsts = await threads.run_sync(_sorted_names, root)
        for first in firsts:
            with translated_os_errors():
                seconds = await threads.run_sync(_sorted_names, root / first)
            for second in seconds:
                folder = root / first / second
                with translated_os_errors():
                    batch = await threads.run_sync(_blobs_in, folder, storage_class)
                for start in range(0, len(batch), _SCAN_BATCH):
                    yield batch[start : start + _SCAN_BATCH]

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
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                os.write(fd, b"probe")
                os.fsync(fd)
            finally:
                os.close(fd)
                fsio.unlink_quietly(path)
        except OSError as exc:
            # No path in the message: /ready shows it to anyone (the log has the cause).
            raise Unavailable(f"the storage root is not writable: {exc.strerror}") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
