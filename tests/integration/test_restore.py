"""Restore (SPEC §8.9): a backup written into an empty deployment, on SQLite and
PostgreSQL and across them, with real blob roots and a real backup directory."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from juststorage.application.apikeys import create_api_key, revoke_api_key
from juststorage.application.backup import DatabaseHold, create_backup
from juststorage.application.backup_format import (
    BackupCorrupt,
    Manifest,
    blob_key,
    manifest_hash_key,
    manifest_key,
)
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.deletes import delete_object
from juststorage.application.fsck import check_store
from juststorage.application.gc import GcPolicy, collect_garbage
from juststorage.application.records import BlobLocation
from juststorage.application.restore import NotEmpty, RestoreFailed, restore_backup
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import (
    Services,
    SystemClock,
    build,
    build_backup_target,
    build_blob_store,
    build_metadata_dumper,
    build_metadata_loader,
)
from juststorage.config import Settings
from juststorage.domain.errors import NotFound
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

FILES = Namespace("files")
LIMIT = 1000  # the inline threshold of the source store
PG = pytest.mark.postgres


def _url(request: pytest.FixtureRequest, tmp_path: Path, kind: str, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.db"
    url: str = request.getfixturevalue("postgres_url")
    if name == "dest":
        # A second fresh database of the same server for the destination.
        from support.pg_databases import fresh_database

        server = request.getfixturevalue("postgres_server_url")
        context = fresh_database(server)
        url = context.__enter__()
        request.addfinalizer(lambda: context.__exit__(None, None, None))
    return url


@pytest.fixture(
    params=[
        ("sqlite", "sqlite"),
        pytest.param(("postgres", "postgres"), marks=PG),
        pytest.param(("sqlite", "postgres"), marks=PG),
        pytest.param(("postgres", "sqlite"), marks=PG),
    ],
    ids=lambda p: f"{p[0]}-to-{p[1]}",
)
def backends(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    source, dest = request.param
    return _url(request, tmp_path, source, "source"), _url(request, tmp_path, dest, "dest")


async def _services(data_dir: Path, url: str, inline: int) -> Services:
    built = build(Settings(data_dir=data_dir, database_url=url, inline_max_bytes=inline))
    return built


@pytest.fixture
async def source(tmp_path: Path, backends: tuple[str, str]) -> AsyncIterator[Services]:
    built = await _services(tmp_path / "source", backends[0], LIMIT)
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


@pytest.fixture
def dest_settings(tmp_path: Path, backends: tuple[str, str]) -> Settings:
    # Another inline threshold: blobs move between inline rows and files.
    return Settings(data_dir=tmp_path / "dest", database_url=backends[1], inline_max_bytes=300)


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[BackupTarget]:
    made = build_backup_target(Settings(data_dir=tmp_path), str(tmp_path / "backups"))
    try:
        yield made
    finally:
        await made.close()


async def upload(
    services: Services, tenant: str, key: str, data: bytes, storage_class: str = "hot"
) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(
        TenantId(tenant), FILES, ObjectKey(key), storage_class=StorageClass(storage_class)
    )
    return await services.uploader.upload(request, body())


async def fill(services: Services) -> dict[str, bytes]:
    """A mixed store: inline and file blobs, both classes, versions, a delete, two
    tenants, keys (one revoked). Returns the bytes of every content hash."""
    small, medium, large = b"small" * 10, b"m" * 500, os.urandom(5000)
    await upload(services, "acme", "a", small)
    await upload(services, "acme", "a", medium)  # a second version
    await upload(services, "acme", "cold", small, "cold")  # same hash, other class
    await upload(services, "acme", "big", large)
    await upload(services, "beta", "big", large)  # dedup
    gone = await upload(services, "beta", "gone", b"deleted")
    await delete_object(services.metadata, TenantId("beta"), gone.version.id)
    await create_api_key(services.metadata, services.clock, ["acme"], ["admin"])
    revoked = await create_api_key(services.metadata, services.clock, ["beta"], ["objects:read"])
    await revoke_api_key(services.metadata, revoked.record.id)
    return {hashlib.sha256(b).hexdigest(): b for b in (small, medium, large)}


async def backup(services: Services, target: BackupTarget) -> Manifest:
    manifest, _ = await create_backup(
        target=target,
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=services.blobs,
        clock=services.clock,
        parallel=2,
    )
    return manifest


async def restore(settings: Settings, target: BackupTarget, **extra: Any) -> Any:
    services = build(settings)
    try:
        return await restore_backup(
            target=target,
            loader=extra.pop("loader", None) or build_metadata_loader(settings),
            metadata=services.metadata,
            blobs=build_blob_store(settings),
            inline_max_bytes=settings.inline_max_bytes,
            owner=services.liveness.identity(),
            **{"parallel": 3, **extra},
        )
    finally:
        await services.metadata.close()


async def dump(settings: Settings) -> dict[str, list[Any]]:
    """Every committed object row, blob row (without its address) and key row."""
    dumper = build_metadata_dumper(settings, SystemClock())
    async with dumper.snapshot() as snap:
        objects = [r async for page in snap.objects() for r in page]
        blobs = [b.row async for page in snap.blobs() for b in page]
        keys = [r async for page in snap.api_keys() for r in page]
    return {"objects": objects, "blobs": blobs, "api_keys": keys}


async def test_a_restore_writes_every_row_and_blob_exactly(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    contents = await fill(source)
    manifest = await backup(source, target)

    report = await restore(dest_settings, target)

    assert (report.id, report.objects, report.api_keys) == (manifest.id, 5, 2)
    assert report.inline_blobs == 2 and report.stored_blobs == 2  # small ×2 / medium, large
    assert await dump(dest_settings) == await dump(source.settings)
    dest = build(dest_settings)
    try:
        # Every blob reads back bit-exact from where this deployment put it.
        async with dest.metadata.snapshot() as view:
            usage = {t: await view.objects.usage(TenantId(t)) for t in ("acme", "beta")}
        for tenant, tenant_usage in manifest.usage.items():
            got = {u.storage_class.value: (u.objects, u.size_bytes) for u in usage[tenant]}
            want = {
                c: (tenant_usage.objects[c], tenant_usage.size_bytes[c])
                for c in tenant_usage.objects
            }
            assert got == want
        dumper = build_metadata_dumper(dest_settings, dest.clock)
        async with dumper.snapshot() as snap:
            placed = [b async for page in snap.blobs() for b in page]
        for blob in placed:
            location = BlobLocation(blob.storage_class, blob.content_hash, blob.address)
            reader = await dest.blobs.open(location)
            data = b"".join([c async for c in reader.chunks(0, blob.size_bytes)])
            await reader.close()
            assert data == contents[blob.content_hash.hex]
            assert blob.address.startswith("inline:") == (blob.size_bytes <= 300)
        report_fsck = await check_store(dest.metadata, dest.blobs)
        assert report_fsck.problems == []
        # A new upload's commit sequence follows the restored ones.
        newest = max(int(r["commit_seq"]) for r in (await dump(dest_settings))["objects"])
        added = await upload(dest, "acme", "after", b"after the restore")
        assert (added.version.commit_seq or 0) > newest
    finally:
        await dest.metadata.close()


async def _fingerprint(settings: Settings, tmp_path: Path) -> dict[str, Any]:
    files = {
        str(p): p.read_bytes()
        for p in sorted((tmp_path / "dest").rglob("*"))
        if p.is_file() and not p.name.endswith(("-wal", "-shm", ".migrate-lock"))
    }
    return {"rows": await dump(settings), "files": files}


async def test_a_restore_refuses_a_store_that_is_not_empty(
    source: Services, dest_settings: Settings, target: BackupTarget, tmp_path: Path
) -> None:
    await fill(source)
    await backup(source, target)
    dest = build(dest_settings)
    await dest.metadata.migrate()
    await dest.blobs.prepare()
    try:
        await upload(dest, "other", "k", b"x" * 400)  # a file blob
        await create_api_key(dest.metadata, dest.clock, ["other"], ["admin"])
    finally:
        await dest.metadata.close()
    before = await _fingerprint(dest_settings, tmp_path)

    with pytest.raises(NotEmpty, match="objects, api_keys, blobs"):
        await restore(dest_settings, target)

    assert await _fingerprint(dest_settings, tmp_path) == before


async def test_a_tampered_manifest_or_metadata_refuses_before_writing(
    source: Services, dest_settings: Settings, target: BackupTarget, tmp_path: Path
) -> None:
    await fill(source)
    manifest = await backup(source, target)
    raw = await target.get_bytes(manifest_key(manifest.id))
    await target.put_bytes(manifest_key(manifest.id), raw.replace(b'"objects": 5', b'"objects": 6'))
    with pytest.raises(BackupCorrupt, match="manifest.sha256"):
        await restore(dest_settings, target, backup_id=manifest.id)
    await target.put_bytes(manifest_key(manifest.id), raw)
    metadata = await target.get_bytes(manifest.metadata.path)
    await target.put_bytes(manifest.metadata.path, metadata[:-8] + bytes(8))
    with pytest.raises(BackupCorrupt, match="does not match the manifest|malformed"):
        await restore(dest_settings, target)
    # Nothing written: no blob root, and a database without rows.
    assert not (tmp_path / "dest" / "hot").exists()
    assert await build_metadata_loader(dest_settings).occupied() == []


async def test_a_corrupt_blob_fails_the_restore_and_a_rerun_completes_it(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    contents = await fill(source)
    await backup(source, target)
    large = next(h for h, b in contents.items() if len(b) == 5000)
    good = await target.get_bytes(blob_key(large))
    await target.put_bytes(blob_key(large), good[:-1] + bytes([good[-1] ^ 1]))

    with pytest.raises(RestoreFailed, match=f"sha256:{large}.*corrupt"):
        await restore(dest_settings, target)
    assert await build_metadata_loader(dest_settings).occupied() == []
    dest = build(dest_settings)
    try:
        with pytest.raises(NotFound):  # the corrupt bytes were never published
            await dest.blobs.open(BlobLocation(StorageClass.HOT, ContentHash.trusted(large)))
    finally:
        await dest.metadata.close()

    await target.put_bytes(blob_key(large), good)
    report = await restore(dest_settings, target)
    assert report.objects == 5
    assert await dump(dest_settings) == await dump(source.settings)


def _blob_files(settings: Settings) -> set[str]:
    root = Path(settings.root_url("hot"))
    return {p.name for p in root.rglob("*") if p.is_file() and len(p.name) == 64}


async def test_a_failed_restore_commits_nothing_and_gc_removes_what_it_stored(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    contents = await fill(source)
    await backup(source, target)
    # Blobs are copied in hash order: with one at a time, the file blob of the
    # smaller hash is stored before the other one is found missing.
    first, missing = sorted(h for h, b in contents.items() if len(b) > 300)
    kept = await target.get_bytes(blob_key(missing))
    await target.delete(blob_key(missing))

    with pytest.raises(RestoreFailed, match=f"sha256:{missing} is missing"):
        await restore(dest_settings, target, parallel=1)
    assert await build_metadata_loader(dest_settings).occupied() == []
    assert _blob_files(dest_settings) == {first}

    # A re-run finds the stored file at its content path and does not write it again.
    await target.put_bytes(blob_key(missing), kept)
    report = await restore(dest_settings, target, parallel=1)
    assert (report.stored_blobs, report.present_blobs) == (1, 1)
    assert _blob_files(dest_settings) == {first, missing}
    assert await dump(dest_settings) == await dump(source.settings)


async def test_gc_removes_what_a_failed_restore_left_once_past_the_grace(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    contents = await fill(source)
    await backup(source, target)
    first, missing = sorted(h for h, b in contents.items() if len(b) > 300)
    await target.delete(blob_key(missing))
    with pytest.raises(RestoreFailed):
        await restore(dest_settings, target, parallel=1)
    dest = build(dest_settings)
    try:
        async with dest.metadata.snapshot() as view:
            assert await view.holds.all() == []  # released when the restore failed
        kept = await collect_garbage(
            dest.metadata, dest.blobs, dest.clock, GcPolicy(3600), dest.liveness
        )
        assert kept.orphan_blobs_removed == 0 and _blob_files(dest_settings) == {first}
        swept = await collect_garbage(
            dest.metadata, dest.blobs, dest.clock, GcPolicy(0), dest.liveness
        )
        assert swept.orphan_blobs_removed == 1 and _blob_files(dest_settings) == set()
    finally:
        await dest.metadata.close()


class _GcMidway:
    """A target that runs a GC pass (grace 0) on the deployment before it hands out
    the bytes of blob `at`: as if GC ran while the restore copies."""

    def __init__(self, target: BackupTarget, dest: Services, at: str) -> None:
        self._target = target
        self._dest = dest
        self._at = blob_key(at)
        self.reports: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    async def _stream(self, key: str) -> AsyncIterator[bytes]:
        if key == self._at:
            d = self._dest
            self.reports.append(
                await collect_garbage(d.metadata, d.blobs, d.clock, GcPolicy(0), d.liveness)
            )
        async for chunk in self._target.get_stream(key):
            yield chunk

    def get_stream(self, key: str) -> AsyncIterator[bytes]:
        return self._stream(key)


async def test_the_hold_keeps_gc_from_the_blobs_a_restore_stored(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    contents = await fill(source)
    await backup(source, target)
    first, last = sorted(h for h, b in contents.items() if len(b) > 300)
    dest = build(dest_settings)
    midway = _GcMidway(target, dest, last)
    try:
        hold = DatabaseHold(dest.metadata, dest.clock, dest.liveness.identity())
        report = await restore(dest_settings, midway, parallel=1, hold=hold)  # type: ignore[arg-type]
        [gc_report] = midway.reports
        assert gc_report.held_by_backup and gc_report.orphan_blobs_removed == 0
        assert report.objects == 5 and _blob_files(dest_settings) == {first, last}
        assert (await check_store(dest.metadata, dest.blobs)).problems == []
        async with dest.metadata.snapshot() as view:
            assert await view.holds.all() == []
    finally:
        await dest.metadata.close()


class _NoRows:
    """Rows for a loader that must refuse before it reads any."""

    async def objects(self) -> AsyncIterator[list[Any]]:
        raise AssertionError("read rows of a database that is not empty")
        yield []

    async def blobs(self) -> AsyncIterator[list[Any]]:
        raise AssertionError("read rows of a database that is not empty")
        yield []

    async def api_keys(self) -> AsyncIterator[list[Any]]:
        raise AssertionError("read rows of a database that is not empty")
        yield []


async def test_the_load_checks_emptiness_again_inside_its_transaction(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    """A row written after the first check (another restore, a server started
    meanwhile) is found under the transaction's lock, before any row is written."""
    await fill(source)
    await backup(source, target)
    await restore(dest_settings, target)
    before = await dump(dest_settings)
    with pytest.raises(NotEmpty, match="objects, api_keys, blobs, inline_blobs"):
        await build_metadata_loader(dest_settings).load(_NoRows())
    assert await dump(dest_settings) == before


