"""Files only their owner may read: key files and database files (SPEC §6).

Modes are given at creation (`os.open(..., 0o600)`), never set after the fact on a
file that was readable for a moment, and nothing is ever opened through a link
someone else may have planted at the path.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


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


def ensure_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists; take group and other
    permissions off an existing one (of a store created before this rule).

    SQLite gives a database's -wal and -shm files the database file's mode, so a
    0600 database file keeps them private too.

    Raises:
        OSError: the file cannot be created.
    """
    try:
        os.close(os.open(path, _NEW, PRIVATE_MODE))
        return
    except FileExistsError:
        pass
    for existing in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            mode = existing.stat().st_mode
            if mode & 0o077:
                existing.chmod(mode & 0o700)
