"""The filesystem's part store: the parts of multipart upload sessions (SPEC §8.2).

Layout of a root, beside `sha256/` and `tmp/`:

    <root>/parts/<session id>/<n>.<attempt>.<owner>   one file per part sent

A part is written under its final name (the part row records that name as its
address once the file and its directory are fsynced), so a replaced part never
overwrites the bytes a row names: the new attempt gets its own name, the row moves
to it, and the old file goes after that commit. `<owner>` is the writing process's
identity in URL-safe base64 (as in temp file names): GC leaves a part no row names
alone while its owner runs, i.e. while it may still be being written.

Completion stitches the parts into a temp file of `tmp/` with `copy_file_range`
(the kernel copies without passing the bytes through the process, and file systems
with reflinks, XFS and Btrfs, share the blocks instead of copying them), reading
only the parts the session's running hash does not cover yet; the temp file is then
published and committed like an upload's (filesystem_staging.py).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import anyio

from juststorage.adapters import threads
from juststorage.adapters.blobs import fsio
from juststorage.adapters.blobs.filesystem_staging import (
    FILE_MODE,
    FileStagedBlob,
    parse_temp_name,
    temp_name,
    translated_os_errors,
)
from juststorage.adapters.blobs.staging import cleaned_up
from juststorage.application.blob_ports import Hasher, StagedBlob
from juststorage.application.session_records import PartFile
from juststorage.domain.errors import NotFound, StorageError
from juststorage.domain.model import ContentHash, StorageClass

PARTS_DIR = "parts"
_CHUNK_BYTES = 1024 * 1024
_COPY_BYTES = 64 * 1024 * 1024  # per copy_file_range call
# copy_file_range cannot copy between these (another file system, an old kernel or a
# file system without it): the parts are then read and written.
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}


def part_name(number: int, owner: str) -> str:
    """`<n>.<attempt>.<owner>`: a fresh name for each attempt at part `n`."""
    return f"{number}." + temp_name(uuid.uuid4(), owner).removesuffix(".tmp")


def _parse_part_name(name: str) -> tuple[int, str] | None:
    """The part number and owner a `part_name` carries; None if it is not one."""
    number, dot, rest = name.partition(".")
    if not dot or not number.isdigit():
        return None
    attempt, owner = parse_temp_name(rest + ".tmp")
    if attempt is None:
        return None
    return int(number), owner


class FilePart:
    """One part's file, written in a worker thread while the next chunk arrives."""

    def __init__(self, folder: Path, name: str, running: Hasher | None) -> None:
        self._folder = folder
        self._name = name
        self._path = folder / name
        self._running = running
        self._hasher = hashlib.sha256()
        self._buffer = bytearray()
        self._pending: asyncio.Task[None] | None = None
        self._fd = -1
        self._size = 0
        self._kept = False

    @property
    def address(self) -> str:
        return self._name

    def keep(self) -> None:
        self._kept = True

    async def write(self, chunk: bytes) -> None:
        self._buffer += chunk
        if len(self._buffer) >= _CHUNK_BYTES:
            await self._wait_pending()
            data, self._buffer = self._buffer, bytearray()
            self._pending = asyncio.ensure_future(threads.run_sync(self._consume, data))

    async def seal(self) -> tuple[ContentHash, int]:
        await self._wait_pending()
        data, self._buffer = self._buffer, bytearray()
        await threads.run_sync(self._finish, data)
        return ContentHash(self._hasher.hexdigest()), self._size

    async def aclose(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if not self._kept:
            await threads.run_sync(fsio.unlink_quietly, self._path)

    async def _wait_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    def _open(self) -> None:
        if self._fd < 0:
            if not self._folder.is_dir():
                fsio.makedirs_durable(self._folder, stop_at=self._folder.parent.parent)
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)

    def _consume(self, data: bytearray) -> None:
        with translated_os_errors():
            self._open()
            self._hasher.update(data)
            if self._running is not None:
                self._running.update(data)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._size += len(data)

    def _finish(self, data: bytearray) -> None:
        if data:
            self._consume(data)
        with translated_os_errors():
            self._open()  # an empty part
            fsio.fsync_fd(self._fd)  # the bytes, then their name: durable before the row
            fsio.fsync_dir(self._folder)


