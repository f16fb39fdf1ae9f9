"""Inline blobs (SPEC §8.1) on a real SQLite file and a real PostgreSQL, with real
blob roots: where each upload lands, dedup, GC, fsck, migrate-blobs, usage, quota."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from fakes.blobs import FakeBlobStore, FakeStagedBlob
from juststorage.adapters.blobs.filesystem import blob_path
from juststorage.adapters.blobs.inline import InlineBlobStore
from juststorage.adapters.metadata.repositories import SqlObjectRepository
from juststorage.api.app import create_app
from juststorage.application.blob_ports import BlobStore
from juststorage.application.commits import Committed, GroupCommitter, SealedUpload
from juststorage.application.deletes import delete_object
from juststorage.application.downloads import find_by_id, find_newest, open_blob
from juststorage.application.fsck import ProblemKind, check_store
from juststorage.application.gc import GcPolicy, collect_garbage
from juststorage.application.migrate_inline import migrate_inline
from juststorage.application.orphans import find_orphans, remove_orphan
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.application.usage import tenant_usage
from juststorage.bootstrap import Services, build, build_blob_store
from juststorage.config import Settings, TenantLimits, load_settings
from juststorage.domain.errors import PayloadTooLarge
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId
from juststorage.testing import run_cli
from support.seaweedfs import SeaweedFs

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT, COLD = StorageClass.HOT, StorageClass.COLD
LIMIT = 1000  # the threshold of these tests


async def _services(tmp_path: Path, database_url: str, inline_max_bytes: int) -> Services:
    built = build(
        Settings(
            data_dir=tmp_path,
            database_url=database_url,
            inline_max_bytes=inline_max_bytes,
            tenants={"quota": TenantLimits(quota_bytes=3 * LIMIT)},
        )
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    return built


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = await _services(tmp_path, database_url, LIMIT)
    try:
        yield built
    finally:
        await built.metadata.close()


def digest(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


async def upload(
    services: Services,
    key: str,
    data: bytes,
    *,
    declared: bool = True,
    storage_class: StorageClass = HOT,
    tenant: TenantId = ACME,
    piece: int = 300,
) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), piece):
            yield data[start : start + piece]

    request = UploadRequest(
        tenant,
        FILES,
        ObjectKey(key),
        storage_class=storage_class,
        declared_size=len(data) if declared else None,
    )
    return await services.uploader.upload(request, body())


def file_of(tmp_path: Path, data: bytes, storage_class: StorageClass = HOT) -> Path:
    return blob_path(tmp_path / storage_class.value, digest(data))


def files_in(tmp_path: Path) -> list[Path]:
    return [p for c in ("hot", "cold") for p in (tmp_path / c).rglob("*") if p.is_file()]


async def inline_bytes(
    services: Services, data: bytes, storage_class: StorageClass = HOT
) -> bytes | None:
    async with services.metadata.snapshot() as view:
        return await view.blobs.inline_data(BlobLocation(storage_class, digest(data)))


async def read_back(services: Services, result: UploadResult) -> bytes:
    found = await find_by_id(services.metadata, ACME, result.version.id)
    reader = await open_blob(services.blobs, found, length=found.version.size_bytes)
    try:
        return b"".join([c async for c in reader.chunks(0, found.version.size_bytes)])
    finally:
        await reader.close()


async def sql(services: Services, statement: str, params: tuple[Any, ...] = ()) -> None:
    """Change the database behind the store's back (damage for fsck to find)."""
    async with services.metadata.transaction() as uow:
        await uow.session.execute(statement, params)  # type: ignore[attr-defined]
        await uow.commit()


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
async def test_blobs_up_to_the_threshold_live_inline_and_larger_ones_in_files(
    services: Services, tmp_path: Path, declared: bool
) -> None:
    sizes = [0, 1, LIMIT, LIMIT + 1]
    bodies = {size: bytes([size % 251]) * size for size in sizes}
    results = {s: await upload(services, f"k{s}", b, declared=declared) for s, b in bodies.items()}
    for size, data in bodies.items():
        kept_inline = await inline_bytes(services, data)
        if size <= LIMIT:
            assert kept_inline == data and not file_of(tmp_path, data).exists()
            found = await find_newest(services.metadata, ACME, FILES, ObjectKey(f"k{size}"))
            assert found.inline == data and found.blob.address == f"inline:{digest(data).hex}"
        else:
            assert kept_inline is None and file_of(tmp_path, data).read_bytes() == data
        assert await read_back(services, results[size]) == data
    assert files_in(tmp_path) == [file_of(tmp_path, bodies[LIMIT + 1])]