class _GcDuringLoad:
    """A loader that, before its transaction, outlives the hold's TTL and runs a GC
    pass (grace 0) on the deployment: as if a long load ran while GC did."""

    def __init__(self, inner: Any, dest: Services, wait_s: float) -> None:
        self._inner = inner
        self._dest = dest
        self._wait_s = wait_s
        self.reports: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def load(self, rows: Any) -> None:
        await anyio.sleep(self._wait_s)
        d = self._dest
        self.reports.append(
            await collect_garbage(d.metadata, d.blobs, d.clock, GcPolicy(0), d.liveness)
        )
        await self._inner.load(rows)


async def test_the_hold_is_renewed_until_the_load_has_committed(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    contents = await fill(source)
    await backup(source, target)
    stored = {h for h, b in contents.items() if len(b) > 300}
    dest = build(dest_settings)
    try:
        hold = DatabaseHold(dest.metadata, dest.clock, dest.liveness.identity(), ttl_s=0.6)
        slow = _GcDuringLoad(build_metadata_loader(dest_settings), dest, wait_s=1.5)
        report = await restore(dest_settings, target, loader=slow, hold=hold, renew_s=0.1)
        [gc_report] = slow.reports
        assert gc_report.held_by_backup and gc_report.orphan_blobs_removed == 0
        assert report.objects == 5 and _blob_files(dest_settings) == stored
        assert (await check_store(dest.metadata, dest.blobs)).problems == []
        async with dest.metadata.snapshot() as view:
            assert await view.holds.all() == []
    finally:
        await dest.metadata.close()


async def _tamper_manifest(target: BackupTarget, manifest: Manifest) -> None:
    raw = await target.get_bytes(manifest_key(manifest.id))
    await target.put_bytes(manifest_key(manifest.id), raw + b" ")


async def test_a_damaged_newest_manifest_refuses_rather_than_restoring_an_older_one(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    await fill(source)
    older = await backup(source, target)
    await upload(source, "acme", "later", b"after the first backup")
    await anyio.sleep(1.1)  # ids sort by their second
    newest = await backup(source, target)
    assert newest.id > older.id
    await _tamper_manifest(target, newest)

    with pytest.raises(BackupCorrupt, match=f"newest backup {newest.id}.*manifest.sha256"):
        await restore(dest_settings, target)
    with pytest.raises(BackupCorrupt, match="manifest.sha256"):
        await restore(dest_settings, target, backup_id=newest.id)
    assert await build_metadata_loader(dest_settings).occupied() == []
    # The older one, asked for by id, restores.
    report = await restore(dest_settings, target, backup_id=older.id)
    assert report.id == older.id and report.objects == 5


async def test_a_single_damaged_backup_is_a_hash_error_not_not_found(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    await fill(source)
    only = await backup(source, target)
    await _tamper_manifest(target, only)
    with pytest.raises(BackupCorrupt, match="manifest.sha256"):
        await restore(dest_settings, target)
    with pytest.raises(BackupCorrupt, match="manifest.sha256"):
        await restore(dest_settings, target, backup_id=only.id)


async def test_a_newest_backup_that_never_finished_is_passed_over(
    source: Services, dest_settings: Settings, target: BackupTarget
) -> None:
    await fill(source)
    older = await backup(source, target)
    await upload(source, "acme", "later", b"after the first backup")
    await anyio.sleep(1.1)  # ids sort by their second
    newest = await backup(source, target)
    # Killed before its last step: manifest.json written, manifest.sha256 not.
    await target.delete(manifest_hash_key(newest.id))
    report = await restore(dest_settings, target)
    assert report.id == older.id


@pytest.mark.s3
async def test_a_restore_into_s3_roots_counts_the_blobs_it_wrote(
    source: Services, dest_settings: Settings, target: BackupTarget, request: pytest.FixtureRequest
) -> None:
    weed = request.getfixturevalue("seaweedfs")
    env = weed.env()
    settings = dest_settings.model_copy(
        update={
            "hot_root": weed.root(),
            "cold_root": weed.root(),
            "inline_max_bytes": 0,
            "aws_endpoint_url": weed.endpoint_url,
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "aws_region": env["AWS_REGION"],
            "aws_allow_http": True,
        }
    )
    await fill(source)
    await backup(source, target)
    report = await restore(settings, target)
    # Every blob row is written into the empty roots: none was there already.
    assert (report.stored_blobs, report.present_blobs) == (report.blobs, 0)
    assert report.blobs > 0
    dest = build(settings)
    try:
        assert (await check_store(dest.metadata, dest.blobs)).problems == []
    finally:
        await dest.metadata.close()
