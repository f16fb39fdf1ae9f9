"""Upload by hash (SPEC §8.3) on a real SQLite file and a real PostgreSQL database:
tenant isolation, reference counts, usage, quota, conditions, and GC between the
lookup and the commit."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from juststorage.adapters.blobs.filesystem import blob_path
from juststorage.adapters.metadata.postgres import PostgresDialect
from juststorage.adapters.metadata.queries import HOLDS_CONTENT_SQL
from juststorage.adapters.metadata.sqlite import SqliteDialect
from juststorage.application.by_hash import upload_by_hash
from juststorage.application.commits import Committed, SealedUpload
from juststorage.application.deletes import delete_object
from juststorage.application.downloads import find_by_id, open_blob
from juststorage.application.gc import GcPolicy, collect_garbage
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services, build
from juststorage.config import Settings, TenantLimits
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import NotFound, PayloadTooLarge, PreconditionFailed
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, OTHER, SMALL = TenantId("acme"), TenantId("other"), TenantId("small")
FILES, MODELS = Namespace("files"), Namespace("models")
HOT, COLD = StorageClass.HOT, StorageClass.COLD
INLINE_MAX = 100  # blobs up to this are inline rows; the others files
DATA = b"model weights " * 20  # a file
QUOTA = 3 * len(DATA)


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = build(
        Settings(
            data_dir=tmp_path,
            database_url=database_url,
            inline_max_bytes=INLINE_MAX,
            tenants={str(SMALL): TenantLimits(quota_bytes=QUOTA)},
        )
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


def digest(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


def request_for(
    tenant: TenantId,
    key: str,
    *,
    namespace: Namespace = MODELS,
    storage_class: StorageClass = HOT,
    precondition: WritePrecondition | None = None,
) -> UploadRequest:
    return UploadRequest(
        tenant,
        namespace,
        ObjectKey(key),
        storage_class=storage_class,
        precondition=precondition or WritePrecondition(),
    )


async def upload(
    services: Services,
    tenant: TenantId,
    key: str,
    data: bytes = DATA,
    *,
    storage_class: StorageClass = HOT,
) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(
        tenant, FILES, ObjectKey(key), storage_class=storage_class, declared_size=len(data)
    )
    return await services.uploader.upload(request, body())


async def by_hash(
    services: Services, request: UploadRequest, data: bytes = DATA, size: int | None = None
) -> UploadResult:
    return await upload_by_hash(
        services.uploader, request, digest(data), len(data) if size is None else size
    )


async def read_back(services: Services, tenant: TenantId, result: UploadResult) -> bytes:
    found = await find_by_id(services.metadata, tenant, result.version.id)
    reader = await open_blob(services.blobs, found, length=found.version.size_bytes)
    try:
        return b"".join([c async for c in reader.chunks(0, found.version.size_bytes)])
    finally:
        await reader.close()


async def ref_count(services: Services, data: bytes, storage_class: StorageClass = HOT) -> int:
    async with services.metadata.snapshot() as view:
        audits = await view.blobs.audit(None, 100)
    found = [
        a.ref_count
        for a in audits
        if (a.location.storage_class, a.location.content_hash) == (storage_class, digest(data))
    ]
    return found[0] if found else 0


async def usage_of(services: Services, tenant: TenantId) -> tuple[int, int]:
    async with services.metadata.snapshot() as view:
        classes = await view.objects.usage(tenant)
    return sum(c.objects for c in classes), sum(c.size_bytes for c in classes)


async def gc_now(services: Services) -> None:
    report = await collect_garbage(
        services.metadata,
        services.blobs,
        services.clock,
        GcPolicy(grace_seconds=0),
        services.liveness,
    )
    assert report.ran


def file_of(tmp_path: Path, data: bytes) -> Path:
    return blob_path(tmp_path / "hot", digest(data))


@pytest.mark.parametrize("data", [DATA, b"tiny inline bytes"], ids=["file", "inline"])
async def test_a_tenant_commits_content_it_holds_in_any_namespace_without_sending_it(
    services: Services, data: bytes
) -> None:
    original = await upload(services, ACME, "source", data)

    made = await by_hash(services, request_for(ACME, "copy"), data)

    version = made.version
    assert made.deduplicated
    assert (version.namespace, version.key, version.tenant_id) == (MODELS, "copy", ACME)
    assert version.content_hash == original.version.content_hash
    assert version.size_bytes == len(data) and version.id != original.version.id
    assert await read_back(services, ACME, made) == data
    assert await ref_count(services, data) == 2
    assert await usage_of(services, ACME) == (2, 2 * len(data))
    # A key's versions: by hash on top of an upload makes a newer version of it.
    again = await by_hash(services, request_for(ACME, "source", namespace=FILES), data)
    async with services.metadata.snapshot() as view:
        newest = await view.objects.newest(ACME, FILES, ObjectKey("source"))
    assert newest is not None and newest.id == again.version.id
    assert await ref_count(services, data) == 3


async def test_content_only_another_tenant_holds_never_matches(services: Services) -> None:
    await upload(services, OTHER, "theirs")

    with pytest.raises(NotFound) as refused:
        await by_hash(services, request_for(ACME, "guess"))

    assert await ref_count(services, DATA) == 1
    assert await usage_of(services, ACME) == (0, 0)
    with pytest.raises(NotFound) as nobody:
        await by_hash(services, request_for(ACME, "guess"), b"nobody stores these bytes")
    assert str(refused.value) == str(nobody.value)  # one answer, whatever the reason


async def test_the_size_and_the_storage_class_must_match_too(services: Services) -> None:
    await upload(services, ACME, "hot-copy")

    with pytest.raises(NotFound):
        await by_hash(services, request_for(ACME, "wrong-size"), size=len(DATA) + 1)
    with pytest.raises(NotFound):
        await by_hash(services, request_for(ACME, "cold", storage_class=COLD))
    with pytest.raises(PayloadTooLarge):
        await by_hash(services, request_for(ACME, "huge"), size=10**15)
    assert await usage_of(services, ACME) == (1, len(DATA))


async def test_content_whose_objects_are_all_deleted_is_not_found(services: Services) -> None:
    gone = await upload(services, ACME, "gone")
    await delete_object(services.metadata, ACME, gone.version.id)

    with pytest.raises(NotFound):
        await by_hash(services, request_for(ACME, "again"))


async def test_conditions_are_checked_as_for_an_upload(services: Services) -> None:
    first = await upload(services, ACME, "source")
    create_only = WritePrecondition.from_headers("*", None)
    stale = WritePrecondition.from_headers(None, '"sha256:' + "0" * 64 + '"')
    current = WritePrecondition.from_headers(None, first.version.content_hash.etag)

    with pytest.raises(PreconditionFailed):
        await by_hash(
            services, request_for(ACME, "source", namespace=FILES, precondition=create_only)
        )
    with pytest.raises(PreconditionFailed):
        await by_hash(services, request_for(ACME, "source", namespace=FILES, precondition=stale))
    assert await ref_count(services, DATA) == 1

    await by_hash(services, request_for(ACME, "fresh", precondition=create_only))
    await by_hash(services, request_for(ACME, "source", namespace=FILES, precondition=current))
    assert await ref_count(services, DATA) == 3


async def test_a_by_hash_commit_counts_against_the_quota(services: Services) -> None:
    await upload(services, SMALL, "one")
    await by_hash(services, request_for(SMALL, "two"))
    await by_hash(services, request_for(SMALL, "three"))

    with pytest.raises(PayloadTooLarge, match="quota"):
        await by_hash(services, request_for(SMALL, "four"))
    assert await usage_of(services, SMALL) == (3, QUOTA)


def _between_lookup_and_commit(
    services: Services, monkeypatch: pytest.MonkeyPatch, step: Callable[[], Awaitable[None]]
) -> list[SealedUpload]:
    """Run `step` after the lookup has matched, just before the group commit begins."""
    committer = services.uploader.committer
    original = committer.commit
    seen: list[SealedUpload] = []

    async def commit(sealed: SealedUpload) -> Committed:
        if sealed.by_reference:
            seen.append(sealed)
            await step()
        return await original(sealed)

    monkeypatch.setattr(committer, "commit", commit)
    return seen


async def test_gc_between_lookup_and_commit_of_the_last_reference_leaves_a_404(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    only = await upload(services, ACME, "only")

    async def delete_and_collect() -> None:
        await delete_object(services.metadata, ACME, only.version.id)
        await gc_now(services)
        assert not file_of(tmp_path, DATA).exists()  # GC took the blob meanwhile

    seen = _between_lookup_and_commit(services, monkeypatch, delete_and_collect)
    with pytest.raises(NotFound):
        await by_hash(services, request_for(ACME, "late"))

    assert seen, "the lookup matched, so the commit was attempted"
    assert await usage_of(services, ACME) == (0, 0)  # no version points at missing bytes
    async with services.metadata.snapshot() as view:
        assert await view.blobs.audit(None, 10) == []
        assert await view.objects.newest(ACME, MODELS, ObjectKey("late")) is None


async def test_gc_between_lookup_and_commit_keeps_a_blob_that_is_still_referenced(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = await upload(services, ACME, "kept")
    spare = await upload(services, ACME, "spare")

    async def delete_one_and_collect() -> None:
        await delete_object(services.metadata, ACME, spare.version.id)
        await gc_now(services)

    _between_lookup_and_commit(services, monkeypatch, delete_one_and_collect)
    made = await by_hash(services, request_for(ACME, "made"))

    # The new version holds its own reference: the last upload's going cannot take it.
    await delete_object(services.metadata, ACME, kept.version.id)
    await gc_now(services)
    assert file_of(tmp_path, DATA).read_bytes() == DATA
    assert await read_back(services, ACME, made) == DATA
    assert await ref_count(services, DATA) == 1


async def test_the_lookup_reads_an_index_that_starts_with_the_tenant(
    services: Services, database_url: str
) -> None:
    """The lookup's cost must not depend on other tenants' rows (SPEC §5): its plan
    seeks the tenant's own entries, never the hash's rows of every tenant."""
    for n in range(30):
        await upload(services, OTHER, f"theirs-{n}")
    params: tuple[Any, ...] = ("acme", "hot", digest(DATA).hex, len(DATA))
    if database_url.startswith("sqlite"):
        import sqlite3

        lookup = HOLDS_CONTENT_SQL.format(index=SqliteDialect.tenant_content_index)
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            conn.execute("ANALYZE")
            plan = " ".join(str(r) for r in conn.execute(f"EXPLAIN QUERY PLAN {lookup}", params))
    else:
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("ANALYZE objects")
            # A table this small is read whole; the question is which index a big one uses.
            await conn.execute("SET enable_seqscan = off")
            lookup = HOLDS_CONTENT_SQL.format(index=PostgresDialect.tenant_content_index)
            first, *rest = lookup.split("?")
            sql = "EXPLAIN " + first + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))
            plan = " ".join(r[0] for r in await conn.fetch(sql, *params))
        finally:
            await conn.close()
    assert "objects_committed_by_tenant_blob" in plan, plan
    async with services.metadata.snapshot() as view:
        assert not await view.objects.holds_content(ACME, HOT, digest(DATA), len(DATA))
        assert await view.objects.holds_content(OTHER, HOT, digest(DATA), len(DATA))
