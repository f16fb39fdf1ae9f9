"""The container image's entry point: `juststorage-entrypoint [ARGS...]` runs
`juststorage ARGS...` as the service user.

Railway and Render (and a plain `docker run -v /host/dir:/data`) mount volumes
owned by root, so a server started as uid 10001 cannot create `/data/meta` and
`/ready` never passes. Started as root, this program first creates each local
storage directory (the data dir and the hot and cold roots, `s3://` roots
skipped) and hands it to the service user, then drops root for good (groups,
gid, uid) and replaces itself with `juststorage`. Started as any other user
(Kubernetes' `runAsUser`, `docker run --user`) it changes nothing and only
checks that those directories are writable, saying what to do when not.

Ownership is changed only where it is wrong, and a whole tree is walked only
when its top directory is not the service user's (a volume written under
another uid before): a restart of a large store costs three `stat` calls.
Symbolic links are neither followed nor changed.

It is Python and the standard library, so the image needs no `gosu` and the
same code runs in the tests (tests/deploy/test_entrypoint.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from juststorage.config import SettingsError, load_settings

SERVICE_UID = 10001
SERVICE_GID = 10001
# `uid:gid` to run as instead of the image's user (when started as root).
RUN_AS_ENV = "JUSTSTORAGE_RUN_AS"


class EntrypointError(Exception):
    """The service cannot be started as asked; the message says why and what to do."""


def run_as(env: Mapping[str, str]) -> tuple[int, int]:
    """The (uid, gid) the service runs as: `JUSTSTORAGE_RUN_AS` or 10001:10001.

    Raises:
        EntrypointError: the variable is not `uid:gid` with non-zero numbers.
    """
    value = env.get(RUN_AS_ENV, "").strip()
    if not value:
        return SERVICE_UID, SERVICE_GID
    uid, sep, gid = value.partition(":")
    if not (sep and uid.isdigit() and gid.isdigit()) or int(uid) == 0 or int(gid) == 0:
        raise EntrypointError(f"{RUN_AS_ENV}={value!r}: use uid:gid, both numbers other than 0")
    return int(uid), int(gid)


def storage_dirs(env: Mapping[str, str]) -> list[Path]:
    """The local directories the server writes, as its settings (environment and
    `JUSTSTORAGE_CONFIG` file) name them: the data dir and the hot and cold roots;
    `s3://` roots are not directories. None when the settings do not load: the
    server itself then says what is wrong."""
    try:
        settings = load_settings(env)
    except SettingsError:
        return []
    dirs = [settings.data_dir]
    for storage_class in ("hot", "cold"):
        root = settings.root_url(storage_class)
        if not root.startswith("s3://"):
            dirs.append(Path(root))
    return list(dict.fromkeys(path.absolute() for path in dirs))


def database_dir(env: Mapping[str, str], dirs: Sequence[Path]) -> Path | None:
    """The directory of the SQLite file `DATABASE_URL` names by an absolute path, when
    it lies outside `dirs` (a second volume); None otherwise (PostgreSQL, a relative
    path, the default file in the data dir, settings that do not load)."""
    try:
        url = load_settings(env).database_url or ""
    except SettingsError:
        return None
    if not url.startswith("sqlite:////"):
        return None
    folder = Path(os.path.realpath(Path(url.removeprefix("sqlite:///")).parent))
    inside = any(folder.is_relative_to(os.path.realpath(top)) for top in dirs)
    return None if inside or folder == folder.parent else folder


def prepare_database_dir(folder: Path, uid: int, gid: int) -> None:
    """Create the SQLite file's directory and give it and the database's own files
    (`meta.db`, `-wal`, `-shm`, `-journal`) to uid:gid; nothing else in it, since it
    may be any directory.

    Raises:
        EntrypointError: the directory cannot be created or handed over.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder = Path(os.path.realpath(folder))
        os.chown(folder, uid, gid, follow_symlinks=False)
        for entry in os.scandir(folder):
            if entry.is_file(follow_symlinks=False) and (
                entry.name.endswith((".db", ".db-wal", ".db-shm", ".db-journal"))
            ):
                os.chown(entry.path, uid, gid, follow_symlinks=False)
    except OSError as exc:
        raise EntrypointError(
            f"cannot prepare {folder} for uid {uid}: {exc.strerror}"
            " (the container needs the CHOWN capability when it starts as root)"
        ) from None


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    """Give `top` and everything under it to uid:gid, without following links."""
    for parent, dirnames, filenames in os.walk(top):
        for name in (*dirnames, *filenames):
            path = os.path.join(parent, name)
            stat = os.lstat(path)
            if (stat.st_uid, stat.st_gid) != (uid, gid):
                os.chown(path, uid, gid, follow_symlinks=False)
    os.chown(top, uid, gid, follow_symlinks=False)