class AssembledFile(FileStagedBlob):
    """A completed session's parts stitched into one temp file, sealed by `assemble`."""

    def assemble(self, paths: list[Path], hashed: Hasher | None, hashed_parts: int) -> None:
        """Copy `paths` in order into the temp file and fsync it; hash what `hashed`
        (the state after the first `hashed_parts` parts) does not cover."""
        hasher: Hasher = hashed.copy() if hashed is not None else hashlib.sha256()
        with translated_os_errors():
            self._ensure_file()
            for index, path in enumerate(paths):
                try:
                    source = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    raise NotFound("a part of the upload session is missing") from None
                try:
                    if index < hashed_parts:
                        self._copy_range(source)
                    else:
                        self._read_hash_write(source, hasher)
                finally:
                    os.close(source)
            fsio.fsync_fd(self._fd)
        self._digest = ContentHash(hasher.hexdigest())

    async def seal(self) -> tuple[ContentHash, int]:
        if self._digest is None:
            raise RuntimeError("seal() before assemble()")
        return self._digest, self._size

    def _copy_range(self, source: int) -> None:
        """The whole part, copied in the kernel (shared blocks where reflinks exist)."""
        length = os.fstat(source).st_size
        offset = 0
        while offset < length:
            try:
                copied = os.copy_file_range(source, self._fd, min(_COPY_BYTES, length - offset))
            except OSError as exc:
                if exc.errno not in _NO_COPY_RANGE:
                    raise
                os.lseek(source, offset, os.SEEK_SET)
                self._plain_copy(source)
                return
            if copied == 0:
                raise StorageError("a part file is shorter than it was")
            offset += copied
            self._size += copied

    def _plain_copy(self, source: int) -> None:
        while data := os.read(source, _CHUNK_BYTES):
            self._write_all(data)

    def _read_hash_write(self, source: int, hasher: Hasher) -> None:
        while data := os.read(source, _CHUNK_BYTES):
            hasher.update(data)
            self._write_all(data)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)


class FilesystemPartStore:
    """`PartStore` on the filesystem roots of `FilesystemBlobStore`."""

    def __init__(self, roots: Mapping[StorageClass, Path]) -> None:
        self.roots = dict(roots)
        self._dirs = {c: fsio.DurableShardDirs(root / "sha256") for c, root in self.roots.items()}

    def folder(self, storage_class: StorageClass, session_id: UUID) -> Path:
        return self.roots[storage_class] / PARTS_DIR / str(session_id)

    def receive(
        self,
        storage_class: StorageClass,
        session_id: UUID,
        number: int,
        owner: str,
        running: Hasher | None = None,
    ) -> AbstractAsyncContextManager[FilePart]:
        return cleaned_up(
            FilePart(self.folder(storage_class, session_id), part_name(number, owner), running)
        )

    @asynccontextmanager
    async def assemble(
        self,
        storage_class: StorageClass,
        session_id: UUID,
        addresses: list[str],
        upload_id: UUID,
        owner: str,
        hashed: Hasher | None,
        hashed_parts: int,
    ) -> AsyncIterator[StagedBlob]:
        root = self.roots[storage_class]
        staged = AssembledFile(
            root, self._dirs[storage_class], root / "tmp" / temp_name(upload_id, owner), 0, 0
        )
        folder = self.folder(storage_class, session_id)
        paths = [folder / _checked(address) for address in addresses]
        async with cleaned_up(staged):
            await threads.run_sync(staged.assemble, paths, hashed, hashed_parts)
            yield staged

    async def read(
        self, storage_class: StorageClass, session_id: UUID, address: str
    ) -> AsyncIterator[bytes]:
        path = self.folder(storage_class, session_id) / _checked(address)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("a part of the upload session is missing") from None
        try:
            while data := await threads.run_sync(os.read, fd, _CHUNK_BYTES):
                yield data
        finally:
            os.close(fd)

    async def remove(self, storage_class: StorageClass, session_id: UUID, address: str) -> None:
        path = self.folder(storage_class, session_id) / _checked(address)
        with anyio.CancelScope(shield=True), translated_os_errors():
            await threads.run_sync(fsio.unlink_quietly, path)

    async def remove_session(self, storage_class: StorageClass, session_id: UUID) -> None:
        folder = self.folder(storage_class, session_id)

        def remove_all() -> None:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                return
            for name in names:
                fsio.unlink_quietly(folder / name)
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOTEMPTY:  # a part arrived meanwhile: GC's next pass
                    raise
                return
            fsio.fsync_dir(folder.parent)

        with anyio.CancelScope(shield=True), translated_os_errors():
            await threads.run_sync(remove_all)

    async def scan(self, storage_class: StorageClass) -> list[PartFile]:
        top = self.roots[storage_class] / PARTS_DIR

        def listing() -> list[PartFile]:
            found: list[PartFile] = []
            try:
                sessions = list(os.scandir(top))
            except FileNotFoundError:
                return found
            for entry in sessions:
                try:
                    session_id = UUID(entry.name)
                except ValueError:
                    continue
                try:
                    files = list(os.scandir(entry.path))
                except (FileNotFoundError, NotADirectoryError):
                    continue
                if not files:
                    # An empty folder left by a removal cut short: listed so GC removes it.
                    stamp = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                    found.append(PartFile(storage_class, session_id, "", 0, stamp))
                for part in files:
                    parsed = _parse_part_name(part.name)
                    try:
                        stat = part.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    found.append(
                        PartFile(
                            storage_class,
                            session_id,
                            part.name,
                            stat.st_size,
                            datetime.fromtimestamp(stat.st_mtime, UTC),
                            parsed[1] if parsed else "",
                        )
                    )
            return found

        with translated_os_errors():
            return await threads.run_sync(listing)


def _checked(address: str) -> str:
    """A part address is a file name of the session's folder, never a path."""
    if not address or "/" in address or address in (".", ".."):
        raise StorageError("not a part address")
    return address
