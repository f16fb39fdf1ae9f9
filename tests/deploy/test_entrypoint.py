"""The image's entry point with a root-owned volume, as Railway and Render mount one
(there is no container runtime here: the entry point is run as the image runs it,
as root, on a directory root created).

Started as root it hands the storage directories to the service user and drops
root before the server starts, and `/ready` passes; started as the service user
it runs as it is; started as that user on a volume it cannot write it says so.
The service user is `nobody` here (a uid that exists on this machine), through
`JUSTSTORAGE_RUN_AS`; the image's default is 10001.
"""

from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from juststorage.deploy import entrypoint
from juststorage.testing import clean_env, free_port, wait_until
from support.users import NOBODY, as_nobody

pytestmark = pytest.mark.e2e


@pytest.fixture
def volume(shared_tmp: Path) -> Path:
    """A root-owned directory standing for the mounted volume (`/data`)."""
    data = shared_tmp / "data"
    data.mkdir(mode=0o755)
    (data / "lost+found").mkdir(mode=0o700)  # as a fresh ext4 volume has
    return data


def _env(volume: Path, port: int, bin_dir: Path) -> dict[str, str]:
    # The image's settings, /data moved to the volume; the addresses on 127.0.0.1.
    env = clean_env(
        volume / "meta",
        {
            "JUSTSTORAGE_HOT_ROOT": str(volume / "hot"),
            "JUSTSTORAGE_COLD_ROOT": str(volume / "cold"),
            "JUSTSTORAGE_HOST": "127.0.0.1",
            "JUSTSTORAGE_PORT": str(port),
            "JUSTSTORAGE_RUN_AS": f"{NOBODY}:{NOBODY}",
            "JWT_SECRET": "x" * 32,
        },
    )
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