async def test_a_group_commit_of_small_uploads_writes_no_file(
    services: Services, tmp_path: Path
) -> None:
    bodies = [f"small {i}".encode() * 10 for i in range(20)]
    await asyncio.gather(*(upload(services, f"g{i}", b) for i, b in enumerate(bodies)))
    assert files_in(tmp_path) == []
    for data in bodies:
        assert await inline_bytes(services, data) == data


async def test_dedup_is_per_class_and_one_blob_per_content(services: Services) -> None:
    data = b"the same small bytes"
    first = await upload(services, "a", data)
    second = await upload(services, "b", data)
    cold = await upload(services, "c", data, storage_class=COLD)
    assert not first.deduplicated and second.deduplicated and not cold.deduplicated
    async with services.metadata.snapshot() as view:
        audits = {a.location.storage_class: a for a in await view.blobs.audit(None, 10)}
    assert {c: (a.ref_count, a.location.address) for c, a in audits.items()} == {
        HOT: (2, f"inline:{digest(data).hex}"),
        COLD: (1, f"inline:{digest(data).hex}"),
    }
    assert await inline_bytes(services, data, COLD) == data


async def test_content_stored_as_a_file_before_inlining_moves_inline_on_a_dedup_hit(
    tmp_path: Path, database_url: str
) -> None:
    """SPEC §5: another tenant's small object must not stay a file (a different read
    path) because someone stored the same bytes before inlining was turned on."""
    data = b"stored while inlining was off"
    before = await _services(tmp_path, database_url, 0)
    try:
        await upload(before, "old", data, tenant=TenantId("other"))
    finally:
        await before.metadata.close()
    after = await _services(tmp_path, database_url, LIMIT)
    try:
        again = await upload(after, "new", data)
        assert again.deduplicated
        assert await inline_bytes(after, data) == data  # the row is inline now
        found = await find_by_id(after.metadata, ACME, again.version.id)
        assert found.blob.is_inline and found.inline == data
        assert file_of(tmp_path, data).exists()  # the old copy is GC's to remove
        gc = await collect_garbage(
            after.metadata, after.blobs, after.clock, GcPolicy(0), after.liveness
        )
        assert gc.orphan_blobs_removed == 1 and files_in(tmp_path) == []
        assert await read_back(after, again) == data
        assert (await check_store(after.metadata, after.blobs)).problems == []
    finally:
        await after.metadata.close()


async def test_delete_and_gc_remove_the_inline_row(services: Services) -> None:
    kept, gone = b"kept bytes", b"deleted bytes"
    await upload(services, "kept", kept)
    result = await upload(services, "gone", gone)
    await delete_object(services.metadata, ACME, result.version.id)
    report = await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
    )
    assert report.removed_hashes == [digest(gone).hex]
    assert await inline_bytes(services, gone) is None
    assert await inline_bytes(services, kept) == kept
    assert (await check_store(services.metadata, services.blobs)).problems == []


async def test_fsck_finds_a_corrupted_and_a_missing_inline_blob(services: Services) -> None:
    corrupt = await upload(services, "corrupt", b"will be corrupted")
    lost = await upload(services, "lost", b"will be lost")
    await sql(
        services,
        "UPDATE inline_blobs SET data = ? WHERE content_hash = ?",
        (b"other bytes", digest(b"will be corrupted").hex),
    )
    await sql(
        services, "DELETE FROM inline_blobs WHERE content_hash = ?", (digest(b"will be lost").hex,)
    )
    report = await check_store(services.metadata, services.blobs)
    kinds = {p.kind: p for p in report.problems}
    assert set(kinds) == {ProblemKind.HASH_MISMATCH, ProblemKind.MISSING_BLOB}
    assert kinds[ProblemKind.HASH_MISMATCH].object_ids == (corrupt.version.id,)
    assert kinds[ProblemKind.MISSING_BLOB].object_ids == (lost.version.id,)