def prepare_as_root(dirs: Sequence[Path], uid: int, gid: int) -> None:
    """Create each directory and make it (and, if it was not, its tree) uid:gid's.
    A directory named through a symbolic link (`/app/data -> /data`) is resolved
    first, so the real directory is handed over; links inside it are never followed.
    The entries directly in the first one (the data dir: the SQLite files,
    `admin.key`) are checked every time, since a command run as root beside the
    server (`docker exec` without `--user`) creates files there.

    Raises:
        EntrypointError: a directory cannot be created or handed over.
    """
    for index, path in enumerate(dirs):
        try:
            path.mkdir(parents=True, exist_ok=True)
            path = Path(os.path.realpath(path))  # named by the operator: trusted
            stat = path.lstat()
            if (stat.st_uid, stat.st_gid) != (uid, gid):
                _chown_tree(path, uid, gid)
            elif index == 0:
                for entry in os.scandir(path):
                    owner = entry.stat(follow_symlinks=False)
                    if (owner.st_uid, owner.st_gid) != (uid, gid) and not entry.is_dir(
                        follow_symlinks=False
                    ):
                        os.chown(entry.path, uid, gid, follow_symlinks=False)
        except OSError as exc:
            raise EntrypointError(
                f"cannot prepare {path} for uid {uid}: {exc.strerror}"
                " (the container needs the CHOWN capability when it starts as root)"
            ) from None


def check_writable(dirs: Sequence[Path]) -> None:
    """Raises EntrypointError naming a directory this (non-root) user cannot write or
    create, and how to fix it."""
    for path in dirs:
        probe = path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent  # the server creates the missing part itself
        if not os.access(probe, os.W_OK | os.X_OK):
            raise EntrypointError(
                f"{probe} is not writable by uid {os.geteuid()}: start the container as root"
                f" (the entry point hands the directories to uid {SERVICE_UID} and drops"
                f" root), or make the volume writable by uid {os.geteuid()}"
                " (Kubernetes: securityContext.fsGroup)"
            )


def drop_privileges(uid: int, gid: int) -> None:
    """Become uid:gid for good: no supplementary groups, then gid, then uid."""
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _home_of(uid: int, fallback: Path) -> str:
    try:
        return pwd.getpwuid(uid).pw_dir
    except KeyError:  # a uid without a passwd entry
        return str(fallback)


def main(argv: Sequence[str] | None = None) -> int:
    """Prepare, drop root if held, and exec `juststorage ARGS...` (default `serve`)."""
    args = list(sys.argv[1:] if argv is None else argv) or ["serve"]
    program = shutil.which("juststorage") or "juststorage"
    try:
        dirs = storage_dirs(os.environ)
        database = database_dir(os.environ, dirs)
        if os.geteuid() == 0:
            uid, gid = run_as(os.environ)
            prepare_as_root(dirs, uid, gid)
            if database is not None:
                prepare_database_dir(database, uid, gid)
            drop_privileges(uid, gid)
            os.environ["HOME"] = _home_of(uid, dirs[0] if dirs else Path("/"))
        else:
            check_writable([*dirs, *([database] if database is not None else [])])
    except EntrypointError as exc:
        print(f"juststorage-entrypoint: {exc}", file=sys.stderr)
        return 1
    os.execv(program, [program, *args])
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
