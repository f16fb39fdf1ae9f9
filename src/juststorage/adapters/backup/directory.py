"""DirectoryTarget: a backup target in a local (or mounted) directory.

Every put is durable and atomic: the bytes go to a temp file under `<root>/tmp/`
(same file system as the final key), which is fsynced, renamed into place, and
the directory that gained the name is fsynced (with any directory created for it).
A temp file left by a killed run is invisible to readers; `list_keys` never lists
`tmp/`, and `clean_temp` removes old ones.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from pathlib import Path
from typing import BinaryIO

from juststorage.adapters import threads
from juststorage.adapters.blobs.fsio import fsync_dir, fsync_fd, makedirs_durable, unlink_quietly
from juststorage.domain.errors import BadRequest, InsufficientStorage, NotFound, Unavailable

_READ_CHUNK = 1024 * 1024
# Small chunks (gzip's output of the metadata stream comes in pieces of a few bytes,
# many empty) are gathered up to this size before a worker thread writes them: a
# thread round trip per piece cost a second backup of an unchanged store most of its time.
_WRITE_AT_LEAST = 1024 * 1024
_LIST_PAGE = 1000
TEMP_DIR = "tmp"


def _check_key(key: str) -> None:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"not a relative key: {key!r}")
    if parts[0] == TEMP_DIR:
        raise ValueError(f"{TEMP_DIR}/ is the target's temporary space: {key!r}")


# A target that cannot be used as given (a file, no permission, read-only): the
# user's to fix, like bad settings (exit 2).
_UNUSABLE = {
    errno.ENOTDIR,
    errno.EEXIST,
    errno.EISDIR,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.ENAMETOOLONG,
    errno.ELOOP,
}


@contextlib.contextmanager
def _translated(what: str, *, writing: bool = False) -> Iterator[None]:
    """OSErrors become domain errors at this adapter's edge: NotFound (a missing key
    read), BadRequest (the target cannot be used as given), InsufficientStorage (it
    is full), Unavailable (anything else: the file system failed)."""
    try:
        yield
    except FileNotFoundError as exc:
        if writing:
            # A temp file or folder removed while this run wrote it: something else
            # (a prune that took this run for dead, a person) cleaned the target.
            raise Unavailable(
                f"{what}: a file of the backup target was removed while it was written"
            ) from exc
        raise NotFound(f"{what}: no such file") from exc
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InsufficientStorage(f"{what}: the backup target is full") from exc
        if exc.errno in _UNUSABLE:
            raise BadRequest(
                f"{what}: the backup target cannot be used: {exc.strerror or exc}"
            ) from exc
        raise Unavailable(f"{what}: the backup target failed: {exc.strerror or exc}") from exc


class DirectoryTarget:
    """A backup target in the directory `root` (created, durably, if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: set[Path] = set()  # directories known durable in this process

    @property
    def description(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    def _ensure_dir(self, path: Path) -> None:
        if path in self._made:
            return
        if not self.root.is_dir():
            # Every level created is fsynced into its parent, up to the first that was.
            makedirs_durable(self.root, Path(self.root.anchor))
        makedirs_durable(path, self.root)
        self._made.add(path)

    def _open_temp(self) -> tuple[Path, int]:
        tmp_dir = self.root / TEMP_DIR
        self._ensure_dir(tmp_dir)
        tmp = tmp_dir / f"{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        return tmp, fd

    def _publish(self, tmp: Path, fd: int, final: Path) -> None:
        """fsync the temp file, rename it to `final`, fsync the directory (the caller
        closes `fd`, once, whatever happens)."""
        fsync_fd(fd)
        self._ensure_dir(final.parent)
        os.rename(tmp, final)
        fsync_dir(final.parent)

    def _put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        tmp, fd = self._open_temp()
        published = False
        try:
            _write_all(fd, data)
            self._publish(tmp, fd, final)
            published = True
        finally:
            os.close(fd)
            if not published:
                unlink_quietly(tmp)

    async def put_bytes(self, key: str, data: bytes) -> None:
        with _translated(f"write {key}", writing=True):
            await threads.run_sync(self._put_bytes, key, data)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        final = self._path(key)
        written = 0
        with _translated(f"write {key}", writing=True):
            tmp, fd = await threads.run_sync(self._open_temp)
            published = False
            try:
                pending = bytearray()
                async for chunk in chunks:
                    if len(chunk) >= _WRITE_AT_LEAST and not pending:
                        await threads.run_sync(_write_all, fd, chunk)
                    else:
                        pending += chunk
                        if len(pending) >= _WRITE_AT_LEAST:
                            await threads.run_sync(_write_all, fd, bytes(pending))
                            pending.clear()
                    written += len(chunk)
                if pending:
                    await threads.run_sync(_write_all, fd, bytes(pending))
                await threads.run_sync(self._publish, tmp, fd, final)
                published = True
            finally:
                os.close(fd)
                if not published:
                    unlink_quietly(tmp)
        return written

    async def get_stream(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        opened: list[BinaryIO] = []
        with _translated(f"read {key}"):
            try:
                f = await threads.run_sync(_open_for_reading, path, opened)
            except BaseException:
                # Cancelled while the thread opened it (run_sync waits for the thread):
                # the file was opened all the same and nobody else will close it.
                for leftover in opened:
                    leftover.close()
                raise
            try:
                while chunk := await threads.run_sync(f.read, _READ_CHUNK):
                    yield chunk
            finally:
                f.close()

    async def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        with _translated(f"read {key}"):
            return await threads.run_sync(path.read_bytes)

    async def exists(self, key: str) -> bool:
        return await threads.run_sync(self._path(key).is_file)

    async def list_keys(self, prefix: str) -> AsyncIterator[list[str]]:
        async for page in self._walk(prefix, sizes=False):
            yield [key for key, _ in page]

    def list_sizes(self, prefix: str) -> AsyncIterator[list[tuple[str, int]]]:
        return self._walk(prefix, sizes=True)

    async def _walk(self, prefix: str, *, sizes: bool) -> AsyncIterator[list[tuple[str, int]]]:
        """Pages of (key, size) under `prefix`; sizes (one stat per file) if asked, -1
        otherwise. A file removed during the walk is left out."""
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"a prefix is a folder ending in '/': {prefix!r}")
        if prefix:
            _check_key(prefix.rstrip("/"))
        start = self.root / prefix if prefix else self.root
        page: list[tuple[str, int]] = []
        with _translated(f"list {prefix or '/'}"):
            walker = await threads.run_sync(lambda: os.walk(start))
            while True:
                step = await threads.run_sync(_step, walker, self.root, sizes)
                if step is None:
                    break
                folder, files = step
                relative = Path(folder).relative_to(self.root).as_posix()
                base = "" if relative == "." else relative + "/"
                page.extend((base + name, size) for name, size in files)
                if len(page) >= _LIST_PAGE:
                    yield page
                    page = []
        if page:
            yield page

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with _translated(f"remove {key}"):
            await threads.run_sync(unlink_quietly, path)

    async def clean_temp(self, older_than_s: float) -> int:
        """Remove temp files older than `older_than_s` (left by killed runs); how many."""
        tmp_dir = self.root / TEMP_DIR

        def clean() -> int:
            removed = 0
            cutoff = time.time() - older_than_s
            with contextlib.suppress(FileNotFoundError), os.scandir(tmp_dir) as entries:
                for entry in entries:
                    with contextlib.suppress(FileNotFoundError):
                        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                            os.unlink(entry.path)
                            removed += 1
            return removed

        with _translated("clean tmp/"):
            return await threads.run_sync(clean)

    async def close(self) -> None:
        return None


def _step(
    walker: Iterator[tuple[str, list[str], list[str]]], root: Path, sizes: bool
) -> tuple[str, list[tuple[str, int]]] | None:
    """One folder of the walk (never into the root's tmp/), its files and sizes."""
    step = next(walker, None)
    if step is None:
        return None
    folder, dirs, files = step
    if Path(folder) == root:
        dirs[:] = [d for d in dirs if d != TEMP_DIR]
    found: list[tuple[str, int]] = []
    for name in files:
        if not sizes:
            found.append((name, -1))
            continue
        try:
            found.append((name, os.stat(os.path.join(folder, name)).st_size))
        except FileNotFoundError:
            continue
    return folder, found


def _open_for_reading(path: Path, opened: list[BinaryIO]) -> BinaryIO:
    f = path.open("rb")
    opened.append(f)
    return f


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