async def test_a_stale_file_of_an_inline_blob_is_an_orphan_gc_removes(
    services: Services, tmp_path: Path
) -> None:
    data = b"inline, with a stale file copy"
    await upload(services, "k", data)
    stale = file_of(tmp_path, data)
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(data)  # as a crash of migrate-blobs --inline leaves it
    report = await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
    )
    assert report.orphan_blobs_removed == 1 and not stale.exists()
    assert await inline_bytes(services, data) == data


async def test_migrate_moves_blobs_out_and_back_in_when_the_threshold_changes(
    services: Services, tmp_path: Path, database_url: str
) -> None:
    small, large = b"s" * 100, b"l" * 900
    results = [await upload(services, "small", small), await upload(services, "large", large)]
    larger = build_blob_store(services.settings)
    # Lowered to 500: the 900-byte blob goes out to a file, the 100-byte one stays.
    report = await migrate_inline(services.metadata, larger, HOT, 500)
    assert (report.copied, report.remaining, report.problems) == (1, 0, [])
    assert file_of(tmp_path, large).read_bytes() == large
    assert await inline_bytes(services, large) is None
    assert await inline_bytes(services, small) == small
    again = await migrate_inline(services.metadata, larger, HOT, 500)
    assert (again.copied, again.remaining) == (0, 0)  # resumable: nothing left to do
    # Raised to 1000: it comes back inline; the file is left for GC (a download that
    # looked the row up before the move may still be reading it).
    back = await migrate_inline(services.metadata, larger, HOT, 1000)
    assert (back.copied, back.remaining, back.problems) == (1, 0, [])
    assert await inline_bytes(services, large) == large
    assert files_in(tmp_path) == [file_of(tmp_path, large)]
    gc = await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
    )
    assert gc.orphan_blobs_removed == 1 and files_in(tmp_path) == []
    # Off: everything goes out to files.
    off = await migrate_inline(services.metadata, larger, HOT, 0)
    assert (off.copied, off.remaining) == (2, 0)
    assert sorted(files_in(tmp_path)) == sorted(
        [file_of(tmp_path, small), file_of(tmp_path, large)]
    )
    for result, data in zip(results, (small, large), strict=True):
        assert await read_back(services, result) == data
    assert (await check_store(services.metadata, services.blobs)).problems == []


async def test_migrate_reports_a_damaged_inline_blob_and_leaves_it(services: Services) -> None:
    await upload(services, "k", b"d" * 900)
    await sql(services, "UPDATE inline_blobs SET data = ?", (b"x" * 900,))
    larger = build_blob_store(services.settings)
    report = await migrate_inline(services.metadata, larger, HOT, 500)
    assert report.copied == 0 and len(report.problems) == 1 and not report.complete


async def test_usage_and_quota_count_inline_bytes(services: Services) -> None:
    quota = TenantId("quota")
    await upload(services, "a", b"a" * LIMIT, tenant=quota)
    await upload(services, "b", b"b" * LIMIT, tenant=quota, storage_class=COLD)
    usage = await tenant_usage(
        services.metadata, quota, prices_gb_month=services.prices_gb_month, currency="USD"
    )
    assert usage.logical_bytes == 2 * LIMIT
    assert usage.by_storage_class[COLD].size_bytes == LIMIT
    await upload(services, "c", b"c" * LIMIT, tenant=quota)
    with pytest.raises(PayloadTooLarge):
        await upload(services, "d", b"d", tenant=quota)


