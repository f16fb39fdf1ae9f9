"""The filesystem's part store: the parts of multipart upload sessions (SPEC §8.2).

Layout of a root, beside `sha256/` and `tmp/`:

    <root>/parts/<session id>/<n>.<attempt>.<owner>   one file per part sent

A part is written under its final name (the part row records that name as its
address once the file and its directory are fsynced), so a replaced part never
overwrites the bytes a row names: the new attempt gets its own name, the row moves
to it, and the old file goes after that commit. `<owner>` is the writing process's
identity in URL-safe base64 (as in temp file names): GC leaves a part no row names
alone while its owner holds a lease on a part of the session (part_leases.py).

A part is acknowledged only if, after its fsync, its file is still linked under its
name (the same inode): bytes written to a file removed or replaced meanwhile are
refused (503, the client sends the part again) and never named by a row. A stream
file is created once, with O_EXCL, and a descriptor of it held (`StreamFiles`):
later parts must find that very inode under its name. A stream removed under its
parts is never made again under its name: later parts go to files of their own.

Completion stitches the parts into a temp file of `tmp/` with `copy_file_range`
(the kernel copies without passing the bytes through the process, and file systems
with reflinks, XFS and Btrfs, share the blocks instead of copying them), reading
only the parts the session's running hash does not cover yet; the temp file is then
published and committed like an upload's (filesystem_staging.py). The running hash
is trusted only for stream files that are still the ones it was fed from; any doubt,
and every part is read and hashed again. A part read back is also hashed on its own
in that same pass and compared with its row's sha256: bytes changed on disk since
the part's 200 (bit rot, a file replaced) are refused (DamagedPart), never
published under a digest of the wrong bytes.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import os
import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar
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
from juststorage.application import twin_hashes
from juststorage.application.blob_ports import Hasher, StagedBlob
from juststorage.application.session_records import (
    RANGE_MARK,
    PartCheck,
    PartFile,
    SessionPart,
    StreamSlot,
)
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash, StorageClass

PARTS_DIR = "parts"
STREAM_PREFIX = "s."
_CHUNK_BYTES = 1024 * 1024
_COPY_BYTES = 64 * 1024 * 1024  # per copy_file_range call
# ioctl FICLONERANGE (linux/fs.h: _IOW(0x94, 13, struct file_clone_range)).
_FICLONERANGE = 0x4020940D
_CLONE_ALIGN = 64 * 1024  # a multiple of every common block size
# copy_file_range cannot copy between these (another file system, an old kernel or a
# file system without it): the parts are then read and written.
_NO_COPY_RANGE = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}
# Stream files a process keeps a descriptor of: more than the sessions whose running
# hash it keeps (`RunningHashes`), so a stream still being filled is seldom dropped
# (a part sent to a dropped stream is refused once; sent again, it gets a file).
_STREAMS_KEPT = 512
_REMOVED = "the part's file was removed while it was written; send the part again"


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


class StreamFiles:
    """The stream files this process created, by path: a descriptor of each, held
    open so that its inode cannot be freed and its number given to another file (an
    inode number compared with a path's then always means that very file), or None
    once one was found removed or replaced (lost). Thread-safe: parts open their
    stream in worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: OrderedDict[Path, int | None] = OrderedDict()

    def open(self, path: Path) -> int:
        """A descriptor of the stream for writing: created (O_EXCL) at its first use,
        else the very file created then.

        Raises:
            Unavailable: the stream was removed or replaced (it is lost from now on).
            OSError: from os.open.
        """
        with self._lock:
            if path not in self._known:
                self._drop_unlinked()  # once per stream: cheap, however many are held
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
                except FileExistsError:
                    # Not made here (or forgotten): nothing vouches for its bytes.
                    self._known[path] = None
                    raise Unavailable(_REMOVED) from None
                self._remember(path, os.dup(fd))
                return fd
            self._known.move_to_end(path)
            if not self._intact(path):
                raise Unavailable(_REMOVED)
            try:
                fd = os.open(path, os.O_WRONLY)  # never O_CREAT: zeros where parts were
            except FileNotFoundError:
                self._drop(path)
                raise Unavailable(_REMOVED) from None
            held = self._known[path]
            if held is None or _identity(os.fstat(fd)) != _identity(os.fstat(held)):
                os.close(fd)
                self._drop(path)
                raise Unavailable(_REMOVED)
            return fd

    def lose(self, path: Path) -> None:
        """The stream was found removed or replaced: no part goes there any more."""
        with self._lock:
            if path in self._known:
                self._drop(path)

    def is_lost(self, path: Path) -> bool:
        with self._lock:
            return path in self._known and self._known[path] is None

    def is_intact(self, path: Path) -> bool:
        """Whether `path` still names the stream file created here (a stat)."""
        with self._lock:
            return self._intact(path)

    def forget(self, folder: Path) -> None:
        """Drop the streams of a session's folder (its parts are removed)."""
        with self._lock:
            for path in [p for p in self._known if p.parent == folder]:
                held = self._known.pop(path)
                if held is not None:
                    os.close(held)

    def drop_unlinked(self) -> None:
        """Let go of the streams removed since they were opened (by another process's
        GC, an expiry there): a descriptor held keeps a removed file's space taken."""
        with self._lock:
            self._drop_unlinked()

    def _drop_unlinked(self) -> None:
        for path, held in list(self._known.items()):
            if held is not None and os.fstat(held).st_nlink == 0:
                self._drop(path)

    def _intact(self, path: Path) -> bool:
        held = self._known.get(path)
        if held is None:
            return False
        own = os.fstat(held)
        try:
            named = os.stat(path)
        except FileNotFoundError:
            named = None
        if own.st_nlink == 0 or named is None or _identity(named) != _identity(own):
            self._drop(path)
            return False
        return True

    def _drop(self, path: Path) -> None:
        """Mark the stream lost, closing its descriptor."""
        held = self._known.get(path)
        self._known[path] = None
        if held is not None:
            os.close(held)

    def _remember(self, path: Path, held: int) -> None:
        self._known[path] = held
        while len(self._known) > _STREAMS_KEPT:
            _, dropped = self._known.popitem(last=False)
            if dropped is not None:
                os.close(dropped)


def _check_linked(fd: int, path: Path) -> None:
    """Raises Unavailable unless `fd`'s file is still linked, under `path`."""
    own = os.fstat(fd)
    try:
        named = os.stat(path)
    except FileNotFoundError:
        raise Unavailable(_REMOVED) from None
    if own.st_nlink == 0 or _identity(own) != _identity(named):
        raise Unavailable(_REMOVED)


def part_name(number: int, owner: str) -> str:
    """`<n>.<attempt>.<owner>`: a fresh name for each attempt at part `n`."""
    return f"{number}." + temp_name(uuid.uuid4(), owner).removesuffix(".tmp")


def parse_part_name(name: str) -> tuple[int, str] | None:
    """The part number (0 for a stream file) and owner a `part_name` or `stream_name`
    carries; None if it is neither."""
    if name.startswith(STREAM_PREFIX):
        stream, owner = parse_temp_name(name.removeprefix(STREAM_PREFIX) + ".tmp")
        return None if stream is None else (0, owner)
    number, dot, rest = name.partition(".")
    if not dot or not number.isdigit():
        return None
    attempt, owner = parse_temp_name(rest + ".tmp")
    if attempt is None:
        return None
    return int(number), owner


class FilePart:
    """One part's file, written in a worker thread while the next chunk arrives; or,
    with a stream slot, the part appended to the session's stream file at its
    offset (what was there from the offset on belongs to no part)."""

    def __init__(
        self,
        folder: Path,
        name: str,
        running: Hasher | None,
        offset: int | None = None,
        streams: StreamFiles | None = None,
    ) -> None:
        self._folder = folder
        self._streams = streams
        self._name = name
        self._path = folder / name
        self._offset = offset
        self._running = running
        self._hasher = hashlib.sha256()
        self._buffer = bytearray()
        self._pending: asyncio.Task[None] | None = None
        self._fd = -1
        self._size = 0
        self._kept = False

    @property
    def address(self) -> str:
        if self._offset is None:
            return self._name
        return f"{self._name}{RANGE_MARK}{self._offset}:{self._size}"

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
        if not self._kept and self._offset is None:
            # A stream file may hold other parts: it stays (GC's once no row names it).
            await threads.run_sync(fsio.unlink_quietly, self._path)

    async def _wait_pending(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    def _open(self) -> None:
        if self._fd < 0:
            if not self._folder.is_dir():
                fsio.makedirs_durable(self._folder, stop_at=self._folder.parent.parent)
            if self._offset is None or self._streams is None:
                self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            else:
                # Parts sent in parallel write their own slots of the stream at once;
                # a retry overwrites only its slot (no stored part's bytes are there).
                self._fd = self._streams.open(self._path)
                os.lseek(self._fd, self._offset, os.SEEK_SET)

    def _consume(self, data: bytearray) -> None:
        # The session's running hash takes the bytes on another thread while this one
        # hashes the part and writes it (twin_hashes.py).
        running = None
        if self._running is not None:
            running = twin_hashes.update_beside(self._running, data)
        try:
            with translated_os_errors():
                self._open()
                self._hasher.update(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                if running is not None:
                    # Hashed into the running state: nothing reads these bytes again,
                    # so their write-back starts now (the pages leave the cache once
                    # written), and the part's fsync waits for its last chunk only.
                    first = (self._offset or 0) + self._size
                    os.posix_fadvise(self._fd, first, len(data), os.POSIX_FADV_DONTNEED)
                self._size += len(data)
        finally:
            if running is not None:
                running.result()  # the state is whole (or failed) before anyone reads it

    def _finish(self, data: bytearray) -> None:
        if data:
            self._consume(data)
        with translated_os_errors():
            self._open()  # an empty part
            fsio.fsync_fd(self._fd)  # the bytes, then their name: durable before the row
            fsio.fsync_dir(self._folder)
            try:
                # Removed (or replaced) while written, by anything: the bytes are not
                # where the row would say, so no row may name them.
                _check_linked(self._fd, self._path)
            except Unavailable:
                if self._streams is not None and self._offset is not None:
                    self._streams.lose(self._path)
                raise
            if self._running is not None and self._size:
                # Hashed into the session's running state and durable: nothing reads
                # these pages again unless the state is lost, so they leave the page
                # cache now (as an upload's temp file does) instead of pushing out
                # other pages while the rest of a multi-GB session arrives.
                first = self._offset or 0
                os.posix_fadvise(self._fd, first, self._size, os.POSIX_FADV_DONTNEED)


class AssembledFile(FileStagedBlob):
    """A completed session's parts stitched into one temp file, sealed by `assemble`."""

    # False once a file system answered that it has no reflinks (not asked again).
    clones: ClassVar[bool] = True

    def assemble(
        self,
        ranges: list[_Range],
        checks: list[PartCheck],
        hashed: Hasher | None,
        hashed_parts: int,
    ) -> None:
        """Copy the parts' `ranges` in order into the temp file and fsync it; hash what
        `hashed` (the state after the first `hashed_parts` parts) does not cover. Each
        part read is hashed on its own too, in the same pass, and must match its row
        (`checks`): else DamagedPart, and nothing is published."""
        hasher: Hasher = hashed.copy() if hashed is not None else hashlib.sha256()
        with translated_os_errors():
            self._ensure_file()
            for index, (path, first, length) in enumerate(ranges):
                try:
                    source = os.open(path, os.O_RDONLY)
                except FileNotFoundError:
                    raise NotFound("a part of the upload session is missing") from None
                try:
                    if length is None:
                        length = os.fstat(source).st_size - first
                    if index < hashed_parts:
                        self._copy_range(source, first, length)
                    else:
                        self._read_hash_write(source, first, length, hasher, checks[index])
                finally:
                    os.close(source)
            fsio.fsync_fd(self._fd)
        self._digest = ContentHash(hasher.hexdigest())

    async def seal(self) -> tuple[ContentHash, int]:
        if self._digest is None:
            raise RuntimeError("seal() before assemble()")
        return self._digest, self._size

    def _copy_range(self, source: int, first: int, length: int) -> None:
        """`length` bytes of the part from `first`, shared (a reflink) where the file
        system can, else copied in the kernel."""
        if self._clone(source, first, length):
            self._size += length
            return
        done = 0
        while done < length:
            try:
                copied = os.copy_file_range(
                    source, self._fd, min(_COPY_BYTES, length - done), first + done
                )
            except OSError as exc:
                if exc.errno not in _NO_COPY_RANGE:
                    raise
                self._plain_copy(source, first + done, length - done)
                return
            if copied == 0:
                raise StorageError("a part file is shorter than it was")
            done += copied
            self._size += copied

    def _clone(self, source: int, first: int, length: int) -> bool:
        """FICLONERANGE the range to the end of the file (XFS, Btrfs: no byte copied).
        Both offsets must be multiples of the block size; a file system without
        reflinks says so once and is not asked again."""
        if not AssembledFile.clones or length == 0 or (self._size | first) % _CLONE_ALIGN:
            return False
        request = struct.pack("qQQQ", source, first, length, self._size)
        try:
            fcntl.ioctl(self._fd, _FICLONERANGE, request)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.ENOSYS):
                AssembledFile.clones = False
            return False
        os.lseek(self._fd, 0, os.SEEK_END)
        return True

    def _plain_copy(self, source: int, first: int, length: int) -> None:
        for data in _chunks_of(source, first, length):
            self._write_all(data)

    def _read_hash_write(
        self, source: int, first: int, length: int, hasher: Hasher, check: PartCheck
    ) -> None:
        for data in _chunks_of(source, first, length):
            twin_hashes.update_both(check.hasher, hasher, data)
            self._write_all(data)
        check.verify()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)


class StreamBlob(FileStagedBlob):
    """A session's stream file that holds exactly the whole object, hashed on arrival:
    published as it is (a hard link into `sha256/`), nothing copied. Leaving the
    block keeps the stream's name (its parts' rows still name it until the commit)."""

    def __init__(
        self, root: Path, dirs: fsio.DurableShardDirs, path: Path, digest: ContentHash, size: int
    ) -> None:
        super().__init__(root, dirs, path, 0, 0)
        self._digest = digest
        self._size = size

    async def seal(self) -> tuple[ContentHash, int]:
        assert self._digest is not None
        return self._digest, self._size

    async def aclose(self) -> None:
        return  # durable since its parts were acknowledged; not ours to remove


class FilesystemPartStore:
    """`PartStore` on the filesystem roots of `FilesystemBlobStore`."""

    def __init__(self, roots: Mapping[StorageClass, Path]) -> None:
        self.roots = dict(roots)
        self._dirs = {c: fsio.DurableShardDirs(root / "sha256") for c, root in self.roots.items()}
        self._streams = StreamFiles()

    def folder(self, storage_class: StorageClass, session_id: UUID) -> Path:
        return self.roots[storage_class] / PARTS_DIR / str(session_id)

    def receive(
        self,
        storage_class: StorageClass,
        session_id: UUID,
        number: int,
        owner: str,
        running: Hasher | None = None,
        stream: StreamSlot | None = None,
    ) -> AbstractAsyncContextManager[FilePart]:
        folder = self.folder(storage_class, session_id)
        name = stream_name(stream.name, owner) if stream is not None else ""
        if stream is None or self._streams.is_lost(folder / name):
            return cleaned_up(FilePart(folder, part_name(number, owner), running))
        return cleaned_up(FilePart(folder, name, running, stream.offset, self._streams))

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
        reuse_stream: bool = False,
    ) -> AsyncIterator[StagedBlob]:
        root = self.roots[storage_class]
        folder = self.folder(storage_class, session_id)
        ranges = [_range_of(folder, part.address) for part in parts]
        checks = [PartCheck.of(part) for part in parts]
        if not await threads.run_sync(self._trusted, ranges[:hashed_parts]):
            hashed, hashed_parts = None, 0  # read and hash every part again
        whole = await threads.run_sync(_whole_stream, ranges) if reuse_stream else None
        if whole is not None and hashed is not None and hashed_parts == len(ranges):
            # Parts 1..N arrived in order into one stream file that holds nothing else.
            digest = ContentHash(hashed.hexdigest())
            yield StreamBlob(root, self._dirs[storage_class], whole[0], digest, whole[1])
            return
        staged = AssembledFile(
            root, self._dirs[storage_class], root / "tmp" / temp_name(upload_id, owner), 0, 0
        )
        async with cleaned_up(staged):
            await threads.run_sync(staged.assemble, ranges, checks, hashed, hashed_parts)
            yield staged

    def _trusted(self, ranges: list[_Range]) -> bool:
        """Whether the running hash of these parts may stand for their bytes: each of
        them in a file of its own (created with O_EXCL under a fresh name, so it holds
        what was written or is gone) or in a stream file still the one written to."""
        streams = {path for path, _, _ in ranges if path.name.startswith(STREAM_PREFIX)}
        return all(self._streams.is_intact(path) for path in streams)

    async def read(
        self, storage_class: StorageClass, session_id: UUID, address: str
    ) -> AsyncIterator[bytes]:
        path, first, length = _range_of(self.folder(storage_class, session_id), address)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise NotFound("a part of the upload session is missing") from None
        try:
            end = os.fstat(fd).st_size if length is None else first + length
            offset = first
            while offset < end:
                data = await threads.run_sync(os.pread, fd, min(_CHUNK_BYTES, end - offset), offset)
                if not data:
                    raise StorageError("a part file is shorter than it was")
                offset += len(data)
                yield data
            # A part is read once (to catch the running hash up, or at completion) and
            # is durable: its pages leave the cache behind the reader. (A length of 0
            # would mean "to the end of the file": other parts' pages.)
            if end > first:
                os.posix_fadvise(fd, first, end - first, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    async def remove(self, storage_class: StorageClass, session_id: UUID, address: str) -> None:
        folder = self.folder(storage_class, session_id)
        if RANGE_MARK in address:
            return  # a range of a stream file other parts share: GC's, once unnamed
        if not address:  # the session's folder, if it is empty (a scan's empty entry)
            with anyio.CancelScope(shield=True), translated_os_errors():
                await threads.run_sync(_remove_empty_folder, folder)
            return
        path = folder / _checked(address)
        with anyio.CancelScope(shield=True), translated_os_errors():
            await threads.run_sync(fsio.unlink_quietly, path)
        self._streams.lose(path)  # a stream's held descriptor would keep its space

    async def remove_session(self, storage_class: StorageClass, session_id: UUID) -> None:
        folder = self.folder(storage_class, session_id)

        def remove_all() -> None:
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                return
            for name in names:
                fsio.unlink_quietly(folder / name)
            _remove_empty_folder(folder)

        with anyio.CancelScope(shield=True), translated_os_errors():
            await threads.run_sync(remove_all)
        self._streams.forget(folder)

    async def scan(self, storage_class: StorageClass) -> list[PartFile]:
        top = self.roots[storage_class] / PARTS_DIR

        def listing() -> list[PartFile]:
            # Each GC pass and fsck scans: streams removed elsewhere are let go here.
            self._streams.drop_unlinked()
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
                    parsed = parse_part_name(part.name)
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


# (file, first byte, length or None: to its end)
_Range = tuple[Path, int, int | None]


def stream_name(stream: str, owner: str) -> str:
    """`s.<stream>.<owner>`: the file a session's in-order parts are appended to."""
    return STREAM_PREFIX + temp_name(UUID(stream), owner).removesuffix(".tmp")


def _range_of(folder: Path, address: str) -> _Range:
    """The file and byte range an address names: `<file>` or `<file>@<first>:<length>`."""
    name, mark, span = address.partition(RANGE_MARK)
    path = folder / _checked(name)
    if not mark:
        return path, 0, None
    first, colon, length = span.partition(":")
    if not (colon and first.isdigit() and length.isdigit()):
        raise StorageError("not a part address")
    return path, int(first), int(length)


def _whole_stream(ranges: list[_Range]) -> tuple[Path, int] | None:
    """(file, size) if `ranges` are one stream file's bytes from 0, back to back, to
    its very end; else None."""
    if not ranges:
        return None
    path, end = ranges[0][0], 0
    for candidate, first, length in ranges:
        if candidate != path or length is None or first != end:
            return None
        end += length
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        return None
    return (path, end) if size == end else None


def _chunks_of(source: int, first: int, length: int) -> Iterator[bytes]:
    offset, end = first, first + length
    while offset < end:
        data = os.pread(source, min(_CHUNK_BYTES, end - offset), offset)
        if not data:
            raise StorageError("a part file is shorter than it was")
        offset += len(data)
        yield data


def _remove_empty_folder(folder: Path) -> None:
    """rmdir, durably; a folder gone already, or not empty (a part arrived meanwhile:
    GC's next pass), stays as it is."""
    try:
        os.rmdir(folder)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno != errno.ENOTEMPTY:
            raise
        return
    fsio.fsync_dir(folder.parent)


def _checked(address: str) -> str:
    """A part address is a file name of the session's folder, never a path."""
    if not address or "/" in address or address in (".", ".."):
        raise StorageError("not a part address")
    return address
