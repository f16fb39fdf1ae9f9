"""GC and backups (docs/durability.md): a backup's hold keeps GC from removing the
blobs its snapshot names, on a real SQLite file and a real PostgreSQL."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from juststorage.application.backup import DatabaseHold, create_backup
from juststorage.application.backup_format import blob_key
from juststorage.application.blob_ports import BlobReader
from juststorage.application.deletes import delete_object
from juststorage.application.gc import GcPolicy, GcReport, collect_garbage
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services, build, build_backup_target, build_metadata_dumper
from juststorage.config import Settings
from juststorage.domain.errors import Unavailable
from juststorage.domain.model import Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME = TenantId("acme")


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = build(
        Settings(data_dir=tmp_path / "data", database_url=database_url, inline_max_bytes=100)
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


async def upload(services: Services, key: str, data: bytes) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(ACME, Namespace("f"), ObjectKey(key), storage_class=StorageClass.HOT)
    return await services.uploader.upload(request, body())


async def gc(services: Services) -> GcReport:
    return await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
    )


def blob_files(tmp_path: Path) -> set[str]:
    return {p.name for p in (tmp_path / "data" / "hot").rglob("*") if p.is_file()}


async def test_a_hold_keeps_released_blobs_and_orphans_until_it_is_released(
    services: Services, tmp_path: Path
) -> None:
    data = b"released while a backup runs" * 10
    digest = hashlib.sha256(data).hexdigest()
    result = await upload(services, "k", data)
    hold = DatabaseHold(services.metadata, services.clock, services.liveness.identity())
    await hold.take()
    await delete_object(services.metadata, ACME, result.version.id)
    orphan = tmp_path / "data" / "hot" / "sha256" / "ab" / "cd" / ("abcd" + "0" * 60)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"no row knows me")
    os.utime(orphan, (0, 0))

    held = await gc(services)
    assert held.held_by_backup and held.blob_files_removed == 0
    assert {digest, orphan.name} <= blob_files(tmp_path)

    await hold.renew()
    assert (await gc(services)).blob_files_removed == 0
    await hold.release()
    free = await gc(services)
    assert not free.held_by_backup and free.blobs_removed == 1 and free.orphan_blobs_removed == 1
    assert blob_files(tmp_path) == set()


async def test_the_hold_of_a_dead_backup_holds_nothing(services: Services) -> None:
    data = b"the backup that held it was killed" * 10
    result = await upload(services, "k", data)
    dead = f"{services.liveness.identity().rsplit(':', 2)[0]}:{2**22 + 7}:0"
    await DatabaseHold(services.metadata, services.clock, dead).take()
    await delete_object(services.metadata, ACME, result.version.id)
    report = await gc(services)
    assert not report.held_by_backup and report.blobs_removed == 1
    async with services.metadata.snapshot() as view:
        assert await view.holds.all() == []  # GC removed the dead hold's row


class _HookOnFirstOpen:
    """The services' BlobStore, but the first `open` (the backup's first blob read,
    after its snapshot) runs `hook` first."""

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


async def test_a_gc_pass_during_a_backup_leaves_the_blobs_it_copies(
    services: Services, tmp_path: Path
) -> None:
    bodies = [bytes([i]) * (5000 + i) for i in range(4)]  # files (over the inline limit)
    results = [await upload(services, f"k{i}", b) for i, b in enumerate(bodies)]
    target = build_backup_target(services.settings, str(tmp_path / "target"))
    reports: list[GcReport] = []

    async def delete_all_then_collect() -> None:
        for result in results:
            await delete_object(services.metadata, ACME, result.version.id)
        reports.append(await gc(services))

    blobs = _HookOnFirstOpen(services, delete_all_then_collect)
    manifest, _ = await create_backup(
        target=target,
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=blobs,  # type: ignore[arg-type]
        clock=services.clock,
        parallel=2,
        hold=DatabaseHold(services.metadata, services.clock, services.liveness.identity()),
    )
    [during] = reports
    assert during.held_by_backup and during.blob_files_removed == 0
    assert manifest.objects == 4 and manifest.copied_blobs == 4
    for body in bodies:
        digest = hashlib.sha256(body).hexdigest()
        assert await target.get_bytes(blob_key(digest)) == body
    # The backup is over: its hold is gone, and the next pass removes the blobs.
    after = await gc(services)
    assert not after.held_by_backup and after.blobs_removed == 4
    assert blob_files(tmp_path) == set()


class _AheadClock:
    """This host's clock, `delta` ahead of the database's."""

    def __init__(self, inner: Any, delta: timedelta) -> None:
        self.inner, self.delta = inner, delta

    def now(self) -> datetime:
        return self.inner.now() + self.delta  # type: ignore[no-any-return]


async def test_a_lapsed_hold_is_taken_again_from_its_original_start(services: Services) -> None:
    hold = DatabaseHold(services.metadata, services.clock, services.liveness.identity())
    await hold.take()
    async with services.metadata.snapshot() as view:
        [(_, _, started_at, _)] = await view.holds.all()
    async with services.metadata.transaction() as uow:
        await uow.holds.release(hold.id)  # lapsed: GC removed the row
        await uow.commit()
    await hold.renew()
    async with services.metadata.snapshot() as view:
        [(hold_id, _, again, _)] = await view.holds.all()
    assert hold_id == hold.id and again == started_at
    await hold.release()

    # A backup host whose clock runs 10 minutes ahead starts its hold by the
    # database's clock (the earlier of the two), not 10 minutes late.
    ahead = _AheadClock(services.clock, timedelta(minutes=10))
    skewed = DatabaseHold(services.metadata, ahead, services.liveness.identity())  # type: ignore[arg-type]
    await skewed.take()
    assert skewed.started_at is not None
    assert skewed.started_at <= services.clock.now() + timedelta(seconds=5)
    await skewed.release()


async def test_heartbeats_that_fail_a_few_times_do_not_fail_the_backup(
    services: Services, tmp_path: Path
) -> None:
    await upload(services, "k", b"slow to copy" * 100)
    renewals: list[str] = []
    inner = DatabaseHold(services.metadata, services.clock, services.liveness.identity())

    class Flaky:
        async def take(self) -> None:
            await inner.take()

        async def renew(self) -> None:
            renewals.append("try")
            if len(renewals) <= 2:
                raise Unavailable("the database is restarting")
            await inner.renew()

        async def release(self) -> None:
            await inner.release()

    async def slow() -> None:
        while len(renewals) < 4:
            await anyio.sleep(0.01)

    manifest, _ = await create_backup(
        target=build_backup_target(services.settings, str(tmp_path / "target")),
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=_HookOnFirstOpen(services, slow),  # type: ignore[arg-type]
        clock=services.clock,
        hold=Flaky(),
        heartbeat_s=0.01,
    )
    assert manifest.copied_blobs == 1 and len(renewals) >= 4