async def test_gc_between_an_uploads_staging_and_its_commit_loses_nothing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race confirm() exists for, inline: GC removes the released row and its bytes
    while an upload of the same bytes waits for its commit, which writes them again."""
    data = b"raced by GC"
    first = await upload(services, "a", data)
    await delete_object(services.metadata, ACME, first.version.id)
    sealed, release = asyncio.Event(), asyncio.Event()
    commit = GroupCommitter.commit

    async def held(self: GroupCommitter, upload: SealedUpload) -> Committed:
        sealed.set()
        await release.wait()
        return await commit(self, upload)

    monkeypatch.setattr(GroupCommitter, "commit", held)
    second = asyncio.ensure_future(upload(services, "b", data))
    await sealed.wait()
    report = await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
    )
    assert report.removed_hashes == [digest(data).hex]
    assert await inline_bytes(services, data) is None
    release.set()
    result = await second
    assert await read_back(services, result) == data
    assert (await check_store(services.metadata, services.blobs)).problems == []


async def _stored_on(store: BlobStore, storage_class: StorageClass) -> list[str]:
    return [s.address async for batch in store.scan(storage_class) for s in batch]


@pytest.mark.s3
async def test_inline_blobs_in_front_of_an_s3_root(seaweedfs: SeaweedFs, tmp_path: Path) -> None:
    prefix = uuid.uuid4().hex
    settings = load_settings(
        {
            **seaweedfs.env(),
            "JUSTSTORAGE_DATA_DIR": str(tmp_path),
            "JUSTSTORAGE_HOT_ROOT": seaweedfs.root(f"{prefix}/hot"),
            "JUSTSTORAGE_COLD_ROOT": seaweedfs.root(f"{prefix}/cold"),
            "JUSTSTORAGE_INLINE_MAX_BYTES": str(LIMIT),
        }
    )
    services = build(settings)
    await services.metadata.migrate()
    await services.blobs.prepare()
    larger = build_blob_store(settings)
    try:
        small, large = b"s" * 100, b"l" * (LIMIT + 1)
        results = [
            await upload(services, "small", small),
            await upload(services, "chunked", small[:50], declared=False),
            await upload(services, "large", large),
        ]
        assert len(await _stored_on(larger, HOT)) == 1  # only the large one is an object
        for result, data in zip(results, (small, small[:50], large), strict=True):
            assert await read_back(services, result) == data
        out = await migrate_inline(services.metadata, larger, HOT, 60)
        assert (out.copied, out.remaining, out.problems) == (1, 0, [])
        assert (
            len(await _stored_on(larger, HOT)) == 2 and await inline_bytes(services, small) is None
        )
        assert await read_back(services, results[0]) == small  # from its S3 object now
        back = await migrate_inline(services.metadata, larger, HOT, LIMIT)
        assert (back.copied, back.remaining, back.problems) == (1, 0, [])
        assert await inline_bytes(services, small) == small
        assert len(await _stored_on(larger, HOT)) == 2  # the old copy is GC's to remove
        report = await collect_garbage(
            services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
        )
        assert (report.blobs_removed, report.orphan_blobs_removed) == (0, 1)
        assert len(await _stored_on(larger, HOT)) == 1
        assert (await check_store(services.metadata, services.blobs)).problems == []
    finally:
        await services.metadata.close()


async def test_inline_bytes_beside_a_row_that_names_a_file_are_an_orphan_gc_removes(
    services: Services, tmp_path: Path
) -> None:
    data = b"a row re-pointed at a file"
    result = await upload(services, "k", data)
    path = file_of(tmp_path, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    # As a row with no reference left is re-pointed by an upload that wrote a file.
    await sql(services, "UPDATE blobs SET location = NULL")
    report = await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
    )
    assert report.orphan_blobs_removed == 1 and await inline_bytes(services, data) is None
    assert await read_back(services, result) == data and path.exists()
    assert (await check_store(services.metadata, services.blobs)).problems == []


def test_the_migrate_blobs_command_follows_the_threshold(tmp_path: Path, database_url: str) -> None:
    async def seed() -> None:
        services = await _services(tmp_path, database_url, LIMIT)
        try:
            await upload(services, "k", b"m" * 900)
        finally:
            await services.metadata.close()

    asyncio.run(seed())
    env = {
        "PATH": os.environ.get("PATH", ""),
        "JUSTSTORAGE_DATA_DIR": str(tmp_path),
        "DATABASE_URL": database_url,
        "JUSTSTORAGE_INLINE_MAX_BYTES": "500",
    }
    done = run_cli(["migrate-blobs", "--inline"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "migrate-blobs hot: 1 blobs (900 bytes) copied" in done.stdout
    assert file_of(tmp_path, b"m" * 900).read_bytes() == b"m" * 900
    both = run_cli(["migrate-blobs", "--inline", "--to-hot", "s3://b/p"], env)
    assert both.returncode == 2 and "--inline" in both.stderr


async def test_fsck_writes_back_the_lost_row_of_an_inline_blob(services: Services) -> None:
    data = b"its blob row is lost"
    result = await upload(services, "k", data)
    await sql(services, "DELETE FROM blobs")
    report = await check_store(services.metadata, services.blobs)
    assert [(p.kind, p.object_ids) for p in report.problems] == [
        (ProblemKind.MISSING_ROW, (result.version.id,))
    ]
    gc = await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(0), services.liveness
    )
    assert gc.orphan_blobs_removed == 0  # the bytes of committed objects are kept
    repaired = await check_store(services.metadata, services.blobs, repair=True)
    assert [p.repaired for p in repaired.problems] == [True]
    assert (await check_store(services.metadata, services.blobs)).problems == []
    found = await find_by_id(services.metadata, ACME, result.version.id)
    assert found.inline == data  # the row names its inline bytes again


async def test_a_download_of_an_inline_blob_reads_nothing_after_its_lookup(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"served from the lookup's row"
    result = await upload(services, "k", data)

    async def no_open(*args: object, **kwargs: object) -> None:
        raise AssertionError("the store was asked for bytes the lookup had")

    monkeypatch.setattr(InlineBlobStore, "open", no_open)
    assert await read_back(services, result) == data


async def test_threshold_0_after_inline_rows_keeps_them_working_until_moved_out(
    tmp_path: Path, database_url: str
) -> None:
    """0 stops new uploads from going inline; the rows already inline (a 0-byte one
    too) stay readable, fsck-clean and collectable, and migrate-blobs moves them all."""
    empty, small, gone = b"", b"kept inline", b"deleted later"
    before = await _services(tmp_path, database_url, LIMIT)
    try:
        results = [await upload(before, "empty", empty), await upload(before, "small", small)]
        deleted = await upload(before, "gone", gone)
    finally:
        await before.metadata.close()
    off = await _services(tmp_path, database_url, 0)
    try:
        assert (await check_store(off.metadata, off.blobs)).problems == []
        for result, data in zip(results, (empty, small), strict=True):
            assert await read_back(off, result) == data
        await upload(off, "file", b"new bytes")  # new uploads are files now
        assert file_of(tmp_path, b"new bytes").exists()
        await delete_object(off.metadata, ACME, deleted.version.id)
        gc = await collect_garbage(off.metadata, off.blobs, off.clock, GcPolicy(0), off.liveness)
        assert gc.removed_hashes == [digest(gone).hex] and gc.orphan_blobs_removed == 0
        report = await migrate_inline(off.metadata, build_blob_store(off.settings), HOT, 0)
        assert (report.copied, report.remaining, report.problems) == (2, 0, [])
        assert await inline_bytes(off, empty) is None and await inline_bytes(off, small) is None
        assert file_of(tmp_path, empty).read_bytes() == empty
        for result, data in zip(results, (empty, small), strict=True):
            assert await read_back(off, result) == data
        assert (await check_store(off.metadata, off.blobs)).problems == []
    finally:
        await off.metadata.close()


async def test_a_gc_pass_while_a_blob_moves_out_to_s3_leaves_the_copy(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy on an S3-like store is named by its own upload id: GC's orphan step,
    run between its staging and the move's commit, must see it as in flight."""
    data = b"o" * 900
    result = await upload(services, "k", data)
    larger = FakeBlobStore(by_upload=True)  # addresses by upload, like S3
    publish = FakeStagedBlob.publish

    async def publish_then_collect(staged: FakeStagedBlob) -> bool:
        published = await publish(staged)
        later = larger.clock.now() + timedelta(days=1)  # every copy past the grace
        async for orphans in find_orphans(services.metadata, larger, HOT, stored_before=later):
            for orphan in orphans:
                await remove_orphan(services.metadata, larger, orphan)
        return published

    monkeypatch.setattr(FakeStagedBlob, "publish", publish_then_collect)
    report = await migrate_inline(services.metadata, larger, HOT, 500)
    assert (report.copied, report.remaining, report.problems) == (1, 0, [])
    assert list(larger.blobs.values()) == [data]  # the copy the row now names
    found = await find_by_id(services.metadata, ACME, result.version.id)
    reader = await larger.open(found.blob)
    assert b"".join([c async for c in reader.chunks(0, len(data))]) == data
    async with services.metadata.snapshot() as view:
        assert await view.objects.writing_among([UUID(found.blob.address)]) == set()


