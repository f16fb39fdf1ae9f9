"""`fsck --repair --from-backup TARGET` (SPEC §8.9): missing and corrupt blobs
(files, S3 objects, inline rows) put back from a backup's copy, on SQLite and
PostgreSQL, with a real backup directory; what the backup does not hold stays
reported, and the CLI's exit status says whether damage remains."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from juststorage.application.backup import create_backup
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.fsck import ProblemKind, check_store
from juststorage.application.fsck_refill import Refill
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import UploadRequest
from juststorage.bootstrap import Services, build, build_backup_target, build_metadata_dumper
from juststorage.config import Settings
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId
from juststorage.testing import clean_env, run_cli
from support.seaweedfs import SeaweedFs

pytestmark = pytest.mark.anyio

LIMIT = 1000


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("s3", marks=pytest.mark.s3),
    ]
)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    extra: dict[str, object] = {}
    if request.param == "postgres":
        extra["database_url"] = request.getfixturevalue("postgres_url")
    if request.param == "s3":
        weed: SeaweedFs = request.getfixturevalue("seaweedfs")
        env = weed.env()
        extra.update(
            hot_root=weed.root(),
            aws_endpoint_url=weed.endpoint_url,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_region=env["AWS_REGION"],
            aws_allow_http=True,
        )
    return Settings(data_dir=tmp_path / "data", inline_max_bytes=LIMIT, **extra)  # type: ignore[arg-type]


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    built = build(settings)
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


async def upload(services: Services, key: str, data: bytes) -> BlobLocation:
    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(TenantId("acme"), Namespace("files"), ObjectKey(key))
    await services.uploader.upload(request, body())
    digest = ContentHash(hashlib.sha256(data).hexdigest())
    dumper = build_metadata_dumper(services.settings, services.clock)
    async with dumper.snapshot() as snap:
        for page in [p async for p in snap.blobs()]:
            for blob in page:
                if blob.content_hash == digest:
                    return BlobLocation(blob.storage_class, digest, blob.address)
    raise AssertionError("no blob row")


def flipped(data: bytes) -> bytes:
    """`data` with its last byte changed (never equal to it)."""
    return data[:-1] + bytes([data[-1] ^ 1])


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read(services: Services, location: BlobLocation, size: int) -> bytes:
    reader = await services.blobs.open(location)
    try:
        return b"".join([c async for c in reader.chunks(0, size)])
    finally:
        await reader.close()


async def test_missing_and_corrupt_blobs_come_back_from_a_backup(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    small, medium, large = b"s" * 100, os.urandom(3000), os.urandom(300_000)
    after = os.urandom(2000)
    inline = await upload(services, "small", small)
    corrupt = await upload(services, "medium", medium)
    missing = await upload(services, "large", large)
    target: BackupTarget = build_backup_target(settings, str(tmp_path / "backups"))
    await create_backup(
        target=target,
        dumper=build_metadata_dumper(settings, services.clock),
        blobs=services.blobs,
        clock=services.clock,
    )
    unsaved = await upload(services, "after", after)  # not in the backup

    # Damage: an inline row's bytes, a blob's bytes (a file overwritten in place, or
    # an S3 object replaced), two blobs gone.
    async with services.metadata.transaction() as uow:
        assert await uow.blobs.move_inline(inline, b"S" * 100)
        await uow.commit()
    if corrupt.address == corrupt.content_hash.hex:
        path = settings.data_dir / "hot" / "sha256" / corrupt.content_hash.hex[:2]
        path = path / corrupt.content_hash.hex[2:4] / corrupt.content_hash.hex
        path.write_bytes(flipped(medium))
    else:
        await services.blobs.rewrite(corrupt, chunks(flipped(medium)))
    assert await services.blobs.remove(StorageClass.HOT, missing.address)
    assert await services.blobs.remove(StorageClass.HOT, unsaved.address)
    found = await check_store(services.metadata, services.blobs)
    assert {(p.kind, p.content_hash) for p in found.problems} == {
        (ProblemKind.HASH_MISMATCH, inline.content_hash),
        (ProblemKind.HASH_MISMATCH, corrupt.content_hash),
        (ProblemKind.MISSING_BLOB, missing.content_hash),
        (ProblemKind.MISSING_BLOB, unsaved.content_hash),
    }

    refill = Refill(target)
    repaired = await check_store(services.metadata, services.blobs, repair=True, refill=refill)
    state = {p.content_hash: (p.kind, p.repaired) for p in repaired.problems}
    assert state == {
        inline.content_hash: (ProblemKind.HASH_MISMATCH, True),
        corrupt.content_hash: (ProblemKind.HASH_MISMATCH, True),
        missing.content_hash: (ProblemKind.MISSING_BLOB, True),
        unsaved.content_hash: (ProblemKind.MISSING_BLOB, False),
    }
    [left] = [p for p in repaired.problems if not p.repaired]
    assert "the backup holds no copy" in left.describe()
    assert (refill.repaired, refill.repaired_bytes) == (3, 100 + 3000 + 300_000)
    assert await read(services, inline, 100) == small
    assert await read(services, corrupt, 3000) == medium
    assert await read(services, missing, 300_000) == large
    again = await check_store(services.metadata, services.blobs)
    assert [(p.kind, p.content_hash) for p in again.problems] == [
        (ProblemKind.MISSING_BLOB, unsaved.content_hash)
    ]
    await target.close()


async def test_a_damaged_copy_in_the_backup_leaves_the_blob_as_it_was(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    data = os.urandom(5000)
    location = await upload(services, "k", data)
    target = build_backup_target(settings, str(tmp_path / "backups"))
    await create_backup(
        target=target,
        dumper=build_metadata_dumper(settings, services.clock),
        blobs=services.blobs,
        clock=services.clock,
    )
    key = f"blobs/{location.content_hash.hex[:2]}/{location.content_hash.hex}"
    await target.put_bytes(key, flipped(data))
    await services.blobs.rewrite(location, chunks(b"local damage" + data[12:]))
    report = await check_store(
        services.metadata, services.blobs, repair=True, refill=Refill(target)
    )
    [problem] = report.problems
    assert not problem.repaired and "damaged too" in problem.describe()
    assert await read(services, location, 5000) == b"local damage" + data[12:]
    await target.close()


def test_the_cli_exits_1_while_damage_remains_and_0_once_repaired(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "data", {"JUSTSTORAGE_INLINE_MAX_BYTES": "100"})
    assert run_cli(["migrate"], env).returncode == 0

    async def fill() -> str:
        services = build(Settings(data_dir=tmp_path / "data", inline_max_bytes=100))
        try:
            await services.blobs.prepare()
            location = await upload(services, "k", b"x" * 500)
        finally:
            await services.metadata.close()
        return location.content_hash.hex

    digest = asyncio.run(fill())
    assert run_cli(["backup", str(tmp_path / "b")], env).returncode == 0
    path = tmp_path / "data" / "hot" / "sha256" / digest[:2] / digest[2:4] / digest
    path.unlink()
    bare = run_cli(["fsck", "--from-backup", str(tmp_path / "b")], env)
    assert bare.returncode == 2 and "--from-backup needs --repair" in bare.stderr
    damaged = run_cli(["fsck"], env)
    assert damaged.returncode == 1 and "missing-blob" in damaged.stdout
    fixed = run_cli(["fsck", "--repair", "--from-backup", str(tmp_path / "b")], env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "put back from the backup [repaired]" in fixed.stdout
    assert path.read_bytes() == b"x" * 500
    assert run_cli(["fsck"], env).returncode == 0


async def test_an_inline_row_holding_text_is_damage_a_backup_repairs(tmp_path: Path) -> None:
    """SQLite only: its columns take any type, so a damaged row can hold TEXT where
    bytes belong (PostgreSQL's bytea cannot)."""
    settings = Settings(data_dir=tmp_path / "data", inline_max_bytes=LIMIT)
    services = build(settings)
    await services.metadata.migrate()
    await services.blobs.prepare()
    try:
        small = b"t" * 100
        inline = await upload(services, "small", small)
        target: BackupTarget = build_backup_target(settings, str(tmp_path / "backups"))
        await create_backup(
            target=target,
            dumper=build_metadata_dumper(settings, services.clock),
            blobs=services.blobs,
            clock=services.clock,
        )
        with sqlite3.connect(settings.data_dir / "meta.db") as conn:
            conn.execute("UPDATE inline_blobs SET data = x'00' || substr(data, 2)")
            [(kind,)] = conn.execute("SELECT typeof(data) FROM inline_blobs").fetchall()
            assert kind == "text"
        conn.close()
        found = await check_store(services.metadata, services.blobs)
        assert [(p.kind, p.content_hash) for p in found.problems] == [
            (ProblemKind.HASH_MISMATCH, inline.content_hash)
        ]
        repaired = await check_store(
            services.metadata, services.blobs, repair=True, refill=Refill(target)
        )
        assert [p.repaired for p in repaired.problems] == [True]
        assert await read(services, inline, 100) == small
        assert (await check_store(services.metadata, services.blobs)).problems == []
        await target.close()
    finally:
        await services.metadata.close()
