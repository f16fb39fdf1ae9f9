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


class DurableShardDirs:
    """The `sha256/<hh>/<hh>` directories of one root, each made durable once per process.

    A directory that exists is not necessarily durable: another thread or process
    may have just created it and not yet fsynced its parent, and a blob linked into
    it and acknowledged could vanish with it on power loss. So the first time this
    process needs a `<hh>` directory it lists it, then fsyncs it (every second-level
    directory listed is then durable) and fsyncs `sha256/` (for `<hh>` itself); a
    second-level directory that appears later is fsynced into `<hh>` on first use.
    At most 2 x 256 fsyncs per process beyond what creating directories costs, in
    64 KiB of flags. Nothing in the store removes a directory; `forget()` starts over.
    """

    def __init__(self, shards: Path) -> None:
        self._shards = shards
        self.forget()

    def forget(self) -> None:
        """Trust nothing known so far (a directory was removed behind our back)."""
        self._adopted = bytearray(256)  # <hh> listed and fsynced
        self._known = bytearray(256 * 256)  # <hh>/<hh> durable

    def ensure(self, hex_digest: str) -> Path:
        """The directory a blob with this digest goes in: existing and durable on return."""
        first, second = int(hex_digest[:2], 16), int(hex_digest[2:4], 16)
        top = self._shards / hex_digest[:2]
        leaf = top / hex_digest[2:4]
        known, index = self._known, first * 256 + second
        if known[index]:
            return leaf
        if not self._adopted[first]:
            with contextlib.suppress(FileExistsError):
                os.mkdir(top)
            fsync_dir(self._shards)
            listed = [int(name, 16) for name in _subdirectory_names(top) if _is_hex2(name)]
            fsync_dir(top)  # after the listing: every name listed is durable now
            for number in listed:
                known[first * 256 + number] = 1
            self._adopted[first] = 1
            if known[index]:
                return leaf
        with contextlib.suppress(FileExistsError):
            os.mkdir(leaf)
        fsync_dir(top)
        known[index] = 1
        return leaf


def _subdirectory_names(path: Path) -> list[str]:
    with os.scandir(path) as entries:
        return [e.name for e in entries if e.is_dir(follow_symlinks=False)]


def _is_hex2(name: str) -> bool:
    return len(name) == 2 and all(c in "0123456789abcdef" for c in name)


def durable_link(source: Path, target: Path) -> bool:
    """Give `source`'s inode the name `target` unless that name exists; then fsync its dir.

    Returns True if `target` was created, False if it already existed (it is
    never replaced). Either way the name survives power loss on return: an
    existing name may be another upload's that has not fsynced it yet.

    Either way the directory has a change to flush when it is fsynced: an fsync of
    a directory with nothing new returns at once, one with a new entry waits for a
    journal commit, and that difference would tell a caller who times uploads
    whether someone (another tenant) already stored these bytes. So an existing
    name costs a touch of the directory's times, which the fsync then commits.
    """
    try:
        os.link(source, target)
    except FileExistsError:
        os.utime(target.parent)  # a metadata change for the fsync to commit, as a link has
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