async def test_an_upload_of_content_still_inline_after_lowering_is_a_dedup_hit(
    tmp_path: Path, database_url: str
) -> None:
    """Threshold lowered, blobs not moved yet: content still held inline goes through
    a file on upload, which the commit finds redundant (the row is inline)."""
    data = b"i" * 900
    before = await _services(tmp_path, database_url, LIMIT)
    try:
        await upload(before, "old", data)
    finally:
        await before.metadata.close()
    lowered = await _services(tmp_path, database_url, 500)
    try:
        again = await upload(lowered, "new", data)
        assert again.deduplicated
        assert files_in(tmp_path) == [] and await inline_bytes(lowered, data) == data
        assert await read_back(lowered, again) == data
        gc = await collect_garbage(
            lowered.metadata, lowered.blobs, lowered.clock, GcPolicy(0), lowered.liveness
        )
        assert gc.orphan_blobs_removed == 0
        assert (await check_store(lowered.metadata, lowered.blobs)).problems == []
    finally:
        await lowered.metadata.close()


async def test_a_lookup_for_a_head_leaves_the_inline_bytes_unread(services: Services) -> None:
    data = b"a HEAD sends none of these"
    result = await upload(services, "k", data)
    by_id = await find_by_id(services.metadata, ACME, result.version.id, with_bytes=False)
    newest = await find_newest(services.metadata, ACME, FILES, ObjectKey("k"), with_bytes=False)
    for found in (by_id, newest):
        assert found.inline is None and found.blob.is_inline
        assert found.version.id == result.version.id
    assert (await find_newest(services.metadata, ACME, FILES, ObjectKey("k"))).inline == data


