"""The filesystem store's write side: an upload's temp file, sealed, then linked to
its content path `<root>/sha256/<hh>/<hh>/<hex>` (SPEC §5); and the temp file names.

The durable write protocol and its crash cases: docs/durability.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

from juststorage.adapters import threads
from juststorage.adapters.blobs import fsio
from juststorage.application.ports import UnitOfWork
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import InsufficientStorage, StorageError
from juststorage.domain.model import ContentHash

FILE_MODE = 0o640


@contextmanager
def translated_os_errors() -> Iterator[None]:
    """Turn OSError into domain errors at the adapter's edge."""
    try:
        yield
    except OSError as exc:
        if fsio.is_out_of_space(exc):
            raise InsufficientStorage("the storage root is full") from exc
        raise StorageError(f"storage I/O error: {exc.strerror}") from exc


def blob_path(root: Path, digest: ContentHash) -> Path:
    """`<root>/sha256/<hh>/<hh>/<hex>` (SPEC §5)."""
    return Path(blob_path_string(str(root), digest))


def blob_path_string(root: str, digest: ContentHash) -> str:
    """`blob_path` as a string: no pathlib on the GET path, whose joins showed in
    the 4 KiB GET's profile (docs/performance.md)."""
    hex_digest = digest.hex
    return f"{root}/sha256/{hex_digest[:2]}/{hex_digest[2:4]}/{hex_digest}"


def temp_name(upload_id: UUID, owner: str = "") -> str:
    """`<upload id>.tmp`, or `<upload id>.<owner>.tmp` with the owner's identity in
    URL-safe base64: GC leaves the temp files of live processes alone without asking
    the database (small uploads write no `WRITING` row)."""
    if not owner:
        return f"{upload_id}.tmp"
    encoded = base64.urlsafe_b64encode(owner.encode()).decode().rstrip("=")
    return f"{upload_id}.{encoded}.tmp"


def parse_temp_name(name: str) -> tuple[UUID | None, str]:
    """The upload id and owner a `temp_name` carries (None and "" where it is not ours)."""
    upload, _, encoded = name.removesuffix(".tmp").partition(".")
    try:
        upload_id: UUID | None = UUID(upload)
    except ValueError:
        upload_id = None
    try:
        owner = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        owner = ""
    return upload_id, owner


def _fsync_parent(path: str) -> None:
    with translated_os_errors():
        fsio.fsync_dir(Path(path).parent)


class FileStagedBlob:
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
        # The chunks since the last flush, not copied together on the event loop: the
        # worker thread hashes and writes them as they are (one writev).
        self._chunks: list[bytes | memoryview] = []
        self._buffered = 0
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
            self._fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)

    async def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        # A caller may reuse a mutable buffer once this returns: keep a copy of that.
        self._chunks.append(chunk if isinstance(chunk, bytes) else bytes(chunk))
        self._buffered += len(chunk)
        if self._buffered >= self._chunk_bytes:
            await self._wait_pending()
            self._pending = asyncio.ensure_future(threads.run_sync(self._consume, self._take()))

    def _take(self) -> list[bytes | memoryview]:
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        return chunks

    async def seal(self) -> tuple[ContentHash, int]:
        await self._wait_pending()
        await threads.run_sync(self._finish, self._take())
        assert self._digest is not None
        return self._digest, self._size

    @property
    def address(self) -> str:
        if self._digest is None:
            raise RuntimeError("address before seal()")
        return self._digest.hex  # the content path follows from the hash

    async def publish(self) -> bool:
        if self._digest is None:
            raise RuntimeError("publish() before seal()")
        return await threads.run_sync(self._link_into_place, self._digest)

    def inline_bytes(self, blob: BlobLocation) -> bytes | bytearray | None:
        return None  # this store keeps no blob in the database

    async def confirm(self, blob: BlobLocation, *, uow: UnitOfWork) -> bool:
        if self._digest is None:
            raise RuntimeError("confirm() before seal()")
        if blob.is_inline:
            # The row keeps these bytes in the database (the threshold was lowered and
            # the blob not moved out yet): a dedup hit. The file publish() linked is
            # redundant; it goes now, under the row's lock as GC's claim_stale would
            # take it, instead of waiting for GC. The temp file goes when staging ends.
            final = blob_path_string(str(self._root), self._digest)
            await threads.run_sync(fsio.unlink_quietly, Path(final))
            return False
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

    def _consume(self, chunks: list[bytes | memoryview]) -> None:
        with translated_os_errors():
            self._ensure_file()
            for chunk in chunks:
                self._hasher.update(chunk)  # releases the GIL on large buffers
            _write_all(self._fd, chunks)
            self._size += sum(len(c) for c in chunks)
            if (
                self._writeback_bytes
                and self._size - self._written_back_to >= self._writeback_bytes
            ):
                # Start write-back of what is written so far, so the final fsync is short.
                os.posix_fadvise(
                    self._fd, self._written_back_to, self._size, os.POSIX_FADV_DONTNEED
                )
                self._written_back_to = self._size

    def _finish(self, chunks: list[bytes | memoryview]) -> None:
        if chunks:
            self._consume(chunks)
        with translated_os_errors():
            self._ensure_file()  # an empty body
            # The bytes must be durable before any name points at them.
            fsio.fsync_fd(self._fd)
        self._digest = ContentHash(self._hasher.hexdigest())

    def _link_into_place(self, digest: ContentHash) -> bool:
        hex_digest = digest.hex
        with translated_os_errors():
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


def _write_all(fd: int, chunks: list[bytes | memoryview]) -> None:
    """Every byte of `chunks` to `fd`, in order: writev, again after a short write."""
    views = [memoryview(c) for c in chunks if len(c)]
    limit = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024
    while views:
        written = os.writev(fd, views[:limit])
        while written:
            first = views[0]
            if written >= len(first):
                written -= len(first)
                views.pop(0)
            else:
                views[0] = first[written:]
                written = 0
