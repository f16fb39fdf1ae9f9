"""A backup's copies when the source is damaged or moved (docs/backup.md), on a real
SQLite file and a real PostgreSQL with real blob files, into a real directory."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from juststorage.adapters.blobs.filesystem import blob_path
from juststorage.application.backup import BackupFailed, BlobCorrupt, create_backup
from juststorage.application.backup_format import blob_key, list_backups
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.blob_ports import BlobReader
from juststorage.application.migrate_inline import migrate_inline
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import (
    Services,
    build,
    build_backup_target,
    build_blob_store,
    build_metadata_dumper,
)
from juststorage.config import Settings
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, HOT = TenantId("acme"), StorageClass.HOT


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    # Inline off: every blob is a file these tests can damage or move.
    built = build(
        Settings(data_dir=tmp_path / "data", database_url=database_url, inline_max_bytes=0)
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


@pytest.fixture
def target(services: Services, tmp_path: Path) -> BackupTarget:
    return build_backup_target(services.settings, str(tmp_path / "target"))


async def upload(services: Services, key: str, data: bytes) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(ACME, Namespace("f"), ObjectKey(key), storage_class=HOT)
    return await services.uploader.upload(request, body())


async def backup(services: Services, target: BackupTarget, blobs: Any = None) -> Any:
    return await create_backup(
        target=target,
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=blobs or services.blobs,
        clock=services.clock,
        parallel=2,
    )


def file_of(tmp_path: Path, data: bytes) -> Path:
    return blob_path(tmp_path / "data" / "hot", ContentHash(hashlib.sha256(data).hexdigest()))


async def target_keys(target: BackupTarget) -> list[str]:
    return sorted([k async for page in target.list_keys("") for k in page])


async def test_a_corrupt_source_blob_fails_the_backup_naming_it_and_its_objects(
    services: Services, target: BackupTarget, tmp_path: Path
) -> None:
    good, bad = b"good bytes" * 1000, b"bytes that rot" * 1000
    await upload(services, "good", good)
    victim = await upload(services, "bad", bad)
    again = await upload(services, "bad-again", bad)
    path = file_of(tmp_path, bad)
    damaged = bytearray(path.read_bytes())
    damaged[100] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(damaged))

    with pytest.raises(BlobCorrupt) as failed:
        await backup(services, target)
    message = failed.value.message
    bad_hash = hashlib.sha256(bad).hexdigest()
    assert bad_hash in message and "is corrupt at its source" in message
    assert str(victim.version.id) in message and str(again.version.id) in message
    assert not await target.exists(blob_key(bad_hash))  # nothing half-written there
    [info] = await list_backups(target)
    assert not info.complete and info.heartbeat is None  # no in-progress left: incomplete
    assert not any(k.startswith("tmp/") for k in await target_keys(target))


class _HookOnFirstOpen:
    def __init__(self, services: Services, hook: Callable[[], Awaitable[None]]) -> None:
        self._inner = services.blobs
        self._hook: Callable[[], Awaitable[None]] | None = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def open(self, location: BlobLocation, **kwargs: Any) -> BlobReader:
        hook, self._hook = self._hook, None
        if hook is not None:
            await hook()
        return await self._inner.open(location, **kwargs)


async def test_a_blob_moved_after_the_snapshot_is_copied_from_where_it_is_now(
    services: Services, target: BackupTarget, tmp_path: Path
) -> None:
    data = b"moved inline while the backup ran" * 10
    await upload(services, "k", data)
    old_file = file_of(tmp_path, data)

    async def move_inline() -> None:
        # migrate-blobs --inline moves it into the database; its old file is left for
        # GC, and here it is gone too (as on a store whose GC ran without the hold).
        files = build_blob_store(services.settings)
        report = await migrate_inline(services.metadata, files, HOT, 10_000)
        assert report.copied == 1, report
        old_file.unlink()

    manifest, _ = await backup(services, target, _HookOnFirstOpen(services, move_inline))
    assert manifest.copied_blobs == 1
    assert await target.get_bytes(blob_key(hashlib.sha256(data).hexdigest())) == data


async def test_a_blob_gone_from_its_source_fails_the_backup_naming_it(
    services: Services, target: BackupTarget, tmp_path: Path
) -> None:
    data = b"lost from disk" * 100
    result = await upload(services, "k", data)
    file_of(tmp_path, data).unlink()
    with pytest.raises(BackupFailed, match="is missing at its source") as failed:
        await backup(services, target)
    assert str(result.version.id) in failed.value.message


async def test_objects_whose_blob_row_is_lost_fail_the_backup(
    services: Services, target: BackupTarget
) -> None:
    await upload(services, "k", b"its row will be lost")
    async with services.metadata.transaction() as uow:
        await uow.session.execute("DELETE FROM blobs", ())  # type: ignore[attr-defined]
        await uow.commit()
    with pytest.raises(BackupFailed, match="1 committed objects name a blob"):
        await backup(services, target)