async def test_head_answers_without_reading_the_inline_bytes(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = build(Settings(data_dir=tmp_path, database_url=database_url, auth="disabled"))
    await built.metadata.migrate()
    data = b"HEAD looks this up without its bytes"
    read: list[bytes | None] = []
    newest_located = SqlObjectRepository.newest_located

    async def recording(self: SqlObjectRepository, *args: Any, **kwargs: Any) -> Any:
        found = await newest_located(self, *args, **kwargs)
        read.append(found.inline if found else None)
        return found

    monkeypatch.setattr(SqlObjectRepository, "newest_located", recording)
    try:
        await upload(built, "k", data)
        app = create_app(built, run_startup=False, run_background=False)
        async with app.router.lifespan_context(app) as state:

            async def served(scope: Scope, receive: Receive, send: Send) -> None:
                scope["state"] = dict(state)
                await app(scope, receive, send)

            transport = httpx.ASGITransport(app=served)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                path = f"/v1/objects/by-key/{FILES}/{ACME}/k"
                head = await client.head(path)
                assert head.status_code == 200
                assert head.headers["content-length"] == str(len(data))
                got = await client.get(path)
                assert got.status_code == 200 and got.content == data
        assert read == [None, data]  # the HEAD's lookup read no bytes
    finally:
        await built.metadata.close()
