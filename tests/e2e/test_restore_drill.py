"""The restore drill of docs/backup.md, with real servers and the real CLI (SPEC
§8.9): fill a server, `juststorage backup DIR`, stop it, wipe its data directory and
database, `juststorage restore DIR`, start it again and find everything as it was:
bytes by id and by key, version listings, usage, API keys (a revoked one stays
revoked), fsck clean. On SQLite and PostgreSQL, into a directory and an s3://
target; and the move from SQLite to PostgreSQL and back (docs/scale-out.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import pytest
from botocore.config import Config

from juststorage.testing import (
    BIN,
    CliResult,
    Server,
    clean_env,
    free_port,
    run_cli,
    start,
    wait_until,
)
from support.db_query import query
from support.pg_databases import fresh_database
from support.seaweedfs import SeaweedFs

pytestmark = pytest.mark.e2e

TENANTS = ("acme", "beta")
INLINE = 4096  # small objects inline, larger ones in files


def _put(server: Server, key: str, tenant: str, body: bytes, storage_class: str) -> dict[str, Any]:
    answer = server.client.put(
        f"/v1/objects/by-key/files/{tenant}/{key}",
        content=body,
        headers={**server.admin_headers(), "X-Storage-Class": storage_class},
    )
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def fill(server: Server) -> dict[str, Any]:
    """A mixed store; returns what the checks need (keys and ids)."""
    small, large = b"tiny " * 20, os.urandom(200_000)
    ids = []
    for tenant in TENANTS:
        ids.append((tenant, _put(server, "notes/a.txt", tenant, small, "hot")["id"]))
        ids.append(
            (tenant, _put(server, "notes/a.txt", tenant, small + b"v2", "hot")["id"])
        )  # a version
        ids.append((tenant, _put(server, "big.bin", tenant, large, "hot")["id"]))
        ids.append((tenant, _put(server, "archive.bin", tenant, large + b"c", "cold")["id"]))
        ids.append((tenant, _put(server, "cold-small", tenant, small, "cold")["id"]))
    gone = _put(server, "gone", "acme", b"deleted" * 1000, "hot")["id"]
    deleted = server.client.delete(
        f"/v1/objects/{gone}", headers={**server.admin_headers(), "X-Tenant": "acme"}
    )
    assert deleted.status_code == 204, deleted.text
    reader = server.create_key(["beta"], ["objects:read", "usage:read"])
    revoked = server.create_key(["acme"], ["objects:read"])
    assert server.cli("keys", "revoke", revoked["id"]).returncode == 0
    return {
        "ids": ids,
        "gone": gone,
        "admin": server.admin_key,
        "reader": reader["key"],
        "revoked": revoked["key"],
    }


def observe(server: Server, facts: dict[str, Any]) -> dict[str, Any]:
    """Everything a client can see of the store."""
    auth = {"Authorization": f"Bearer {facts['admin']}"}
    seen: dict[str, Any] = {"listings": {}, "usage": {}, "by_id": {}, "by_key": {}}
    for tenant in TENANTS:
        listing = server.client.get(
            "/v1/objects",
            params={"tenant": tenant, "namespace": "files", "versions": "true"},
            headers=auth,
        )
        assert listing.status_code == 200, listing.text
        seen["listings"][tenant] = listing.json()
        usage = server.client.get("/v1/usage", params={"tenant": tenant}, headers=auth)
        seen["usage"][tenant] = usage.json()
        for item in listing.json()["items"]:
            key = item["key"]
            seen["by_key"][f"{tenant}/{key}"] = server.client.get(
                f"/v1/objects/by-key/files/{tenant}/{key}", headers=auth
            ).content
    for tenant, object_id in facts["ids"]:
        got = server.client.get(f"/v1/objects/{object_id}", headers={**auth, "X-Tenant": tenant})
        assert got.status_code == 200, got.text
        seen["by_id"][object_id] = got.content
    gone = server.client.get(f"/v1/objects/{facts['gone']}", headers={**auth, "X-Tenant": "acme"})
    seen["gone"] = gone.status_code
    reader = {"Authorization": f"Bearer {facts['reader']}"}
    seen["reader"] = server.client.get("/v1/usage", params={"tenant": "beta"}, headers=reader)
    seen["reader"] = (seen["reader"].status_code, seen["reader"].json())
    revoked = {"Authorization": f"Bearer {facts['revoked']}"}
    seen["revoked"] = server.client.get(
        "/v1/objects", params={"tenant": "acme", "namespace": "files"}, headers=revoked
    ).status_code
    return seen


def _wipe_postgres(url: str) -> None:
    async def wipe() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await conn.close()

    asyncio.run(wipe())


def _fsck_clean(env: dict[str, str]) -> None:
    checked = run_cli(["fsck"], env, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "0 problems" in checked.stdout


def _assert_one_error(result: CliResult, needle: str) -> None:
    assert result.returncode == 1, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and needle in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def databases(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Fresh PostgreSQL databases on demand."""
    with contextlib.ExitStack() as stack:

        def new() -> str:
            server_url = request.getfixturevalue("postgres_server_url")
            return stack.enter_context(fresh_database(server_url))

        yield new


