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


def durable_link(source: Path, target: Path) -> bool:
    """Give `source`'s inode the name `target` unless that name exists; then fsync its dir.

    Returns True if `target` was created, False if it already existed (it is
    never replaced). On True, the new name survives power loss.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        return False
    fsync_dir(target.parent)
    return True


def unlink_quietly(path: Path) -> None:
    """Remove a file; a file that is already gone is not an error."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def is_out_of_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
