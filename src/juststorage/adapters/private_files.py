"""Files only their owner may read: key files and database files (SPEC §6).

Modes are given at creation (`os.open(..., 0o600)`), never set after the fact on a
file that was readable for a moment, and nothing is ever opened through a link
someone else may have planted at the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600
_NO_FOLLOW = os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NO_FOLLOW


def replace_private_file(path: Path, data: bytes) -> None:
    """Make `path` a new file holding `data`, mode 0600, durable when this returns.

    The bytes go to a new file beside it (O_CREAT | O_EXCL | O_NOFOLLOW: never an
    existing file, never through a link), which is then renamed over `path`: a file
    or a symbolic or hard link already at `path` is replaced, never written through.

    Raises:
        OSError: the directory cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, _NEW, PRIVATE_MODE)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)  # the bytes are durable before the name points at them
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename survives a crash
    finally:
        os.close(dir_fd)


class PlantedLinkError(OSError):
    """A symbolic link sits where the store keeps one of its own files."""


def _refuse_link(path: Path) -> PlantedLinkError:
    return PlantedLinkError(
        errno.ELOOP,
        "a symbolic link where the store keeps its own file is never followed (remove it)",
        str(path),
    )


def _open_no_follow(path: Path, flags: int) -> int:
    try:
        return os.open(path, flags | _NO_FOLLOW, PRIVATE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _refuse_link(path) from None
        raise


def _make_private(fd: int) -> None:
    mode = os.fstat(fd).st_mode
    if mode & 0o077:
        with contextlib.suppress(PermissionError):  # another user's file: theirs to fix
            os.fchmod(fd, mode & 0o700)


def open_private_file(path: Path) -> int:
    """Open `path` read-only, creating it empty with mode 0600 if it is missing, and
    take group and other permissions off an existing one; the caller closes the fd.

    Never through a symbolic link at `path` (O_NOFOLLOW): the mode is changed on the
    open file (fchmod), so a link cannot point the change at another file.

    Raises:
        PlantedLinkError: `path` is a symbolic link.
        OSError: the file cannot be opened or created.
    """
    fd = _open_no_follow(path, os.O_RDONLY | os.O_CREAT)
    try:
        _make_private(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def ensure_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists; take group and other
    permissions off an existing one (of a store created before this rule), and off
    its SQLite -wal and -shm files.

    SQLite gives a database's -wal and -shm files the database file's mode, so a
    0600 database file keeps them private too. None of the three is followed
    through a symbolic link.

    Raises:
        PlantedLinkError: one of them is a symbolic link.
        OSError: the file cannot be created.
    """
    os.close(open_private_file(path))
    for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            fd = _open_no_follow(sidecar, os.O_RDONLY)
        except (FileNotFoundError, PermissionError):
            continue
        try:
            _make_private(fd)
        finally:
            os.close(fd)


def read_or_create_private_file(path: Path, data: bytes) -> bytes:
    """The bytes of `path`, which is created holding `data` (mode 0600) if missing.

    Processes starting together agree on one content: the new file is written and
    synced beside `path`, then linked to it, which fails if another process linked
    its own first; every caller then reads what `path` holds. Never through a
    symbolic link at `path`.

    Raises:
        PlantedLinkError: `path` is a symbolic link.
        OSError: the file cannot be read or created.
    """
    try:
        return _read_private(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, _NEW, PRIVATE_MODE)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)  # the bytes are durable before the name points at them
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process was first: keep its
            os.link(temp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the link survives a crash
    finally:
        os.close(dir_fd)
    return _read_private(path)


def _read_private(path: Path) -> bytes:
    fd = _open_no_follow(path, os.O_RDONLY)
    try:
        _make_private(fd)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
