"""The census of /metrics (`just_storage_objects_total`, `_storage_bytes`) comes from
counter rows kept by the transactions that move objects between states: on SQLite
and PostgreSQL it equals a full count of the objects after uploads, new versions,
deletes, aborted uploads and GC, and reading it costs the same however many
objects there are."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast
from uuid import uuid4

import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata import sqlite as sqlite_module
from juststorage.adapters.metadata.migrations import migrations_for
from juststorage.adapters.metadata.queries import CENSUS_SQL
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.adapters.metadata.unit_of_work import SqlUnitOfWork
from juststorage.application.deletes import delete_object, delete_versions
from juststorage.application.gc import GcPolicy, collect_garbage
from juststorage.application.uploads import UploadRequest
from juststorage.bootstrap import Services, build
from juststorage.config import Settings
from juststorage.domain.model import Namespace, NewUpload, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, OTHER = TenantId("acme"), TenantId("other")
FILES, KB = Namespace("files"), Namespace("kb")
# What the census used to run at every scrape: every object, grouped.
FULL_COUNT = (
    "SELECT tenant_id, namespace, state, storage_class, COUNT(*), COALESCE(SUM(size_bytes), 0)"
    " FROM objects WHERE state != 'DELETED' GROUP BY tenant_id, namespace, state, storage_class"
)
Counts = dict[tuple[str, str, str, str], tuple[int, int]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    url: str = request.getfixturevalue("postgres_url")  # skips locally, fails in CI
    return url


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = build(Settings(data_dir=tmp_path, database_url=database_url))
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


async def _upload(
    services: Services,
    key: str,
    data: bytes,
    *,
    tenant: TenantId = ACME,
    namespace: Namespace = FILES,
    storage_class: StorageClass = StorageClass.HOT,
    sized: bool = False,
) -> None:
    """Without `sized`, no Content-Length: the upload writes its WRITING row first;
    with it, a small upload inserts its committed row at once."""

    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(
        tenant,
        namespace,
        ObjectKey(key),
        storage_class=storage_class,
        declared_size=len(data) if sized else None,
    )
    await services.uploader.upload(request, body())


async def _counts(services: Services, sql: str) -> Counts:
    async with services.metadata.snapshot() as view:
        rows = await cast(SqlUnitOfWork, view).session.fetchall(sql)
    return {(r[0], r[1], r[2], r[3]): (int(r[4]), int(r[5])) for r in rows}


async def _census(services: Services) -> Counts:
    async with services.metadata.snapshot() as view:
        rows = await view.objects.census()
    return {
        (c.tenant_id, c.namespace, c.state.value, c.storage_class.value): (c.objects, c.size_bytes)
        for c in rows
    }


async def _assert_census_is_the_full_count(services: Services) -> Counts:
    census = await _census(services)
    assert census == await _counts(services, FULL_COUNT)
    return census


async def test_census_equals_a_full_count_through_every_state_change(services: Services) -> None:
    await _upload(services, "a", b"a" * 10)
    await _upload(services, "a", b"b" * 7)  # a new version of "a"
    await _upload(services, "a", b"b" * 7, sized=True)  # the same bytes again: a dedup hit
    await _upload(services, "c", b"c" * 5, storage_class=StorageClass.COLD)
    await _upload(services, "k", b"k" * 3, tenant=OTHER, namespace=KB)
    census = await _assert_census_is_the_full_count(services)
    assert census[("acme", "files", "COMMITTED", "hot")] == (3, 24)

    # An upload that fails after its WRITING row was added leaves no count behind.
    async def broken() -> AsyncIterator[bytes]:
        yield b"partial"
        raise OSError("client went away")

    with pytest.raises(OSError):
        big = UploadRequest(ACME, FILES, ObjectKey("big"), declared_size=10**6)
        await services.uploader.upload(big, broken())
    await _assert_census_is_the_full_count(services)

    # Deletes: one version by id, then every version of a key.
    async with services.metadata.snapshot() as view:
        newest = await view.objects.newest(ACME, FILES, ObjectKey("a"))
    assert newest is not None
    await delete_object(services.metadata, ACME, newest.id)
    await delete_versions(services.metadata, OTHER, KB, ObjectKey("k"))
    census = await _assert_census_is_the_full_count(services)
    assert census[("acme", "files", "DELETING", "hot")] == (1, 7)

    # GC finishes the deletes (DELETING -> DELETED leaves the census) and purges.
    policy = GcPolicy(grace_seconds=0)
    await collect_garbage(
        services.metadata, services.blobs, services.clock, policy, services.liveness
    )
    census = await _assert_census_is_the_full_count(services)
    assert {key[2] for key in census} == {"COMMITTED"}
    await collect_garbage(
        services.metadata, services.blobs, services.clock, policy, services.liveness
    )
    await _assert_census_is_the_full_count(services)


async def test_gc_reaping_a_stale_writing_row_takes_it_out_of_the_census(
    services: Services,
) -> None:
    upload = NewUpload(
        id=uuid4(),
        tenant_id=ACME,
        namespace=FILES,
        key=ObjectKey("stale"),
        storage_class=StorageClass.HOT,
        content_type="text/plain",
        created_at=services.clock.now(),
        owner="a-process-that-died",
    )
    async with services.metadata.transaction() as uow:
        await uow.objects.add_writing(upload)
        await uow.commit()
    assert (await _assert_census_is_the_full_count(services)) == {
        ("acme", "files", "WRITING", "hot"): (1, 0)
    }
    async with services.metadata.transaction() as uow:
        assert await uow.objects.discard_writing(upload.id)
        await uow.commit()
    assert await _assert_census_is_the_full_count(services) == {}


# --- the cost of a census read ------------------------------------------------------


def _insert_objects(path: Path, count: int) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.executemany(
            "INSERT INTO objects (id, tenant_id, namespace, key, state, storage_class,"
            " content_type, content_hash, size_bytes, created_at, updated_at, commit_seq)"
            " VALUES (?, 'acme', 'kb', ?, 'COMMITTED', 'hot', 'x', ?, 1, ?, ?, ?)",
            (
                (f"id-{n}", f"doc-{n:06d}", "0" * 64, "2026-01-01T00:00:00Z", "2026-01-01", n)
                for n in range(count)
            ),
        )
        conn.commit()
    finally:
        conn.close()


async def _store_with_objects(path: Path, count: int, *, upto: int | None = None) -> None:
    """A store with `count` committed objects inserted behind the repository's back,
    then migrated from `upto` to the end (the census migration counts them)."""
    store = SqliteMetadataStore(path, FakeClock())
    with pytest.MonkeyPatch.context() as patch:
        every = migrations_for
        patch.setattr(
            sqlite_module, "migrations_for", lambda b: [m for m in every(b) if m.version <= 4]
        )
        await store.migrate()
    await store.close()
    _insert_objects(path, count)
    store = SqliteMetadataStore(path, FakeClock())
    assert (await store.migrate())[0] == "0005_census_counters"
    await store.close()


def _steps(path: Path, sql: str) -> Iterator[int]:
    """Virtual-machine steps (in hundreds) SQLite takes to run `sql`, and its rows."""
    conn = sqlite3.connect(path)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 100)
    try:
        rows = conn.execute(sql).fetchall()
    finally:
        conn.close()
    yield steps
    yield len(rows)


async def test_census_read_costs_the_same_at_any_number_of_objects(tmp_path: Path) -> None:
    few, many = tmp_path / "few.db", tmp_path / "many.db"
    await _store_with_objects(few, 10)
    await _store_with_objects(many, 20_000)
    few_steps, few_rows = _steps(few, CENSUS_SQL)
    many_steps, many_rows = _steps(many, CENSUS_SQL)
    assert few_rows == many_rows == 1
    assert many_steps == few_steps  # a full count would take ~2000x more steps
    # The migration counted the objects that were there before it.
    conn = sqlite3.connect(many)
    try:
        rows = conn.execute(CENSUS_SQL).fetchall()
        assert rows == [("acme", "kb", "COMMITTED", "hot", 20_000, 20_000)]
    finally:
        conn.close()


async def test_a_batch_of_uploads_writes_the_census_in_one_statement(tmp_path: Path) -> None:
    """SQLite collects a transaction's census deltas and writes them with its commit
    (as PostgreSQL does), not one or two statements per upload of a group commit."""
    built = build(Settings(data_dir=tmp_path))
    await built.metadata.migrate()
    await built.blobs.prepare()
    store = cast(SqliteMetadataStore, built.metadata)
    statements: list[str] = []
    store._writer().set_trace_callback(statements.append)
    try:
        await asyncio.gather(
            *(_upload(built, f"k{i}", f"body {i}".encode(), sized=True) for i in range(20))
        )
        census_writes = [s for s in statements if "INSERT INTO census_counters" in s]
        commits = [s for s in statements if s.strip().upper() == "COMMIT"]
        assert len(census_writes) == len(commits) < 20, (len(census_writes), len(commits))
        await _assert_census_is_the_full_count(built)
    finally:
        store._writer().set_trace_callback(None)
        await built.metadata.close()
