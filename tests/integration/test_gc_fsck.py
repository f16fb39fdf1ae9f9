"""GC and fsck on a real SQLite file and real blob roots, and the `gc` / `fsck` commands."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from juststorage.adapters.blobs.filesystem import blob_path
from juststorage.adapters.blobs.filesystem_parts import part_name
from juststorage.application.deletes import delete_object
from juststorage.application.fsck import ProblemKind, check_store
from juststorage.application.gc import GcPolicy, collect_garbage
from juststorage.application.part_leases import LEASE_PREFIX
from juststorage.application.sessions import SessionRequest
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services, build
from juststorage.config import Settings
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT = StorageClass.HOT
CLI = Path(sys.executable).parent / "juststorage"


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    # Every blob a file: what this module tests (test_inline_blobs.py: inline ones).
    built = build(Settings(data_dir=tmp_path, inline_max_bytes=0))
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


async def upload(services: Services, key: str, data: bytes) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        yield data

    return await services.uploader.upload(UploadRequest(ACME, FILES, ObjectKey(key)), body())


def path_of(root: Path, data: bytes) -> Path:
    return blob_path(root / "hot", ContentHash(hashlib.sha256(data).hexdigest()))


async def test_gc_removes_the_file_of_a_deleted_object_and_keeps_shared_ones(
    services: Services, tmp_path: Path
) -> None:
    gone = await upload(services, "gone", b"deleted bytes")
    shared = await upload(services, "shared-1", b"shared bytes")
    await upload(services, "shared-2", b"shared bytes")
    await delete_object(services.metadata, ACME, gone.version.id)
    await delete_object(services.metadata, ACME, shared.version.id)
    gc = GcPolicy(grace_seconds=3600)

    report = await collect_garbage(
        services.metadata, services.blobs, services.clock, gc, services.liveness
    )
    assert report.ran and report.blobs_removed == 0 and report.deletes_finished == 2
    assert path_of(tmp_path, b"deleted bytes").exists()

    report = await collect_garbage(
        services.metadata,
        services.blobs,
        services.clock,
        GcPolicy(grace_seconds=0),
        services.liveness,
    )
    assert report.removed_hashes == [gone.version.content_hash.hex]
    assert not path_of(tmp_path, b"deleted bytes").exists()
    assert path_of(tmp_path, b"shared bytes").read_bytes() == b"shared bytes"
    assert list((tmp_path / "hot" / "tmp").iterdir()) == []
    assert (await check_store(services.metadata, services.blobs)).problems == []


async def test_fsck_reports_corrupted_bytes_with_the_object_id(
    services: Services, tmp_path: Path
) -> None:
    result = await upload(services, "k", b"precious bytes")
    with open(path_of(tmp_path, b"precious bytes"), "r+b") as handle:
        handle.write(b"P")
    report = await check_store(services.metadata, services.blobs, repair=True)
    (problem,) = report.problems
    assert problem.kind is ProblemKind.HASH_MISMATCH and not problem.repaired
    assert problem.object_ids == (result.version.id,)
    assert report.damaged


# --- the commands ---------------------------------------------------------------------


def run(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("JUSTSTORAGE_") and k not in ("DATABASE_URL", "API_KEYS")
    }
    env["JUSTSTORAGE_DATA_DIR"] = str(tmp_path)
    env["JUSTSTORAGE_INLINE_MAX_BYTES"] = "0"
    env.update(extra)
    done = subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def object_ids(tmp_path: Path) -> dict[str, UUID]:
    with sqlite3.connect(tmp_path / "meta.db") as conn:
        rows = conn.execute("SELECT key, id FROM objects WHERE state = 'COMMITTED'").fetchall()
    conn.close()
    return {key: UUID(i) for key, i in rows}


def sql(tmp_path: Path, statement: str) -> None:
    conn = sqlite3.connect(tmp_path / "meta.db")
    with conn:
        conn.execute(statement)
    conn.close()


async def test_gc_and_fsck_commands_on_a_clean_store(services: Services, tmp_path: Path) -> None:
    await upload(services, "k", b"clean")
    gone = await upload(services, "gone", b"gone")
    await delete_object(services.metadata, ACME, gone.version.id)
    await services.metadata.close()

    done = run(tmp_path, "fsck")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 blobs" in done.stdout and "0 problems" in done.stdout

    done = run(tmp_path, "gc")
    assert done.returncode == 0, done.stderr
    assert "1 deletes finished" in done.stdout  # grace 3600 by default: the blob stays
    assert path_of(tmp_path, b"gone").exists()

    done = run(tmp_path, "gc", JUSTSTORAGE_GC_GRACE_S="0")
    assert done.returncode == 0, done.stderr
    assert f"removed blob sha256:{gone.version.content_hash.hex}" in done.stdout
    assert not path_of(tmp_path, b"gone").exists()
    assert run(tmp_path, "fsck").returncode == 0


async def test_fsck_command_reports_damage_and_repair_fixes_what_it_can(
    services: Services, tmp_path: Path
) -> None:
    lost = await upload(services, "lost", b"lost bytes")
    await upload(services, "drifted", b"drifted bytes")
    await services.metadata.close()
    drifted_hash = hashlib.sha256(b"drifted bytes").hexdigest()
    path_of(tmp_path, b"lost bytes").unlink()
    sql(tmp_path, f"UPDATE blobs SET ref_count = 7 WHERE content_hash = '{drifted_hash}'")
    orphan = path_of(tmp_path, b"orphan bytes")
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"orphan bytes")
    orphan_hash = hashlib.sha256(b"orphan bytes").hexdigest()

    done = run(tmp_path, "fsck")
    assert done.returncode == 1
    lines = [line for line in done.stdout.splitlines() if not line.startswith("fsck:")]
    assert len(lines) == 3, done.stdout
    (missing,) = [line for line in lines if line.startswith("missing-blob")]
    assert lost.version.content_hash.hex in missing and str(lost.version.id) in missing
    (drift,) = [line for line in lines if line.startswith("refcount-drift")]
    assert drifted_hash in drift
    (orphan_line,) = [line for line in lines if line.startswith("orphan-file")]
    assert orphan_hash in orphan_line
    assert "damage found" in done.stderr

    done = run(tmp_path, "fsck", "--repair")
    assert done.returncode == 1  # the missing blob cannot be repaired
    assert done.stdout.count("[repaired]") == 2
    assert not orphan.exists()
    assert set(object_ids(tmp_path)) == {"lost", "drifted"}

    path_of(tmp_path, b"lost bytes").write_bytes(b"lost bytes")  # restored from a backup
    done = run(tmp_path, "fsck")
    assert done.returncode == 0, done.stdout
    assert "0 problems" in done.stdout


async def test_a_part_lease_keeps_gc_off_its_owners_bytes_until_it_lapses(
    services: Services, tmp_path: Path
) -> None:
    """Bytes no part row names, written by a process on another machine (its owner
    cannot be checked here) and untouched for an hour: kept while that owner holds a
    valid lease on a part of the session, removed once the lease expired; GC then
    deletes the stale lease too."""
    session = await services.sessions.create(SessionRequest(ACME, FILES, ObjectKey("m")))
    remote = "other-boot/pid:[1]:12:34"
    folder = tmp_path / "hot" / "parts" / str(session.id)
    folder.mkdir(parents=True)
    stray = folder / part_name(1, remote)
    stray.write_bytes(b"half a part")
    os.utime(stray, (0, 0))
    lease = f"{LEASE_PREFIX}{session.id}:attempt"

    async def hold_until(seconds: float) -> None:
        async with services.metadata.transaction() as uow:
            until = services.clock.now() + timedelta(seconds=seconds)
            await uow.leases.claim(lease, remote, until, replacing=remote)
            await uow.commit()

    async def gc() -> int:
        report = await collect_garbage(
            services.metadata,
            services.blobs,
            services.clock,
            GcPolicy(grace_seconds=0),
            services.liveness,
            services.part_stores,
        )
        return report.part_files_removed

    await hold_until(300)
    fsck = await check_store(
        services.metadata, services.blobs, parts=services.part_stores, liveness=services.liveness
    )
    assert [p for p in fsck.problems if p.kind is ProblemKind.LEAKED_PART] == []
    assert await gc() == 0 and stray.exists()
    await hold_until(-1)  # its renewals stopped: the writer is gone
    assert await gc() == 1 and not stray.exists()
    async with services.metadata.snapshot() as view:
        assert await view.leases.named(LEASE_PREFIX) == []