def _ids(pid: int) -> tuple[list[int], list[int], list[int]]:
    """Real, effective, saved and fs uids and gids, and the supplementary groups."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (
        [int(v) for v in fields["Uid"].split()],
        [int(v) for v in fields["Gid"].split()],
        [int(v) for v in fields["Groups"].split()],
    )


def _serve(env: dict[str, str], *, nobody: bool) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["juststorage-entrypoint", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=as_nobody if nobody else None,
    )


def _stop(server: subprocess.Popen[bytes]) -> str:
    server.terminate()
    output, _ = server.communicate(timeout=20)
    return output.decode(errors="replace")


def test_started_as_root_on_a_root_owned_volume_the_server_gets_ready_as_the_service_user(
    volume: Path, nobody_bin: Path
) -> None:
    # A data dir written as root before (an earlier image, a `docker exec` as root).
    (volume / "meta").mkdir()
    (volume / "meta" / "stray.txt").write_text("root's")
    port = free_port()
    server = _serve(_env(volume, port, nobody_bin), nobody=False)
    try:
        assert wait_until(lambda: _ready(port), timeout=30), _stop(server)
        # exec: the entry point's process is now the server, without root.
        uids, gids, groups = _ids(server.pid)
        assert uids == [NOBODY] * 4 and gids == [NOBODY] * 4 and groups == []
    finally:
        output = _stop(server)
    for name in ("meta", "hot", "cold"):
        stat = (volume / name).stat()
        assert (stat.st_uid, stat.st_gid) == (NOBODY, NOBODY), (name, output)
    for path in (volume / "meta" / "stray.txt", *(volume / "meta").glob("meta.db*")):
        assert path.stat().st_uid == NOBODY, path
    assert (volume / "lost+found").stat().st_uid == 0  # only the storage directories
    assert volume.stat().st_uid == 0

    # Restarted as the service user itself (Kubernetes' runAsUser): it runs as is.
    server = _serve(_env(volume, port, nobody_bin), nobody=True)
    try:
        assert wait_until(lambda: _ready(port), timeout=30), _stop(server)
    finally:
        _stop(server)


def test_without_the_entry_point_the_service_user_cannot_use_the_volume(
    volume: Path, nobody_bin: Path
) -> None:
    """What Railway and Render did with `USER 10001` and `juststorage serve`."""
    port = free_port()
    server = subprocess.Popen(
        ["juststorage", "serve"],
        env=_env(volume, port, nobody_bin),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=as_nobody,
    )
    try:
        assert not wait_until(lambda: _ready(port), timeout=5)
    finally:
        _stop(server)


def test_started_as_the_service_user_on_a_root_owned_volume_it_says_what_to_do(
    volume: Path, nobody_bin: Path
) -> None:
    done = subprocess.run(
        ["juststorage-entrypoint", "serve"],
        env=_env(volume, free_port(), nobody_bin),
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=as_nobody,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("juststorage-entrypoint: ")
    assert f"{volume} is not writable by uid {NOBODY}" in done.stderr
    assert "start the container as root" in done.stderr
    assert not (volume / "meta").exists()


def test_ownership_is_not_changed_through_a_symbolic_link(volume: Path) -> None:
    outside = volume.parent / "outside"
    outside.mkdir()
    (outside / "secret").write_text("root's")
    (volume / "hot").mkdir()
    (volume / "hot" / "link").symlink_to(outside)
    (volume / "hot" / "file-link").symlink_to(outside / "secret")
    dirs = [volume / "meta", volume / "hot", volume / "cold"]
    entrypoint.prepare_as_root(dirs, NOBODY, NOBODY)
    assert outside.stat().st_uid == 0 and (outside / "secret").stat().st_uid == 0
    assert (volume / "hot" / "link").lstat().st_uid == NOBODY  # the link itself
    assert all(path.stat().st_uid == NOBODY for path in dirs)


def test_a_data_dir_named_through_a_symbolic_link_is_handed_over(volume: Path) -> None:
    app = volume.parent / "app"
    app.mkdir()
    (app / "data").symlink_to(volume, target_is_directory=True)  # /app/data -> /data
    outside = volume.parent / "outside"
    outside.mkdir()
    (volume / "inner-link").symlink_to(outside, target_is_directory=True)
    entrypoint.prepare_as_root([app / "data"], NOBODY, NOBODY)
    assert volume.stat().st_uid == NOBODY and volume.stat().st_gid == NOBODY
    assert (volume / "lost+found").stat().st_uid == NOBODY
    assert outside.stat().st_uid == 0  # links inside the tree are still not followed
    made = subprocess.run(
        ["touch", str(app / "data" / "meta.db")],
        preexec_fn=as_nobody,
        capture_output=True,
        text=True,
        check=False,
    )
    assert made.returncode == 0, made.stderr


def test_a_sqlite_file_on_another_volume_gets_its_directory_handed_over(
    volume: Path,
) -> None:
    other = volume.parent / "other-volume"
    other.mkdir(mode=0o755)
    (other / "meta.db").write_bytes(b"")
    (other / "unrelated.txt").write_text("root's")
    env = {
        "JUSTSTORAGE_DATA_DIR": str(volume),
        "DATABASE_URL": f"sqlite:///{other / 'meta.db'}",
    }
    dirs = entrypoint.storage_dirs(env)
    folder = entrypoint.database_dir(env, dirs)
    assert folder == other
    entrypoint.prepare_database_dir(folder, NOBODY, NOBODY)
    assert other.stat().st_uid == NOBODY and (other / "meta.db").stat().st_uid == NOBODY
    assert (other / "unrelated.txt").stat().st_uid == 0
    inside = {**env, "DATABASE_URL": f"sqlite:///{volume / 'meta.db'}"}
    assert entrypoint.database_dir(inside, dirs) is None
    assert entrypoint.database_dir({"JUSTSTORAGE_DATA_DIR": str(volume)}, dirs) is None
    root_file = {**env, "DATABASE_URL": "sqlite:////meta.db"}
    assert entrypoint.database_dir(root_file, dirs) is None  # never the whole filesystem


def test_storage_directories_come_from_the_settings(tmp_path: Path) -> None:
    env = {
        "JUSTSTORAGE_DATA_DIR": str(tmp_path / "meta"),
        "JUSTSTORAGE_HOT_ROOT": "s3://bucket/hot",  # not a directory: left alone
    }
    assert entrypoint.storage_dirs(env) == [tmp_path / "meta", tmp_path / "meta" / "cold"]
    assert entrypoint.storage_dirs({"JUSTSTORAGE_WORKERS": "many"}) == []  # server says why


@pytest.mark.parametrize("value", ["0:0", "10001", "a:b", "10001:0", "-1:5"])
def test_a_bad_run_as_is_refused(value: str) -> None:
    with pytest.raises(entrypoint.EntrypointError, match="JUSTSTORAGE_RUN_AS"):
        entrypoint.run_as({"JUSTSTORAGE_RUN_AS": value})
    assert entrypoint.run_as({}) == (entrypoint.SERVICE_UID, entrypoint.SERVICE_GID)