@pytest.mark.parametrize(
    "backend,target_kind",
    [
        ("sqlite", "directory"),
        pytest.param("postgres", "directory", marks=pytest.mark.postgres),
        pytest.param("sqlite", "s3", marks=pytest.mark.s3),
    ],
)
def test_the_drill(
    tmp_path: Path, request: pytest.FixtureRequest, databases: Any, backend: str, target_kind: str
) -> None:
    env = {"JUSTSTORAGE_INLINE_MAX_BYTES": str(INLINE)}
    if backend == "postgres":
        env["DATABASE_URL"] = databases()
    target = str(tmp_path / "backups")
    if target_kind == "s3":
        weed: SeaweedFs = request.getfixturevalue("seaweedfs")
        env.update(weed.env())
        target = weed.root()
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env["JUSTSTORAGE_S3_ADDR"] = f"127.0.0.1:{free_port()}"
    server = start(tmp_path, env, data_dir=data_dir)
    try:
        s3_key = _s3_key(server)
        facts = fill(server)
        before = observe(server, facts)
        s3_before = _s3_get(env, s3_key)
        made = server.cli("backup", target, "--json")
        assert made.returncode == 0, made.stderr
    finally:
        server.stop()
    assert before["gone"] == 404 and before["revoked"] == 401 and before["reader"][0] == 200

    # The S3 master key is not in a backup: carried over beside it (docs/backup.md).
    master_key = (data_dir / "s3-master.key").read_bytes()
    shutil.rmtree(data_dir)
    if backend == "postgres":
        _wipe_postgres(env["DATABASE_URL"])
    cli_env = clean_env(data_dir, env)
    restored = run_cli(["restore", target, "--json"], cli_env, timeout=120)
    assert restored.returncode == 0, restored.stderr
    summary = json.loads(restored.stdout)
    assert summary["id"] == json.loads(made.stdout)["id"]
    assert summary["objects"] == 10 and summary["api_keys"] == 4
    assert "restore: " in restored.stderr  # progress on stderr
    assert "warning: no S3 master key here" in restored.stderr
    (data_dir / "s3-master.key").write_bytes(master_key)

    again = run_cli(["restore", target], cli_env, timeout=60)
    _assert_one_error(again, "not empty")

    server = start(tmp_path, env, data_dir=data_dir)
    try:
        assert observe(server, facts) == before
        assert _s3_get(env, s3_key) == s3_before  # the old S3 credentials work
        _fsck_clean(cli_env)
    finally:
        server.stop()


def _s3_key(server: Server) -> dict[str, str]:
    made = server.cli(
        "keys", "create", "--s3", "--json", "--tenant", "acme", "--scope", "objects:read"
    )
    assert made.returncode == 0, made.stderr
    created: dict[str, str] = json.loads(made.stdout.strip().splitlines()[-1])
    return created


