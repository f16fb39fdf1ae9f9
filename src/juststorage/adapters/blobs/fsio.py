"""Durable file-system primitives of the blob write path.

Each function states what is durable when it returns. They raise `OSError`;
the blob store translates it (ENOSPC → InsufficientStorage) at its boundary.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

_F_FULLFSYNC = getattr(__import__("fcntl"), "F_FULLFSYNC", None)


def fsync_fd(fd: int) -> None:
    """Flush a file's data and metadata to stable storage.

    Uses F_FULLFSYNC where the platform has it (macOS's fsync does not flush the
    drive cache); plain fsync elsewhere.
    """
    if _F_FULLFSYNC is not None:
        import fcntl

        fcntl.fcntl(fd, _F_FULLFSYNC)
    else:
        os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """Make the entries of a directory (creates, renames, links) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsync_fd(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: Path, stop_at: Path) -> None:
    """Create `path` and missing parents below `stop_at`, fsyncing each parent touched.

    A directory created but not fsynced into its parent can vanish on power
    loss together with every file later linked into it.
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current == stop_at or current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            continue
        fsync_dir(directory.parent)


class DurableDirs:
    """Creates directories below one root and knows which of them are durable.

    A directory that exists is not necessarily durable: another thread or process
    may have just created it and not yet fsynced its parent. A blob linked into it
    and acknowledged could then vanish with it on power loss. So the first time
    this process needs a directory it fsyncs that directory's parent, whoever
    created it; after that the directory costs nothing (nothing here removes one).
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._prefix = len(str(root))
        self._known: set[str] = set()  # paths below the root: at most 65,792 shard dirs

    def ensure(self, path: Path) -> None:
        """Create `path` and its missing parents below the root; each is durable on return."""
        unknown: list[Path] = []
        current = path
        while current != self._root and str(current)[self._prefix :] not in self._known:
            unknown.append(current)
            if current.parent == current:
                break
            current = current.parent
        for directory in reversed(unknown):
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory)
            fsync_dir(directory.parent)
            self._known.add(str(directory)[self._prefix :])

    def adopt_existing(self, top: Path) -> None:
        """Make every directory that exists now, from `top` down two levels, durable and
        remember it (at startup: one fsync per directory that holds others, about 257
        for a full `sha256/`, instead of one per leaf as uploads first reach it)."""
        fsync_dir(top.parent)
        fsync_dir(top)
        self._known.add(str(top)[self._prefix :])
        for entry in _subdirectories(str(top)):
            fsync_dir(Path(entry))
            self._known.add(entry[self._prefix :])
            self._known.update(leaf[self._prefix :] for leaf in _subdirectories(entry))

    def forget(self, path: Path) -> None:
        """Forget `path` and what lies below it (removed behind this process's back)."""
        below = str(path)[self._prefix :]
        self._known = {d for d in self._known if d != below and not d.startswith(below + "/")}


def _subdirectories(path: str) -> list[str]:
    with os.scandir(path) as entries:
        return [e.path for e in entries if e.is_dir(follow_symlinks=False)]


def durable_link(source: Path, target: Path) -> bool:
    """Give `source`'s inode the name `target` unless that name exists; then fsync its dir.

    Returns True if `target` was created, False if it already existed (it is
    never replaced). Either way the name survives power loss on return: an
    existing name may be another upload's that has not fsynced it yet.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        fsync_dir(target.parent)
        return False
    fsync_dir(target.parent)
    return True


def unlink_quietly(path: Path) -> None:
    """Remove a file; a file that is already gone is not an error."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def is_out_of_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
