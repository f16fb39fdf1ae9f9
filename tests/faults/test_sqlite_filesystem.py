"""The SQLite database's file system failing under a running server: full (507)
or turned read-only (503), never 500, and reads go on.

Both need mounts (the tests run as root, whom file modes do not stop): a small
tmpfs for a full disk; for read-only, an ext4 image on a loop device that the
kernel turns read-only as on an I/O error (`errors=remount-ro` and ext4's
`trigger_fs_error`), which holds even for files the server has open for writing.
Without them the tests skip locally (saying why) and fail in CI.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from juststorage.testing import Server, start

pytestmark = pytest.mark.e2e

KEY = "sqlite-filesystem-test-key-0123456789"
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Tenant": "t", "X-Namespace": "n"}
PAYLOAD = b"stored before the database's disk failed"
MAX_UPLOADS = 400  # the metadata of small uploads fills the WAL's last free pages well before


def _skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "db-tmpfs"
    where.mkdir()
    mounted = _run("mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(where))
    if mounted.returncode != 0:
        _skip_or_fail(f"cannot mount a size-limited tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        _run("umount", "-l", str(where))


@pytest.fixture
def ext4_image(tmp_path: Path) -> Iterator[Path]:
    """A mounted 16 MiB ext4 file system that turns read-only on its first error."""
    image, where = tmp_path / "db.img", tmp_path / "db-ext4"
    where.mkdir()
    with image.open("wb") as f:
        f.truncate(16 * 1024 * 1024)
    made = _run("mkfs.ext4", "-q", "-F", str(image))
    if made.returncode != 0:
        _skip_or_fail(f"cannot make an ext4 image: {made.stderr.strip()}")
    mounted = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(where))
    if mounted.returncode != 0:
        _skip_or_fail(f"cannot mount an ext4 image on a loop device: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        _run("umount", str(where))  # the server is stopped by then; frees the loop device


def _serve(tmp_path: Path, database: Path) -> Server:
    return start(tmp_path, {"DATABASE_URL": f"sqlite:///{database}", "API_KEYS": f"{KEY}:*:admin"})


def _upload(server: Server, key: str) -> httpx.Response:
    return server.client.post("/v1/objects", headers={**HEADERS, "X-Key": key}, content=PAYLOAD)


def _stored(server: Server) -> str:
    response = _upload(server, "before")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _assert_reads_go_on(server: Server, object_id: str) -> None:
    read = server.client.get(f"/v1/objects/{object_id}", headers=HEADERS)
    assert read.status_code == 200 and read.content == PAYLOAD, read.text
    listed = server.client.get("/v1/objects?namespace=n&tenant=t", headers=HEADERS)
    assert listed.status_code == 200, listed.text
    assert "before" in {item["key"] for item in listed.json()["items"]}


def test_sqlite_disk_full_answers_507_and_reads_go_on(tmp_path: Path, tiny_tmpfs: Path) -> None:
    server = _serve(tmp_path, tiny_tmpfs / "meta.db")
    try:
        object_id = _stored(server)
        # Everything but the database's own pages taken: its WAL cannot grow.
        filler = tiny_tmpfs / "filler"
        _run("dd", "if=/dev/zero", f"of={filler}", "bs=4k")
        for i in range(MAX_UPLOADS):
            response = _upload(server, f"k{i}-{uuid.uuid4().hex}")
            if response.status_code != 201:
                break
        else:
            pytest.fail(f"{MAX_UPLOADS} uploads fitted on a full disk")
        where = f"{response.status_code}: {response.text}\n{server.log_tail(30)}"
        assert response.status_code == 507, where
        assert response.json()["error"]["code"] == "InsufficientStorage", where
        assert str(tiny_tmpfs) not in response.text
        _assert_reads_go_on(server, object_id)
        filler.unlink()
        assert _upload(server, "after").status_code == 201
    finally:
        server.stop()


def test_sqlite_read_only_file_system_answers_503_and_reads_go_on(
    tmp_path: Path, ext4_image: Path
) -> None:
    server = _serve(tmp_path, ext4_image / "meta.db")
    try:
        object_id = _stored(server)
        device = Path(
            _run("findmnt", "-no", "SOURCE", str(ext4_image)).stdout.strip()
        ).name  # loopN
        trigger = Path(f"/sys/fs/ext4/{device}/trigger_fs_error")
        if not trigger.exists():
            _skip_or_fail(f"no {trigger}: cannot make the file system fail")
        trigger.write_text("1\n")
        with pytest.raises(OSError, match="Read-only file system"):
            (ext4_image / "probe").write_bytes(b"x")
        for key in ("during", "during again"):
            response = _upload(server, key)
            where = f"{response.status_code}: {response.text}\n{server.log_tail(30)}"
            assert response.status_code in (503, 507), where
            assert response.json()["error"]["code"] in ("Unavailable", "InsufficientStorage")
            assert str(ext4_image) not in response.text
        deleted = server.client.delete(f"/v1/objects/{object_id}", headers=HEADERS)
        assert deleted.status_code in (503, 507), deleted.text
        _assert_reads_go_on(server, object_id)
    finally:
        server.stop()