def _s3_get(env: dict[str, str], key: dict[str, str]) -> bytes:
    """`big.bin` of acme through the S3 gateway with `key`'s S3 credentials."""
    client = boto3.client(
        "s3",
        endpoint_url=f"http://{env['JUSTSTORAGE_S3_ADDR']}",
        aws_access_key_id=key["access_key_id"],
        aws_secret_access_key=key["secret_access_key"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )
    try:
        body: bytes = client.get_object(Bucket="acme.files", Key="big.bin")["Body"].read()
        return body
    finally:
        client.close()


@pytest.mark.postgres
def test_moving_from_sqlite_to_postgresql_and_back(tmp_path: Path, databases: Any) -> None:
    env = {"JUSTSTORAGE_INLINE_MAX_BYTES": str(INLINE)}
    first = tmp_path / "sqlite-data"
    first.mkdir()
    server = start(tmp_path, env, data_dir=first)
    try:
        facts = fill(server)
        before = observe(server, facts)
        assert server.cli("backup", str(tmp_path / "b1")).returncode == 0
    finally:
        server.stop()

    # SQLite → PostgreSQL: a new data directory for the blobs, a new database.
    pg_env = {**env, "DATABASE_URL": databases()}
    second = tmp_path / "pg-data"
    restored = run_cli(["restore", str(tmp_path / "b1")], clean_env(second, pg_env), timeout=120)
    assert restored.returncode == 0, restored.stderr
    server = start(tmp_path, pg_env, data_dir=second)
    try:
        assert observe(server, facts) == before
        _fsck_clean(clean_env(second, pg_env))
        assert server.cli("backup", str(tmp_path / "b2")).returncode == 0
    finally:
        server.stop()

    # And back: PostgreSQL → SQLite, with another inline threshold.
    third = tmp_path / "sqlite-again"
    back_env = {"JUSTSTORAGE_INLINE_MAX_BYTES": "0"}
    restored = run_cli(["restore", str(tmp_path / "b2")], clean_env(third, back_env), timeout=120)
    assert restored.returncode == 0, restored.stderr
    server = start(tmp_path, back_env, data_dir=third)
    try:
        assert observe(server, facts) == before
        _fsck_clean(clean_env(third, back_env))
    finally:
        server.stop()


def _hot_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "hot" / "sha256").rglob("*") if p.is_file()]


def test_a_killed_restore_commits_nothing_and_gc_sweeps_what_it_stored(tmp_path: Path) -> None:
    env = {"JUSTSTORAGE_INLINE_MAX_BYTES": "0"}
    source = tmp_path / "source"
    source.mkdir()
    server = start(tmp_path, env, data_dir=source)
    try:
        for n in range(40):
            _put(server, f"blob-{n}", "acme", os.urandom(1_500_000), "hot")
        assert server.cli("backup", str(tmp_path / "b")).returncode == 0
    finally:
        server.stop()

    data_dir = tmp_path / "dest"
    dest_env = clean_env(data_dir, env)
    argv = [str(BIN), "restore", str(tmp_path / "b"), "--parallel", "1"]
    proc = subprocess.Popen(argv, env=dest_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Killed once a few blobs are stored, well before the last of 40.
        stored = wait_until(lambda: len(_hot_files(data_dir)) >= 3, timeout=60, interval=0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()
    assert stored and proc.returncode == -signal.SIGKILL
    left = _hot_files(data_dir)
    assert 3 <= len(left) < 40
    database = f"sqlite:///{data_dir / 'meta.db'}"
    assert query(database, "SELECT COUNT(*) FROM objects") == [(0,)]
    assert query(database, "SELECT COUNT(*) FROM api_keys") == [(0,)]
    assert query(database, "SELECT COUNT(*) FROM backup_holds") == [(1,)]  # the dead run's

    # Its hold does not count (its process is gone): GC sweeps the orphans after the
    # grace period, and not before.
    kept = run_cli(["gc"], dest_env)
    assert kept.returncode == 0 and len(_hot_files(data_dir)) == len(left), kept.stdout
    swept = run_cli(["gc"], {**dest_env, "JUSTSTORAGE_GC_GRACE_S": "0"})
    assert swept.returncode == 0, swept.stderr
    assert _hot_files(data_dir) == []

    again = run_cli(["restore", str(tmp_path / "b"), "--json"], dest_env, timeout=120)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["objects"] == 40
    _fsck_clean(dest_env)
