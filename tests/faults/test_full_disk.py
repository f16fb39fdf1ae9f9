"""A full disk: a 4 MiB tmpfs as the hot root.

Uploads that do not fit get 507 InsufficientStorage, leave no partial blob, temp
file or WRITING row, reads keep working, and after deletes and a GC pass the
freed space takes uploads again.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from juststorage.testing import Server, run_cli, start
from support.db_query import query

pytestmark = pytest.mark.e2e

KEY = "full-disk-test-key-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
MIB = 1024 * 1024


@pytest.fixture
def small_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "tiny-hot"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a size-limited tmpfs here: {mounted.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def server(tmp_path: Path, small_root: Path, database_url: str) -> Iterator[Server]:
    started = start(
        tmp_path,
        {
            "DATABASE_URL": database_url,
            "API_KEYS": f"{KEY}:*:admin",
            "JUSTSTORAGE_HOT_ROOT": str(small_root),
            "JUSTSTORAGE_GC_INTERVAL_S": "0",
            "JUSTSTORAGE_GC_GRACE_S": "0",
        },
    )
    yield started
    started.stop()


def _upload(server: Server, key: str, body: bytes) -> tuple[int, dict[str, object]]:
    response = server.client.post(
        "/v1/objects",
        headers={**AUTH, "X-Tenant": "t", "X-Namespace": "n", "X-Key": key},
        content=body,
    )
    return response.status_code, response.json()


def test_full_disk_gives_507_and_loses_nothing(server: Server, small_root: Path) -> None:
    stored: dict[str, bytes] = {}
    answer: dict[str, object] = {}
    for i in range(8):  # 8 x 1 MiB cannot fit in 4 MiB
        body = os.urandom(MIB)
        status, answer = _upload(server, f"k{i}", body)
        if status == 507:
            break
        assert status == 201, answer
        stored[str(answer["id"])] = body
    else:
        pytest.fail("the 4 MiB root never filled up")
    assert answer["error"]["code"] == "InsufficientStorage"  # type: ignore[index]
    assert stored, "not even one object fitted"

    # Nothing partial: no temp file, every blob file hashes to its name, no WRITING row.
    assert [p.name for p in (small_root / "tmp").iterdir()] == []
    for path in (small_root / "sha256").rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    assert query(server.database_url, "SELECT id FROM objects WHERE state = 'WRITING'") == []

    # Reads keep working on the full disk.
    for object_id, body in stored.items():
        read = server.client.get(f"/v1/objects/{object_id}", headers={**AUTH, "X-Tenant": "t"})
        assert read.status_code == 200 and read.content == body

    # Free space: delete, GC, and the next upload fits again.
    for object_id in stored:
        deleted = server.client.delete(
            f"/v1/objects/{object_id}", headers={**AUTH, "X-Tenant": "t"}
        )
        assert deleted.status_code == 204
    assert run_cli(["gc"], server.env).returncode == 0
    status, answer = _upload(server, "after", os.urandom(MIB))
    assert status == 201, answer
    assert run_cli(["fsck"], server.env).returncode == 0
