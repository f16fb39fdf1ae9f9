"""One suite for every metadata adapter (STYLE G13): the fake must behave like SQLite.

Add a backend by adding a param to `BACKENDS` and a branch to `metadata`; the
`blob_record` hook reads a blob's reference row, which the port does not expose.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from fakes.state import BlobRecord
from fakes.world import seed_version
from juststorage.adapters.metadata import sqlite as sqlite_adapter
from juststorage.adapters.metadata.queries import Params
from juststorage.adapters.metadata.repositories import SqlObjectRepository
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.application.ports import MetadataStore, UnitOfWork
from juststorage.application.records import (
    ApiKeyRecord,
    BlobAudit,
    BlobLocation,
    ClassUsage,
    ListQuery,
    NamespaceUsage,
    StoredBlob,
    WritingUpload,
)
from juststorage.application.summaries import Listed, ObjectSummary, summarize
from juststorage.domain.auth import Scope
from juststorage.domain.cursor import ListCursor
from juststorage.domain.errors import NotFound, Unavailable
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectState,
    ObjectVersion,
    StorageClass,
    TenantId,
)

pytestmark = pytest.mark.anyio

HOT, COLD = StorageClass.HOT, StorageClass.COLD
ACME, OTHER = TenantId("acme"), TenantId("other")
FILES = Namespace("files")

BACKENDS = [
    "fake",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]


@dataclass
class Backend:
    store: MetadataStore
    clock: FakeClock
    blob_record: Callable[[StorageClass, ContentHash], Awaitable[BlobRecord | None]]


def _sqlite_blob_reader(
    path: Path,
) -> Callable[[StorageClass, ContentHash], Awaitable[BlobRecord | None]]:
    async def blob_record(storage_class: StorageClass, digest: ContentHash) -> BlobRecord | None:
        with contextlib.closing(sqlite3.connect(path)) as conn:
            row = conn.execute(
                "SELECT size_bytes, ref_count, created_at, released_at FROM blobs"
                " WHERE storage_class = ? AND content_hash = ?",
                (storage_class.value, digest.hex),
            ).fetchone()
        if row is None:
            return None
        released = datetime.fromisoformat(row[3]) if row[3] else None
        return BlobRecord(row[0], row[1], datetime.fromisoformat(row[2]), released)

    return blob_record


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    clock = FakeClock()
    if request.param == "fake":
        fake = FakeMetadataStore(clock)

        async def fake_record(cls: StorageClass, digest: ContentHash) -> BlobRecord | None:
            return fake.blob_record(cls, digest)

        yield Backend(fake, clock, fake_record)
        await fake.close()
    elif request.param == "sqlite":
        path = tmp_path / "meta.db"
        store = SqliteMetadataStore(path, clock)
        try:
            assert (await store.migrate())[0] == "0001_initial"
            yield Backend(store, clock, _sqlite_blob_reader(path))
        finally:
            await store.close()
    else:
        url = request.getfixturevalue("postgres_run_url")  # skips locally, fails in CI
        async with _postgres_backend(url, clock) as pg:
            yield pg


@contextlib.asynccontextmanager
async def _postgres_backend(url: str, clock: FakeClock) -> AsyncIterator[Backend]:
    """A fresh schema per test (asyncpg passes unknown URL parameters as server settings)."""
    import asyncpg

    from juststorage.adapters.metadata.postgres import PostgresMetadataStore

    schema = f"contract_{uuid4().hex}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    store = PostgresMetadataStore(f"{url}{'&' if '?' in url else '?'}search_path={schema}", clock)

    async def blob_record(storage_class: StorageClass, digest: ContentHash) -> BlobRecord | None:
        row = await admin.fetchrow(
            f'SELECT size_bytes, ref_count, created_at, released_at FROM "{schema}".blobs'
            " WHERE storage_class = $1 AND content_hash = $2",
            storage_class.value,
            digest.hex,
        )
        return BlobRecord(row[0], row[1], row[2], row[3]) if row else None

    try:
        assert (await store.migrate())[0] == "0001_initial"
        yield Backend(store, clock, blob_record)
    finally:
        await store.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()


def digest_of(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


def new_upload(
    key: str, clock: FakeClock, *, tenant: TenantId = ACME, storage_class: StorageClass = HOT
) -> NewUpload:
    return NewUpload(
        id=uuid4(),
        tenant_id=tenant,
        namespace=FILES,
        key=ObjectKey(key),
        storage_class=storage_class,
        content_type="text/plain",
        created_at=clock.now(),
    )


async def newest(store: MetadataStore, key: str, tenant: TenantId = ACME) -> ObjectVersion | None:
    async with store.snapshot() as view:
        return await view.objects.newest(tenant, FILES, ObjectKey(key))


@dataclass(frozen=True)
class ListedRow:
    """One `list_page` row, with its id and key unpacked for the assertions."""

    id: UUID
    key: str
    commit_seq: int
    summary: ObjectSummary


def listed_rows(page: list[Listed]) -> list[ListedRow]:
    return [ListedRow(UUID(s["id"]), s["key"], seq, s) for s, seq in page]


async def list_all(store: MetadataStore, **options: object) -> list[ListedRow]:
    async with store.snapshot() as view:
        return listed_rows(
            await view.objects.list_page(
                ListQuery(**{"tenant_id": ACME, "namespace": FILES, "limit": 1000, **options})
            )
        )


async def census(store: MetadataStore) -> dict[tuple[str, str, ObjectState, StorageClass], int]:
    async with store.snapshot() as view:
        return {
            (c.tenant_id, c.namespace, c.state, c.storage_class): c.objects
            for c in await view.objects.census()
        }


# --- units of work (G3) ---------------------------------------------------------------


async def test_uncommitted_transaction_rolls_back(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    upload = new_upload("k", clock)
    async with store.transaction() as uow:
        await uow.objects.add_writing(upload)
        await uow.objects.commit_upload(upload.id, digest_of(b"a"), 1)
        await uow.blobs.acquire(BlobLocation(HOT, digest_of(b"a")), 1)
        await uow.api_keys.add(
            ApiKeyRecord("k1", "h", frozenset({"acme"}), frozenset(), clock.now())
        )
        # no commit()
    assert await newest(store, "k") is None
    assert await census(store) == {}
    assert await backend.blob_record(HOT, digest_of(b"a")) is None
    async with store.snapshot() as view:
        assert await view.api_keys.count() == 0


async def test_exception_inside_transaction_rolls_back(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    upload = new_upload("k", clock)
    with pytest.raises(LookupError):
        async with store.transaction() as uow:
            await uow.objects.add_writing(upload)
            await uow.objects.commit_upload(upload.id, digest_of(b"a"), 1)
            raise LookupError("boom")
    assert await newest(store, "k") is None
    # The store is still usable afterwards.
    version = await seed_version(store, clock, "k")
    assert await newest(store, "k") == version


async def test_committed_transaction_is_visible_to_later_snapshots(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    upload = new_upload("k", clock)
    async with store.transaction() as uow:
        await uow.objects.add_writing(upload)
        version = await uow.objects.commit_upload(upload.id, digest_of(b"abc"), 3)
        await uow.commit()
    assert await newest(store, "k") == version
    assert version.id == upload.id
    assert version.state is ObjectState.COMMITTED
    assert version.content_hash == digest_of(b"abc")
    assert version.size_bytes == 3
    assert version.content_type == "text/plain"
    assert version.created_at == clock.now()
    assert version.created_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize("durable", [True, False])
async def test_transaction_commits_whether_durable_or_not(backend: Backend, durable: bool) -> None:
    store, clock = backend.store, backend.clock
    upload = new_upload("k", clock)
    async with store.transaction(durable=durable) as uow:
        await uow.objects.add_writing(upload)
        await uow.commit()
    assert await census(store) == {("acme", "files", ObjectState.WRITING, HOT): 1}
    # A later durable transaction works on the same connection.
    async with store.transaction() as uow:
        await uow.objects.commit_upload(upload.id, digest_of(b"a"), 1)
        await uow.commit()
    assert (await newest(store, "k")) is not None


async def test_snapshot_cannot_commit(backend: Backend) -> None:
    async with backend.store.snapshot() as view:
        with pytest.raises(RuntimeError):
            await view.commit()


async def test_ping_and_migrate_again_are_harmless(backend: Backend) -> None:
    await backend.store.ping()
    assert await backend.store.migrate() == []


# --- object versions ------------------------------------------------------------------


async def test_writing_rows_are_invisible_to_reads(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    upload = new_upload("k", clock)
    async with store.transaction(durable=False) as uow:
        await uow.objects.add_writing(upload)
        await uow.commit()
    assert await newest(store, "k") is None
    assert await list_all(store) == []
    async with store.snapshot() as view:
        assert await version_by_id(view, ACME, upload.id) is None
        assert await view.objects.usage(ACME) == []
    assert await census(store) == {("acme", "files", ObjectState.WRITING, HOT): 1}


async def test_discarded_writing_row_cannot_be_committed(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    upload = new_upload("k", clock)
    async with store.transaction() as uow:
        await uow.objects.add_writing(upload)
        await uow.commit()
    async with store.transaction() as uow:
        await uow.objects.discard_writing(upload.id)
        await uow.objects.discard_writing(uuid4())  # absent: no error
        await uow.commit()
    assert await census(store) == {}
    async with store.transaction() as uow:
        with pytest.raises(NotFound):
            await uow.objects.commit_upload(upload.id, digest_of(b"a"), 1)


async def test_committed_row_cannot_be_committed_twice_or_discarded(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    version = await seed_version(store, clock, "k")
    async with store.transaction() as uow:
        with pytest.raises(NotFound):
            await uow.objects.commit_upload(version.id, digest_of(b"b"), 1)
        await uow.objects.discard_writing(version.id)
        await uow.commit()
    assert await newest(store, "k") == version


async def test_commit_seq_orders_versions_by_commit_not_by_start(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    first, second = new_upload("k", clock), new_upload("k", clock)
    async with store.transaction() as uow:
        await uow.objects.add_writing(first)
        await uow.objects.add_writing(second)
        await uow.commit()
    async with store.transaction() as uow:
        v_second = await uow.objects.commit_upload(second.id, digest_of(b"2"), 1)
        await uow.commit()
    clock.advance(1)
    async with store.transaction() as uow:
        v_first = await uow.objects.commit_upload(first.id, digest_of(b"1"), 1)
        await uow.commit()
    assert v_first.commit_seq > v_second.commit_seq > 0
    assert await newest(store, "k") == v_first
    other = await seed_version(store, clock, "another-key")
    assert other.commit_seq > v_first.commit_seq


async def test_insert_committed_is_a_commit_without_a_writing_row(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    older = await seed_version(store, clock, "k")
    upload = new_upload("k", clock)
    async with store.transaction() as uow:
        version = await uow.objects.insert_committed(upload, digest_of(b"four"), 4)
        await uow.commit()
    assert (version.id, version.key, version.size_bytes) == (upload.id, "k", 4)
    assert version.state is ObjectState.COMMITTED
    assert version.commit_seq > older.commit_seq
    assert await newest(store, "k") == version
    async with store.snapshot() as view:
        assert await version_by_id(view, ACME, upload.id) == version
        assert sum(u.objects for u in await view.objects.usage(ACME)) == 2
    async with store.transaction() as uow:  # no WRITING row was ever there
        assert await uow.objects.discard_writing(upload.id) is False
        await uow.commit()


async def test_insert_committed_many_is_insert_committed_for_each(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    older = await seed_version(store, clock, "a")
    uploads = [new_upload(k, clock) for k in ("a", "b", "c")]
    uploads.append(new_upload("d", clock, tenant=OTHER, storage_class=COLD))
    async with store.transaction() as uow:
        versions = await uow.objects.insert_committed_many(
            [(u, digest_of(u.key.encode()), i + 1) for i, u in enumerate(uploads)]
        )
        await uow.commit()
    assert [v.id for v in versions] == [u.id for u in uploads]
    assert [v.size_bytes for v in versions] == [1, 2, 3, 4]
    assert len({v.commit_seq for v in versions}) == 4
    assert min(v.commit_seq for v in versions) > older.commit_seq
    for version in versions:
        assert version.state is ObjectState.COMMITTED
        assert await newest(store, version.key, version.tenant_id) == version
    async with store.snapshot() as view:
        assert sum(u.size_bytes for u in await view.objects.usage(ACME)) == older.size_bytes + 6
        assert [(u.storage_class, u.size_bytes) for u in await view.objects.usage(OTHER)] == [
            (COLD, 4)
        ]
    assert await census(store) == {
        (ACME, FILES, ObjectState.COMMITTED, HOT): 4,
        (OTHER, FILES, ObjectState.COMMITTED, COLD): 1,
    }


async def test_acquire_many_is_acquire_for_each_in_order(backend: Backend) -> None:
    """Duplicates in one call take a reference each and keep the first's address; a
    row without references takes the new address, one with references keeps its own."""
    store = backend.store
    held, released, fresh = digest_of(b"held"), digest_of(b"released"), digest_of(b"fresh")
    async with store.transaction() as uow:
        await uow.blobs.acquire(BlobLocation(HOT, held, "old-held"), 4)
        await uow.blobs.acquire(BlobLocation(HOT, released, "old-released"), 8)
        await uow.commit()
    async with store.transaction() as uow:
        await uow.blobs.release(HOT, released)
        await uow.commit()
    asked = sorted(
        [
            (BlobLocation(HOT, fresh, "first"), 5),
            (BlobLocation(HOT, fresh, "second"), 5),
            (BlobLocation(HOT, held, "new-held"), 4),
            (BlobLocation(HOT, released, "new-released"), 8),
            (BlobLocation(COLD, fresh), 5),
        ],
        key=lambda each: (each[0].storage_class.value, each[0].content_hash.hex),
    )
    async with store.transaction() as uow:
        got = await uow.blobs.acquire_many(asked)
        await uow.commit()
    expected = {
        ("first", HOT): "first",
        ("second", HOT): "first",
        ("new-held", HOT): "old-held",
        ("new-released", HOT): "new-released",
        (fresh.hex, COLD): fresh.hex,
    }
    assert [(g.storage_class, g.content_hash) for g in got] == [
        (b.storage_class, b.content_hash) for b, _ in asked
    ]
    assert [g.address for g in got] == [expected[(b.address, b.storage_class)] for b, _ in asked]
    refs = {}
    for cls, digest in ((HOT, fresh), (HOT, held), (HOT, released), (COLD, fresh)):
        record = await backend.blob_record(cls, digest)
        refs[(cls, digest.hex)] = record.ref_count if record else None
    assert refs == {
        (HOT, fresh.hex): 2,
        (HOT, held.hex): 2,
        (HOT, released.hex): 1,
        (COLD, fresh.hex): 1,
    }


async def test_store_inline_many_is_store_inline_for_each(backend: Backend) -> None:
    """A blob named twice is stored by its first row; one already there is not replaced."""
    store = backend.store
    there, fresh, other = digest_of(b"there"), digest_of(b"fresh"), digest_of(b"other")
    async with store.transaction() as uow:
        assert await uow.blobs.store_inline(BlobLocation(HOT, there), b"there")
        await uow.commit()
    async with store.transaction() as uow:
        stored = await uow.blobs.store_inline_many(
            [
                (BlobLocation(HOT, fresh), bytearray(b"fresh")),
                (BlobLocation(HOT, fresh), b"fresh again"),
                (BlobLocation(HOT, there), b"replaced?"),
                (BlobLocation(COLD, fresh), b"cold"),
                (BlobLocation(HOT, other), b"other"),
            ]
        )
        await uow.commit()
    assert stored == [True, False, False, True, True]
    async with store.snapshot() as view:
        assert await view.blobs.inline_data(BlobLocation(HOT, fresh)) == b"fresh"
        assert await view.blobs.inline_data(BlobLocation(HOT, there)) == b"there"
        assert await view.blobs.inline_data(BlobLocation(COLD, fresh)) == b"cold"
        assert await view.blobs.inline_data(BlobLocation(HOT, other)) == b"other"


async def test_get_by_id_is_scoped_to_the_tenant(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    version = await seed_version(store, clock, "k")
    async with store.snapshot() as view:
        assert await version_by_id(view, ACME, version.id) == version
        assert await version_by_id(view, OTHER, version.id) is None
        assert await version_by_id(view, ACME, uuid4()) is None
    assert await newest(store, "k", OTHER) is None


async def test_mark_deleting_hides_one_version(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    old = await seed_version(store, clock, "k", data=b"old")
    new = await seed_version(store, clock, "k", data=b"new")
    async with store.transaction() as uow:
        assert await uow.objects.mark_deleting(OTHER, new.id) is None
        deleted = await uow.objects.mark_deleting(ACME, new.id)
        await uow.commit()
    assert deleted is not None
    assert deleted.id == new.id
    assert deleted.state is ObjectState.DELETING
    assert deleted.content_hash == new.content_hash
    assert await newest(store, "k") == old
    async with store.snapshot() as view:
        assert await version_by_id(view, ACME, new.id) is None
    async with store.transaction() as uow:
        assert await uow.objects.mark_deleting(ACME, new.id) is None
    assert await census(store) == {
        ("acme", "files", ObjectState.COMMITTED, HOT): 1,
        ("acme", "files", ObjectState.DELETING, HOT): 1,
    }


async def test_mark_key_deleting_hides_every_version_of_that_key_only(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    v1 = await seed_version(store, clock, "k", data=b"1")
    v2 = await seed_version(store, clock, "k", data=b"2", storage_class=COLD)
    kept = await seed_version(store, clock, "k2")
    theirs = await seed_version(store, clock, "k", tenant="other")
    async with store.transaction() as uow:
        deleted = await uow.objects.mark_key_deleting(ACME, FILES, ObjectKey("k"))
        await uow.commit()
    assert {v.id for v in deleted} == {v1.id, v2.id}
    assert all(v.state is ObjectState.DELETING for v in deleted)
    assert await newest(store, "k") is None
    assert await newest(store, "k2") == kept
    assert await newest(store, "k", OTHER) == theirs
    async with store.transaction() as uow:
        assert await uow.objects.mark_key_deleting(ACME, FILES, ObjectKey("k")) == []


# --- listing --------------------------------------------------------------------------

KEYS = ["z", "é", "a", "Z", "日本", "\U0001f600", "ab", "a/b", "a b", "\u00ff", "\uffff", "zz"]


def byte_order(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


async def test_list_orders_keys_by_utf8_bytes(backend: Backend) -> None:
    for key in KEYS:
        await seed_version(backend.store, backend.clock, key)
    listed = [v.key for v in await list_all(backend.store)]
    assert listed == byte_order(KEYS)
    assert listed.index("é") > listed.index("zz")  # é is 0xC3 0xA9: after every ASCII key
    assert listed[:4] == ["Z", "a", "a b", "a/b"]
    assert listed[-1] == "\U0001f600"


async def test_list_newest_only_by_default_and_every_version_on_request(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    a1 = await seed_version(store, clock, "a", data=b"1")
    b1 = await seed_version(store, clock, "b", data=b"1")
    a2 = await seed_version(store, clock, "a", data=b"2")
    a3 = await seed_version(store, clock, "a", data=b"3")
    assert [v.id for v in await list_all(store)] == [a3.id, b1.id]
    assert [v.id for v in await list_all(store, all_versions=True)] == [a3.id, a2.id, a1.id, b1.id]


async def test_listed_summaries_are_each_versions_object_json(backend: Backend) -> None:
    """The database formats listed rows itself; they must equal `summarize` of each version."""
    store, clock = backend.store, backend.clock
    plus_one = timezone(timedelta(hours=1))
    clock.set(datetime(2026, 3, 4, 5, 6, 7, 999_999, tzinfo=plus_one))  # truncated, not rounded
    first = await seed_version(store, clock, "\u00e9/1 a", data=b"1", storage_class=COLD)
    clock.set(datetime(2026, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC))
    second = await seed_version(store, clock, "z", data=b"22")
    async with store.snapshot() as view:
        stored = [await version_by_id(view, ACME, v.id) for v in (second, first)]
    expected = sorted((summarize(v) for v in stored if v), key=lambda s: s["key"].encode())
    assert [row.summary for row in await list_all(store)] == expected
    assert [s["created_at"] for s in expected] == ["2026-12-31T23:59:59Z", "2026-03-04T04:06:07Z"]
    assert expected[0]["content_hash"] == "sha256:" + second.content_hash.hex


async def test_list_is_scoped_to_tenant_and_namespace(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    mine = await seed_version(store, clock, "k")
    await seed_version(store, clock, "k", tenant="other")
    await seed_version(store, clock, "k", namespace="models")
    assert [v.id for v in await list_all(store)] == [mine.id]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (
            "a",
            ["a", "a\U0010ffff", "a\U0010ffffx", "ab", "a\u00e9", "a\ud7ff", "a\ue000", "a%", "a_"],
        ),
        ("a\U0010ffff", ["a\U0010ffff", "a\U0010ffffx"]),
        ("\U0010ffff", ["\U0010ffff", "\U0010ffff\U0010ffff"]),
        ("\u00e9", ["\u00e9", "\u00e9t\u00e9"]),
        ("a\ud7ff", ["a\ud7ff"]),
        ("nothing", []),
    ],
)
async def test_list_prefix_is_a_literal_byte_range(
    backend: Backend, prefix: str, expected: list[str]
) -> None:
    keys = [
        "a", "ab", "a\u00e9", "a\U0010ffff", "a\U0010ffffx", "b", "\u00e9", "\u00e9t\u00e9",
        "\u00ea", "a\ud7ff", "a\ue000", "\U0010ffff", "\U0010ffff\U0010ffff", "\U0010fffe",
        "a%", "a_",
    ]  # fmt: skip
    for key in keys:
        await seed_version(backend.store, backend.clock, key)
    listed = [v.key for v in await list_all(backend.store, prefix=prefix)]
    assert listed == byte_order(expected)


async def test_list_prefix_has_no_wildcards(backend: Backend) -> None:
    for key in ["a%c", "abc", "a_c", "axc"]:
        await seed_version(backend.store, backend.clock, key)
    assert [v.key for v in await list_all(backend.store, prefix="a%")] == ["a%c"]
    assert [v.key for v in await list_all(backend.store, prefix="a_")] == ["a_c"]


async def collect_pages(store: MetadataStore, limit: int, **options: object) -> list[ListedRow]:
    seen: list[ListedRow] = []
    after = None
    for _ in range(1000):  # a cursor that does not advance fails instead of hanging
        async with store.snapshot() as view:
            page = listed_rows(
                await view.objects.list_page(
                    ListQuery(tenant_id=ACME, namespace=FILES, limit=limit, after=after, **options)
                )
            )
        assert len(page) <= limit
        seen += page
        if len(page) < limit:
            return seen
        after = ListCursor(page[-1].key, page[-1].commit_seq)
    raise AssertionError(f"still paging after 1000 pages: {seen[-3:]}")


@pytest.mark.parametrize("all_versions", [False, True])
@pytest.mark.parametrize("limit", [1, 2, 3, 7])
async def test_cursor_pages_cover_every_row_once_in_order(
    backend: Backend, all_versions: bool, limit: int
) -> None:
    store, clock = backend.store, backend.clock
    for round_ in range(3):
        for key in KEYS[: 4 + round_ * 3]:
            await seed_version(store, clock, key, data=f"{key}{round_}".encode())
    everything = await list_all(store, all_versions=all_versions)
    paged = await collect_pages(store, limit, all_versions=all_versions)
    assert [v.id for v in paged] == [v.id for v in everything]
    assert len({v.id for v in paged}) == len(paged)
    assert len(paged) == (4 + 7 + 10 if all_versions else 10)


async def test_cursor_resumes_inside_the_versions_of_one_key(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    versions = [await seed_version(store, clock, "k", data=bytes([n])) for n in range(4)]
    last = await seed_version(store, clock, "l")
    after = ListCursor("k", versions[2].commit_seq)
    rows = await list_all(store, all_versions=True, after=after)
    assert [v.id for v in rows] == [versions[1].id, versions[0].id, last.id]


async def test_cursor_combines_with_prefix(backend: Backend) -> None:
    seeded = [await seed_version(backend.store, backend.clock, k) for k in ["a1", "a2", "a3", "b1"]]
    page = await list_all(backend.store, prefix="a", after=ListCursor("a1", seeded[0].commit_seq))
    assert [v.key for v in page] == ["a2", "a3"]


async def test_newest_only_page_is_full_when_keys_have_many_versions(backend: Backend) -> None:
    """A page scanned row by row meets older versions; it must still hold `limit` keys."""
    store, clock = backend.store, backend.clock
    for round_ in range(4):
        for key in ["a", "b", "c", "d", "e"]:
            await seed_version(store, clock, key, data=f"{key}{round_}".encode())
    newest_versions = await list_all(store)
    assert [v.key for v in newest_versions] == ["a", "b", "c", "d", "e"]
    for limit in range(1, 7):
        async with store.snapshot() as view:
            page = listed_rows(
                await view.objects.list_page(
                    ListQuery(tenant_id=ACME, namespace=FILES, limit=limit)
                )
            )
        assert page == newest_versions[:limit]


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
async def test_newest_only_pages_with_a_prefix_over_keys_with_many_versions(
    backend: Backend, limit: int
) -> None:
    """Pages whose scan meets older versions are read again (a loose index scan on SQL
    backends): that read, too, keeps to the tenant, namespace, prefix and committed state."""
    store, clock = backend.store, backend.clock
    keys = ["0", "Z", "b", "b1", "b2", "b\u00e9", "bb", "c1", "\u00e9"]
    for round_ in range(3):
        for key in keys:
            await seed_version(store, clock, key, data=f"{key}{round_}".encode())
            # The same keys elsewhere: another tenant, another namespace.
            await seed_version(store, clock, key, tenant="other", data=b"other tenant")
            await seed_version(store, clock, key, namespace="other", data=b"other namespace")
    # "b1": its newest version is being deleted; "b2": every version is.
    b1 = [v for v in await list_all(store, all_versions=True, prefix="b1")]
    b2 = [v for v in await list_all(store, all_versions=True, prefix="b2")]
    async with store.transaction() as uow:
        for version_id in [b1[0].id] + [v.id for v in b2]:
            assert await uow.objects.mark_deleting(ACME, version_id) is not None
        await uow.commit()
    every_version = await list_all(store, all_versions=True, prefix="b")
    newest = [v for n, v in enumerate(every_version) if n == 0 or every_version[n - 1].key != v.key]
    assert [v.key for v in newest] == ["b", "b1", "bb", "b\u00e9"]  # UTF-8 byte order
    assert newest[1].id == b1[1].id  # b1's newest committed version
    paged = await collect_pages(store, limit, prefix="b")
    assert [v.id for v in paged] == [v.id for v in newest]


async def test_a_cursor_outside_the_prefix(backend: Backend) -> None:
    """A cursor before the prefix lists the prefix from its start; one after it, nothing."""
    store, clock = backend.store, backend.clock
    for round_ in range(2):
        for key in ["a", "b1", "b2", "c"]:
            await seed_version(store, clock, key, data=f"{key}{round_}".encode())
    for all_versions in (False, True):
        whole = await list_all(store, prefix="b", all_versions=all_versions)
        assert {v.key for v in whole} == {"b1", "b2"}
        for limit in (1, 3, 1000):
            options = {"prefix": "b", "all_versions": all_versions, "limit": limit}
            before = await list_all(store, after=ListCursor("a", 1), **options)
            assert [v.id for v in before] == [v.id for v in whole[:limit]]
            assert await list_all(store, after=ListCursor("c", 1), **options) == []


async def _commit_together(store: MetadataStore, clock: FakeClock, keys: list[str]) -> list[UUID]:
    """New versions of `keys` in one transaction, as a group-commit batch writes them."""
    ids = []
    async with store.transaction() as uow:
        for key in keys:
            upload = new_upload(key, clock)
            digest = ContentHash(hashlib.sha256(f"{key} batch".encode()).hexdigest())
            await uow.objects.add_writing(upload)
            await uow.objects.commit_upload(upload.id, digest, 5)
            await uow.blobs.acquire(BlobLocation(upload.storage_class, digest), 5)
            ids.append(upload.id)
        await uow.commit()
    return ids


async def test_a_listing_page_is_one_consistent_read(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch committed while a page is read shows in it wholly or not at all, also
    when the page's first scan met older versions and the page is read again."""
    if isinstance(backend.store, FakeMetadataStore):
        pytest.skip("the fake answers from one dict: nothing runs between its statements")
    store, clock = backend.store, backend.clock
    for n in range(3):
        old_a = await seed_version(store, clock, "a", data=bytes([n]))
    b = await seed_version(store, clock, "b")
    old_c = await seed_version(store, clock, "c")
    run_statement = SqlObjectRepository._summaries
    batch: list[UUID] = []

    async def batch_commits_after_each_statement(
        self: SqlObjectRepository, sql: str, params: Params, query: ListQuery
    ) -> list[Listed]:
        rows = await run_statement(self, sql, params, query)
        batch.extend(await _commit_together(store, clock, ["a", "c"]))
        return rows

    monkeypatch.setattr(SqlObjectRepository, "_summaries", batch_commits_after_each_statement)
    async with store.snapshot() as view:
        page = await view.objects.list_page(ListQuery(tenant_id=ACME, namespace=FILES, limit=3))
    listed = [row.id for row in listed_rows(page)]
    assert len(batch) == 4  # the scan of a's three versions was short: the page read twice
    new_a, new_c = batch[:2]
    assert listed in ([old_a.id, b.id, old_c.id], [new_a, b.id, new_c])


async def test_newest_only_listing_resumes_after_the_cursors_key(backend: Backend) -> None:
    """Even when the cursor's version went away between pages: the key was listed."""
    store, clock = backend.store, backend.clock
    await seed_version(store, clock, "k", data=b"1")
    listed = await seed_version(store, clock, "k", data=b"2")
    after = await seed_version(store, clock, "l")
    async with store.transaction() as uow:
        await uow.objects.mark_deleting(ACME, listed.id)
        await uow.commit()
    cursor = ListCursor("k", listed.commit_seq)
    assert [v.id for v in await list_all(store, after=cursor)] == [after.id]
    assert [v.id for v in await list_all(store, after=cursor, storage_class=HOT)] == [after.id]


async def test_storage_class_filter_lists_keys_whose_newest_version_has_the_class(
    backend: Backend,
) -> None:
    store, clock = backend.store, backend.clock
    h1 = await seed_version(store, clock, "mixed", data=b"1", storage_class=HOT)
    c2 = await seed_version(store, clock, "mixed", data=b"2", storage_class=COLD)
    hot = await seed_version(store, clock, "hot-only", storage_class=HOT)
    cold = await seed_version(store, clock, "cold-only", storage_class=COLD)
    assert [v.id for v in await list_all(store, storage_class=HOT)] == [hot.id]
    assert [v.id for v in await list_all(store, storage_class=COLD)] == [cold.id, c2.id]
    assert [v.id for v in await list_all(store, storage_class=HOT, all_versions=True)] == [
        hot.id,
        h1.id,
    ]
    assert [v.id for v in await list_all(store, storage_class=COLD, all_versions=True)] == [
        cold.id,
        c2.id,
    ]


async def test_list_skips_deleting_versions(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    old = await seed_version(store, clock, "k", data=b"1")
    new = await seed_version(store, clock, "k", data=b"2")
    async with store.transaction() as uow:
        await uow.objects.mark_deleting(ACME, new.id)
        await uow.commit()
    assert [v.id for v in await list_all(store)] == [old.id]
    assert [v.id for v in await list_all(store, all_versions=True)] == [old.id]


# --- usage and census -----------------------------------------------------------------


async def test_usage_counts_committed_versions_per_class(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    await seed_version(store, clock, "a", size_bytes=10)
    await seed_version(store, clock, "a", size_bytes=20)  # every version counts
    await seed_version(store, clock, "b", size_bytes=20)  # same bytes: still billed
    await seed_version(store, clock, "c", storage_class=COLD, size_bytes=5)
    gone = await seed_version(store, clock, "d", size_bytes=1000)
    await seed_version(store, clock, "e", tenant="other", size_bytes=7)
    async with store.transaction() as uow:
        await uow.objects.mark_deleting(ACME, gone.id)
        await uow.objects.add_writing(new_upload("f", clock))
        await uow.commit()
    async with store.snapshot() as view:
        usage = {u.storage_class: u for u in await view.objects.usage(ACME)}
        assert await view.objects.usage(TenantId("nobody")) == []
    assert usage == {HOT: ClassUsage(HOT, 3, 50), COLD: ClassUsage(COLD, 1, 5)}


async def test_census_counts_every_live_state(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    await seed_version(store, clock, "a", size_bytes=10)
    gone = await seed_version(store, clock, "b", storage_class=COLD, size_bytes=3)
    await seed_version(store, clock, "c", tenant="other", namespace="kb", size_bytes=4)
    async with store.transaction() as uow:
        await uow.objects.mark_deleting(ACME, gone.id)
        await uow.objects.add_writing(new_upload("w", clock))
        await uow.commit()
    async with store.snapshot() as view:
        rows = {
            (c.tenant_id, c.namespace, c.state, c.storage_class): (c.objects, c.size_bytes)
            for c in await view.objects.census()
        }
    assert rows == {
        ("acme", "files", ObjectState.COMMITTED, HOT): (1, 10),
        ("acme", "files", ObjectState.DELETING, COLD): (1, 3),
        ("acme", "files", ObjectState.WRITING, HOT): (1, 0),
        ("other", "kb", ObjectState.COMMITTED, HOT): (1, 4),
    }


async def test_namespaces_hold_committed_versions_of_the_tenant(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    await seed_version(store, clock, "a", size_bytes=10)
    await seed_version(store, clock, "a", size_bytes=20)
    await seed_version(store, clock, "b", namespace="kb", storage_class=COLD, size_bytes=3)
    await seed_version(store, clock, "c", namespace="kb", size_bytes=4)
    gone = await seed_version(store, clock, "d", namespace="gone", size_bytes=5)
    await seed_version(store, clock, "e", tenant="other", namespace="secret", size_bytes=6)
    async with store.transaction() as uow:
        await uow.objects.mark_deleting(ACME, gone.id)
        await uow.objects.add_writing(new_upload("w", clock))  # WRITING: not listed
        await uow.commit()
    async with store.snapshot() as view:
        found = sorted(await view.objects.namespaces(ACME), key=lambda n: n.namespace)
        assert await view.objects.namespaces(TenantId("nobody")) == []
    assert found == [NamespaceUsage("files", 2, 30), NamespaceUsage("kb", 2, 7)]


async def version_by_id(
    view: UnitOfWork, tenant: TenantId, object_id: UUID
) -> ObjectVersion | None:
    """The committed version by id (its located read, without the location)."""
    found = await view.objects.located(tenant, object_id)
    return None if found is None else found.version


# --- blob references ------------------------------------------------------------------


async def test_blob_references_count_up_and_down_and_stamp_the_release(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    digest = digest_of(b"blob")
    async with store.transaction() as uow:
        assert (await uow.blobs.acquire(BlobLocation(HOT, digest), 4)).address == digest.hex
        assert (await uow.blobs.acquire(BlobLocation(HOT, digest), 4)).address == digest.hex
        await uow.commit()
    created = clock.now()
    record = await backend.blob_record(HOT, digest)
    assert record == BlobRecord(4, 2, created, None)
    assert await backend.blob_record(COLD, digest) is None  # one row per (class, hash)

    clock.advance(10)
    async with store.transaction() as uow:
        await uow.blobs.release(HOT, digest)
        await uow.commit()
    assert await backend.blob_record(HOT, digest) == BlobRecord(4, 1, created, None)

    clock.advance(10)
    released = clock.now()
    async with store.transaction() as uow:
        await uow.blobs.release(HOT, digest)
        await uow.commit()
    assert await backend.blob_record(HOT, digest) == BlobRecord(4, 0, created, released)

    clock.advance(10)
    async with store.transaction() as uow:
        await uow.blobs.release(HOT, digest)  # never below zero, stamp unchanged
        await uow.blobs.release(COLD, digest)  # no row: no error
        await uow.commit()
    assert await backend.blob_record(HOT, digest) == BlobRecord(4, 0, created, released)
    assert await backend.blob_record(COLD, digest) is None


async def test_reacquiring_a_released_blob_clears_the_release_stamp(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    digest = digest_of(b"blob")
    async with store.transaction() as uow:
        await uow.blobs.acquire(BlobLocation(COLD, digest), 4)
        await uow.blobs.release(COLD, digest)
        await uow.commit()
    record = await backend.blob_record(COLD, digest)
    assert record is not None and record.ref_count == 0 and record.released_at == clock.now()
    async with store.transaction() as uow:
        await uow.blobs.acquire(BlobLocation(COLD, digest), 4)
        await uow.commit()
    record = await backend.blob_record(COLD, digest)
    assert record is not None and record.ref_count == 1 and record.released_at is None


async def test_a_blob_keeps_the_address_of_its_first_copy_until_released(
    backend: Backend,
) -> None:
    """S3 write protocol: the row records the address of the upload that created it; a
    later upload of the same bytes dedups onto it; a released row takes a new address."""
    store = backend.store
    digest = digest_of(b"blob")
    async with store.transaction() as uow:
        first = await uow.blobs.acquire(BlobLocation(COLD, digest, "blobs/first"), 4)
        assert (first.storage_class, first.content_hash, first.address) == (
            COLD,
            digest,
            "blobs/first",
        )
        second = await uow.blobs.acquire(BlobLocation(COLD, digest, "blobs/second"), 4)
        assert second.address == "blobs/first"
        assert await uow.blobs.known(COLD, stored(COLD, "blobs/first", "blobs/second")) == {
            "blobs/first"
        }
        assert await uow.blobs.known(HOT, stored(HOT, "blobs/first")) == set()
        assert await uow.blobs.known(COLD, []) == set()
        await uow.blobs.release(COLD, digest)
        await uow.blobs.release(COLD, digest)
        await uow.commit()
    async with store.snapshot() as view:
        (audit,) = await view.blobs.audit(None, 10)
        assert audit.location.address == "blobs/first"
        (released,) = await view.blobs.unreferenced(backend.clock.now(), 10)
        assert released.address == "blobs/first"
    async with store.transaction() as uow:
        third = await uow.blobs.acquire(BlobLocation(COLD, digest, "blobs/third"), 4)
        assert third.address == "blobs/third"
        await uow.commit()
    async with store.snapshot() as view:
        assert await view.blobs.known(COLD, stored(COLD, "blobs/first", "blobs/third")) == {
            "blobs/third"
        }


def stored(
    storage_class: StorageClass, *addresses: str, content: ContentHash | None = None
) -> list[StoredBlob]:
    """What a store's scan reports at these addresses (naming `content`, if given)."""
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    return [StoredBlob(storage_class, a, 1, moment, content_hash=content) for a in addresses]


async def test_a_blob_found_by_its_content_is_known_whatever_address_its_row_records(
    backend: Backend,
) -> None:
    """A file named by its hash belongs to the row of that hash, also after migrate-blobs
    recorded the copy's address on it; an address alone matches only a recorded one."""
    store = backend.store
    moved, plain = digest_of(b"moved"), digest_of(b"plain")
    async with store.transaction() as uow:
        await uow.blobs.acquire(BlobLocation(HOT, moved), 5)
        await uow.blobs.acquire(BlobLocation(HOT, plain), 5)
        assert await uow.blobs.relocate(BlobLocation(HOT, moved), "blobs/copy") is True
        await uow.commit()
    async with store.snapshot() as view:
        by_content = stored(HOT, moved.hex, content=moved) + stored(HOT, plain.hex, content=plain)
        assert await view.blobs.known(HOT, by_content) == {moved.hex, plain.hex}
        assert await view.blobs.known(COLD, by_content) == set()
        assert await view.blobs.known(HOT, stored(HOT, plain.hex, "blobs/copy")) == {"blobs/copy"}


async def test_content_addressed_rows_are_listed_in_hash_order_and_relocated_once(
    backend: Backend,
) -> None:
    """migrate-blobs: rows still at their content address, page by page; another address
    is recorded only once; a download then reads the row's address."""
    store, clock = backend.store, backend.clock
    digests = sorted((digest_of(bytes([n])) for n in range(5)), key=lambda d: d.hex)
    async with store.transaction() as uow:
        for n, digest in enumerate(digests):
            await uow.blobs.acquire(BlobLocation(HOT, digest), n)
        await uow.blobs.acquire(BlobLocation(COLD, digests[0]), 9)
        await uow.blobs.acquire(BlobLocation(HOT, digest_of(b"keyed"), "blobs/keyed"), 1)
        await uow.commit()
    async with store.snapshot() as view:
        first = await view.blobs.content_addressed(HOT, None, 3)
        rest = await view.blobs.content_addressed(HOT, first[-1][0], 10)
    assert [(loc.content_hash, size) for loc, size in first + rest] == [
        (d, n) for n, d in enumerate(digests)
    ]
    assert all(
        loc.storage_class is HOT and loc.address == loc.content_hash.hex for loc, _ in first + rest
    )
    async with store.transaction() as uow:
        assert await uow.blobs.relocate(first[0][0], "blobs/moved") is True
        assert await uow.blobs.relocate(first[0][0], "blobs/again") is False
        assert await uow.blobs.relocate(BlobLocation(HOT, digest_of(b"no row")), "x") is False
        await uow.commit()
    async with store.snapshot() as view:
        assert len(await view.blobs.content_addressed(HOT, None, 10)) == 4
        assert len(await view.blobs.content_addressed(COLD, None, 10)) == 1
    moved = next(bytes([n]) for n in range(5) if digest_of(bytes([n])) == first[0][0].content_hash)
    version = await seed_version(store, clock, "k", data=moved)
    async with store.snapshot() as view:
        found = await view.objects.located(ACME, version.id)
        newest = await view.objects.newest_located(ACME, FILES, ObjectKey("k"))
    assert found is not None and newest is not None
    assert found.version == version and newest == found
    assert found.blob.address == "blobs/moved"


# --- GC and fsck ----------------------------------------------------------------------


async def add_writing(store: MetadataStore, upload: NewUpload) -> None:
    async with store.transaction() as uow:
        await uow.objects.add_writing(upload)
        await uow.commit()


async def delete(store: MetadataStore, version: ObjectVersion) -> None:
    async with store.transaction() as uow:
        assert await uow.objects.mark_deleting(version.tenant_id, version.id) is not None
        await uow.blobs.release(version.storage_class, version.content_hash)
        await uow.commit()


async def audit_all(store: MetadataStore) -> dict[BlobLocation, BlobAudit]:
    async with store.snapshot() as view:
        return {a.location: a for a in await view.blobs.audit(None, 1000)}


async def test_writing_older_than_lists_only_writing_rows_untouched_since_the_cutoff(
    backend: Backend,
) -> None:
    store, clock = backend.store, backend.clock
    old = dataclasses.replace(new_upload("a", clock, storage_class=COLD), owner="host:1:2")
    await add_writing(store, old)
    clock.advance(1)
    older_touched = new_upload("b", clock)
    await add_writing(store, older_touched)
    committed = await seed_version(store, clock, "done")  # COMMITTED, as old as the others
    clock.advance(100)
    async with store.transaction() as uow:
        await uow.objects.touch_writing(older_touched.id)
        await uow.objects.touch_writing(committed.id)  # not WRITING: no effect
        await uow.commit()
    touched_at = clock.now()
    clock.advance(10)
    fresh = new_upload("c", clock)
    await add_writing(store, fresh)

    async with store.snapshot() as view:
        assert await view.objects.writing_older_than(clock.now() - timedelta(seconds=50), 10) == [
            WritingUpload(old.id, COLD, "host:1:2", old.created_at)
        ]
        everything = await view.objects.writing_older_than(clock.now() + timedelta(seconds=1), 10)
        assert await view.objects.writing_older_than(clock.now(), 1) == everything[:1]
        assert await view.objects.writing_among([old.id, fresh.id, committed.id, uuid4()]) == {
            old.id,
            fresh.id,
        }
        assert await view.objects.writing_among([]) == set()
    assert everything == [  # oldest first, by the last touch
        WritingUpload(old.id, COLD, "host:1:2", old.created_at),
        WritingUpload(older_touched.id, HOT, "", touched_at),
        WritingUpload(fresh.id, HOT, "", fresh.created_at),
    ]
    async with store.transaction() as uow:
        await uow.objects.discard_writing(old.id)  # what GC does with a dead upload
        await uow.commit()
    async with store.snapshot() as view:
        assert old.id not in {w.id for w in await view.objects.writing_older_than(clock.now(), 9)}
        assert await view.objects.writing_among([old.id]) == set()


async def test_finish_deletes_then_purge_deleted_after_the_cutoff(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    versions = [await seed_version(store, clock, k, data=k.encode()) for k in ("a", "b", "c")]
    for version in versions[:2]:
        await delete(store, version)
    async with store.transaction() as uow:
        assert await uow.objects.purge_deleted(clock.now() + timedelta(days=1), 10) == 0
        assert await uow.objects.finish_deletes(1) == 1
        assert await uow.objects.finish_deletes(10) == 1
        assert await uow.objects.finish_deletes(10) == 0
        await uow.commit()
    finished = clock.now()
    assert await census(store) == {("acme", "files", ObjectState.COMMITTED, HOT): 1}
    async with store.snapshot() as view:  # DELETED rows no longer count for their blob
        assert await view.objects.ids_of_blob(BlobLocation(HOT, versions[0].content_hash)) == []

    clock.advance(60)
    async with store.transaction() as uow:
        assert await uow.objects.purge_deleted(finished, 10) == 0  # not older than the cutoff
        assert await uow.objects.purge_deleted(finished + timedelta(seconds=1), 1) == 1
        assert await uow.objects.purge_deleted(finished + timedelta(seconds=1), 10) == 1
        assert await uow.objects.purge_deleted(clock.now(), 10) == 0
        await uow.commit()
    assert await newest(store, "c") == versions[2]  # COMMITTED rows are never purged


async def test_ids_of_blob_and_objects_without_a_blob_row(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    one = await seed_version(store, clock, "one", data=b"shared")
    two = await seed_version(store, clock, "two", data=b"shared")
    cold = await seed_version(store, clock, "cold", data=b"shared", storage_class=COLD)
    gone = await seed_version(store, clock, "gone", data=b"shared")
    await delete(store, gone)
    location = BlobLocation(HOT, digest_of(b"shared"))
    async with store.snapshot() as view:
        assert await view.objects.ids_of_blob(location) == sorted([one.id, two.id], key=str)
        assert await view.objects.without_blob_row(10) == []
    async with store.transaction() as uow:
        await uow.blobs.forget(location)
        await uow.commit()
    async with store.snapshot() as view:
        orphaned = await view.objects.without_blob_row(10)
        assert await view.objects.without_blob_row(1) in ([one], [two])
    assert sorted(v.id for v in orphaned) == sorted([one.id, two.id])  # not cold, not gone
    assert cold.id not in {v.id for v in orphaned}


async def test_versions_of_uploads_whose_blob_row_is_lost(backend: Backend) -> None:
    """`without_blob_row_among`: of these uploads, the COMMITTED or DELETING versions
    whose blob has no row; not a dedup hit's (its blob has a row), nor a DELETED or
    WRITING one, nor an unknown id."""
    store, clock = backend.store, backend.clock
    lost = await seed_version(store, clock, "lost", data=b"lost")
    going = await seed_version(store, clock, "going", data=b"going")
    gone = await seed_version(store, clock, "gone", data=b"gone")
    first = await seed_version(store, clock, "first", data=b"shared")
    hit = await seed_version(store, clock, "hit", data=b"shared")
    writing = new_upload("writing", clock)
    await add_writing(store, writing)
    await delete(store, going)
    await delete(store, gone)
    async with store.transaction() as uow:
        assert await uow.objects.finish_deletes(10) == 2
        await uow.commit()
    going = await seed_version(store, clock, "going2", data=b"going")
    await delete(store, going)  # DELETING, not finished
    ids = [lost.id, going.id, gone.id, first.id, hit.id, writing.id, uuid4()]
    async with store.snapshot() as view:
        assert await view.objects.without_blob_row_among(ids) == []
    async with store.transaction() as uow:
        for data in (b"lost", b"going", b"gone"):
            await uow.blobs.forget(BlobLocation(HOT, digest_of(data)))
        await uow.commit()
    async with store.snapshot() as view:
        found = await view.objects.without_blob_row_among(ids)
        assert await view.objects.without_blob_row_among([]) == []
    assert sorted((v.id, v.state) for v in found) == sorted(
        [(lost.id, ObjectState.COMMITTED), (going.id, ObjectState.DELETING)]
    )
    assert next(v for v in found if v.id == lost.id) == lost
    at_upload = BlobLocation(HOT, digest_of(b"lost"), f"blobs/{lost.id}")
    async with store.transaction() as uow:  # fsck's repair: the row again, at that address
        assert await uow.blobs.claim_orphan(at_upload, 4)
        await uow.commit()
    assert (await audit_all(store))[at_upload].location.address == f"blobs/{lost.id}"


async def test_unreferenced_honours_the_release_time_and_the_cutoff(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    first = await seed_version(store, clock, "first", data=b"first")
    second = await seed_version(store, clock, "second", data=b"second")
    await seed_version(store, clock, "kept", data=b"kept")
    await delete(store, first)
    t0 = clock.now()
    clock.advance(10)
    await delete(store, second)
    a, b = BlobLocation(HOT, first.content_hash), BlobLocation(HOT, second.content_hash)
    async with store.snapshot() as view:
        assert await view.blobs.unreferenced(t0 - timedelta(seconds=1), 10) == []
        assert await view.blobs.unreferenced(t0, 10) == [a]  # released at the cutoff: due
        assert await view.blobs.unreferenced(t0 + timedelta(seconds=5), 10) == [a]
        assert await view.blobs.unreferenced(clock.now(), 10) == [a, b]  # oldest first
        assert await view.blobs.unreferenced(clock.now(), 1) == [a]


async def test_forget_if_unreferenced_refuses_a_row_that_regained_a_reference(
    backend: Backend,
) -> None:
    store, clock = backend.store, backend.clock
    version = await seed_version(store, clock, "k", data=b"bytes")
    await delete(store, version)
    location = BlobLocation(HOT, version.content_hash)
    released = clock.now()
    clock.advance(100)
    async with store.snapshot() as view:
        assert await view.blobs.unreferenced(clock.now(), 10) == [location]
    await seed_version(store, clock, "again", data=b"bytes")  # a new reference meanwhile
    async with store.transaction() as uow:
        assert await uow.blobs.forget_if_unreferenced(location, clock.now()) is False
        await uow.commit()
    record = await backend.blob_record(HOT, version.content_hash)
    assert record is not None and record.ref_count == 1

    async with store.transaction() as uow:
        await uow.blobs.release(HOT, version.content_hash)
        await uow.commit()
    async with store.transaction() as uow:  # released too recently for this cutoff
        assert await uow.blobs.forget_if_unreferenced(location, released) is False
        await uow.commit()
    assert await backend.blob_record(HOT, version.content_hash) is not None
    async with store.transaction() as uow:
        assert await uow.blobs.forget_if_unreferenced(location, clock.now()) is True
        assert await uow.blobs.forget_if_unreferenced(location, clock.now()) is False
        await uow.commit()
    assert await backend.blob_record(HOT, version.content_hash) is None


async def test_claim_orphan_inserts_only_when_no_row_exists(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    orphan = BlobLocation(COLD, digest_of(b"orphan"))
    version = await seed_version(store, clock, "k", data=b"live")
    live = BlobLocation(HOT, version.content_hash)
    clock.advance(5)
    async with store.transaction() as uow:
        assert await uow.blobs.claim_orphan(orphan, 6) is True
        assert await uow.blobs.claim_orphan(orphan, 6) is False
        assert await uow.blobs.claim_orphan(live, 4) is False
        await uow.commit()
    assert await backend.blob_record(COLD, orphan.content_hash) == BlobRecord(
        6, 0, clock.now(), clock.now()
    )
    record = await backend.blob_record(HOT, version.content_hash)
    assert record is not None and (record.ref_count, record.released_at) == (1, None)
    async with store.transaction() as uow:
        await uow.blobs.forget(orphan)
        await uow.blobs.forget(live)  # whatever its count
        await uow.blobs.forget(BlobLocation(HOT, digest_of(b"never")))  # no row: no error
        await uow.commit()
    assert await backend.blob_record(COLD, orphan.content_hash) is None
    assert await backend.blob_record(HOT, version.content_hash) is None


async def test_known_tells_which_stored_blobs_have_a_row(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    await seed_version(store, clock, "hot", data=b"one")
    await seed_version(store, clock, "cold", data=b"two", storage_class=COLD)

    def by_content(*data: bytes) -> list[StoredBlob]:
        return [s for d in data for s in stored(HOT, digest_of(d).hex, content=digest_of(d))]

    one, two, three = (digest_of(d).hex for d in (b"one", b"two", b"three"))
    many = by_content(*(str(n).encode() for n in range(1200)))  # several IN batches
    async with store.snapshot() as view:
        assert await view.blobs.known(HOT, by_content(b"one", b"two", b"three")) == {one}
        assert await view.blobs.known(COLD, by_content(b"one", b"two")) == {two}
        assert await view.blobs.known(HOT, []) == set()
        assert await view.blobs.known(HOT, many + by_content(b"one")) == {one}


async def test_audit_pages_blob_rows_in_order_with_live_counts(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    contents = [b"a", b"b", b"c", b"d"]
    for n, data in enumerate(contents):
        await seed_version(store, clock, f"k{n}", data=data)
    extra = await seed_version(store, clock, "extra", data=b"a")
    deleted = await seed_version(store, clock, "deleted", data=b"b")
    await delete(store, deleted)
    cold = await seed_version(store, clock, "cold", data=b"cold!", storage_class=COLD)
    async with store.transaction() as uow:  # a drifted count: the audit shows both numbers
        await uow.blobs.set_ref_count(BlobLocation(HOT, digest_of(b"c")), 5)
        await uow.commit()

    expected = [BlobLocation(COLD, cold.content_hash)] + sorted(
        (BlobLocation(HOT, digest_of(d)) for d in contents), key=lambda x: x.content_hash.hex
    )
    pages = []
    after: BlobLocation | None = None
    while True:
        async with store.snapshot() as view:
            page = await view.blobs.audit(after, 2)
        pages.append(page)
        if len(page) < 2:
            break
        after = page[-1].location
    assert [len(p) for p in pages] == [2, 2, 1]
    audits = [a for p in pages for a in p]
    assert [a.location for a in audits] == expected
    by_location = {a.location: a for a in audits}
    assert by_location[BlobLocation(HOT, extra.content_hash)] == BlobAudit(
        BlobLocation(HOT, extra.content_hash), 1, 2, 2
    )
    assert by_location[BlobLocation(HOT, digest_of(b"b"))].ref_count == 1
    assert by_location[BlobLocation(HOT, digest_of(b"b"))].live_objects == 1  # not the deleted
    assert by_location[BlobLocation(HOT, digest_of(b"c"))] == BlobAudit(
        BlobLocation(HOT, digest_of(b"c")), 1, 5, 1
    )
    assert by_location[BlobLocation(COLD, cold.content_hash)].size_bytes == 5


async def test_totals_count_blob_rows_and_their_bytes(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    async with store.snapshot() as view:
        assert await view.blobs.totals() == (0, 0)
    await seed_version(store, clock, "a", data=b"12345")
    await seed_version(store, clock, "b", data=b"12345")  # same blob: one row
    version = await seed_version(store, clock, "c", data=b"123", storage_class=COLD)
    await delete(store, version)  # unreferenced rows still hold their bytes until GC
    async with store.snapshot() as view:
        assert await view.blobs.totals() == (2, 8)


async def test_set_ref_count_repairs_a_count_and_stamps_the_release_at_zero(
    backend: Backend,
) -> None:
    store, clock = backend.store, backend.clock
    version = await seed_version(store, clock, "k", data=b"data")
    location = BlobLocation(HOT, version.content_hash)
    created = clock.now()
    clock.advance(30)
    async with store.transaction() as uow:
        await uow.blobs.set_ref_count(location, 3)
        await uow.commit()
    assert await backend.blob_record(HOT, version.content_hash) == BlobRecord(4, 3, created, None)
    clock.advance(30)
    zeroed = clock.now()
    async with store.transaction() as uow:
        await uow.blobs.set_ref_count(location, 0)
        await uow.commit()
    assert await backend.blob_record(HOT, version.content_hash) == BlobRecord(4, 0, created, zeroed)
    async with store.snapshot() as view:
        assert await view.blobs.unreferenced(zeroed, 10) == [location]
    clock.advance(30)
    async with store.transaction() as uow:
        await uow.blobs.set_ref_count(location, 1)
        await uow.blobs.set_ref_count(BlobLocation(COLD, version.content_hash), 2)  # no row
        await uow.commit()
    assert await backend.blob_record(HOT, version.content_hash) == BlobRecord(4, 1, created, None)
    assert await backend.blob_record(COLD, version.content_hash) is None


async def test_a_lease_is_held_until_it_expires_or_is_released(backend: Backend) -> None:
    store, clock = backend.store, backend.clock

    async def claim(holder: str, seconds: float) -> bool:
        async with store.transaction() as uow:
            claimed = await uow.leases.claim("gc", holder, clock.now() + timedelta(seconds=seconds))
            await uow.commit()
        return claimed

    async def release(holder: str) -> None:
        async with store.transaction() as uow:
            await uow.leases.release("gc", holder)
            await uow.commit()

    assert await claim("a", 60) is True
    assert await claim("b", 60) is False  # a's lease is valid
    async with store.transaction() as uow:
        assert await uow.leases.claim("other", "b", clock.now()) is True  # another name
        await uow.commit()
    clock.advance(50)
    assert await claim("a", 60) is True  # the holder renews: now valid until +110
    clock.advance(50)
    assert await claim("b", 60) is False  # would have expired without the renewal
    clock.advance(11)
    assert await claim("b", 60) is True  # expired: taken over
    assert await claim("a", 60) is False
    await release("a")  # not the holder: nothing happens
    assert await claim("a", 60) is False
    await release("b")
    assert await claim("a", 60) is True  # free again at once
    async with store.transaction() as uow:  # a claim that is not committed holds nothing
        await uow.leases.release("gc", "a")
    assert await claim("b", 60) is False


async def test_a_lease_is_renewed_and_released_only_while_it_is_valid(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    async with store.transaction() as uow:
        assert await uow.leases.claim("part:s:a", "me", clock.now() + timedelta(seconds=60))
        assert not await uow.leases.renew("part:s:a", "other", clock.now())  # not its holder
        assert await uow.leases.renew("part:s:a", "me", clock.now() + timedelta(seconds=120))
        await uow.commit()
    clock.advance(100)  # valid thanks to the renewal
    async with store.transaction() as uow:
        assert not await uow.leases.release_valid("part:s:a", "other")
        assert await uow.leases.release_valid("part:s:a", "me")
        await uow.commit()
    async with store.transaction() as uow:
        # Released: a renewal never brings it back.
        assert not await uow.leases.renew("part:s:a", "me", clock.now() + timedelta(seconds=60))
        assert await uow.leases.named("part:") == []
        assert await uow.leases.claim("part:s:b", "me", clock.now() + timedelta(seconds=10))
        await uow.commit()
    clock.advance(11)  # lapsed: neither renewed nor released as valid
    async with store.transaction() as uow:
        assert not await uow.leases.renew("part:s:b", "me", clock.now() + timedelta(seconds=60))
        assert not await uow.leases.release_valid("part:s:b", "me")
        assert [name for name, _, _ in await uow.leases.named("part:")] == ["part:s:b"]
        await uow.commit()


async def test_a_lease_of_a_dead_holder_can_be_taken_over(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    until = clock.now() + timedelta(seconds=60)
    async with store.transaction() as uow:
        assert await uow.leases.holder_of("gc") is None
        assert await uow.leases.claim("gc", "dead", until) is True
        assert await uow.leases.holder_of("gc") == "dead"
        assert await uow.leases.claim("gc", "me", until, replacing="someone-else") is False
        assert await uow.leases.claim("gc", "me", until, replacing="dead") is True
        assert await uow.leases.holder_of("gc") == "me"
        assert await uow.leases.claim("gc", "dead", until) is False
        await uow.commit()


async def test_leases_are_listed_by_name_prefix(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    soon, past = clock.now() + timedelta(seconds=60), clock.now() - timedelta(seconds=1)
    async with store.transaction() as uow:
        await uow.leases.claim("part:s1:a", "me", soon)
        await uow.leases.claim("part:s2:b", "other", past)
        await uow.leases.claim("part%:x", "me", soon)  # no pattern: a name as it is
        await uow.leases.claim("gc", "me", soon)
        await uow.commit()
    async with store.snapshot() as view:
        found = sorted(await view.leases.named("part:"))
        assert found == [("part:s1:a", "me", soon), ("part:s2:b", "other", past)]
        assert await view.leases.named("part%") == [("part%:x", "me", soon)]
        assert await view.leases.named("none:") == []


# --- quota reservations and shared token buckets -------------------------------------


async def _reserve(
    store: MetadataStore, clock: FakeClock, rid: UUID, size: int, *, ttl: float = 60
) -> bool:
    async with store.transaction() as uow:
        reserved = await uow.quota.reserve_up_to(
            rid, ACME, size, size, 100, clock.now() + timedelta(seconds=ttl)
        )
        await uow.commit()
    return reserved is not None


async def test_reservations_and_usage_together_stay_within_the_quota(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    await seed_version(store, clock, "a", size_bytes=30)
    first, second = uuid4(), uuid4()
    assert await _reserve(store, clock, first, 50) is True
    assert await _reserve(store, clock, second, 21) is False  # 30 + 50 + 21 > 100
    assert await _reserve(store, clock, second, 20) is True
    assert await _reserve(store, clock, first, 51) is False  # growing counts the others
    async with store.transaction() as uow:  # another tenant has a quota of its own
        assert await uow.quota.reserve_up_to(uuid4(), OTHER, 100, 100, 100, clock.now()) == 100
    async with store.transaction() as uow:
        await uow.quota.settle(first)
        await uow.commit()
    assert await _reserve(store, clock, first, 50) is True  # freed, taken again


async def test_a_reservation_up_to_takes_the_room_left(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    await seed_version(store, clock, "a", size_bytes=30)
    first, second = uuid4(), uuid4()
    expires = clock.now() + timedelta(seconds=60)
    async with store.transaction() as uow:
        assert await uow.quota.reserve_up_to(first, ACME, 10, 50, 100, expires) == 50
        assert await uow.quota.reserve_up_to(second, ACME, 10, 50, 100, expires) == 20
        assert await uow.quota.reserve_up_to(first, ACME, 51, 60, 100, expires) is None
        assert await uow.quota.reserve_up_to(first, ACME, 40, 60, 100, expires) == 50
        await uow.commit()
    assert await _reserve(store, clock, uuid4(), 1) is False  # 30 + 50 + 20


async def test_a_replacements_reservation_does_not_count_the_one_it_replaces(
    backend: Backend,
) -> None:
    store, clock = backend.store, backend.clock
    stored, other = uuid4(), uuid4()
    expires = clock.now() + timedelta(seconds=60)
    async with store.transaction() as uow:
        assert await uow.quota.reserve_up_to(stored, ACME, 60, 60, 100, expires) == 60
        assert await uow.quota.reserve_up_to(other, ACME, 50, 50, 100, expires) is None
        assert (
            await uow.quota.reserve_up_to(other, ACME, 50, 50, 100, expires, replacing=stored) == 50
        )
        await uow.commit()
    assert await _reserve(store, clock, uuid4(), 1) is False  # both rows are counted


async def test_a_reservation_lapses_unless_renewed(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    held, dead = uuid4(), uuid4()
    assert await _reserve(store, clock, held, 40, ttl=60)
    assert await _reserve(store, clock, dead, 60, ttl=60)
    assert await _reserve(store, clock, uuid4(), 1) is False
    clock.advance(50)
    async with store.transaction() as uow:
        assert await uow.quota.renew(held, clock.now() + timedelta(seconds=60)) is True
        await uow.commit()
    clock.advance(20)  # `dead` lapsed, `held` did not
    async with store.transaction() as uow:
        assert await uow.quota.renew(dead, clock.now() + timedelta(seconds=60)) is False
    assert await _reserve(store, clock, uuid4(), 61) is False
    assert await _reserve(store, clock, uuid4(), 60) is True


async def test_a_rate_bucket_starts_full_grants_leases_and_goes_into_debt(
    backend: Backend,
) -> None:
    from juststorage.domain.limits import BucketAsk, BucketTake

    rate = 1e-9  # the database's clock moves on; at this rate it adds nothing

    async def take(amount: float, minimum: float, *, partial: bool = False) -> BucketTake:
        async with backend.store.transaction() as uow:
            taken = await uow.buckets.take(
                "acme", "requests", BucketAsk(rate, 5, amount, minimum, partial)
            )
            await uow.commit()
        return taken

    def about(taken: BucketTake, tokens: float, granted: float | None) -> bool:
        close = abs(taken.tokens - tokens) < 1e-3
        return (
            close
            and (granted is None) == (taken.granted is None)
            and (granted is None or abs((taken.granted or 0) - granted) < 1e-3)
        )

    assert about(await take(3, 1, partial=True), 2, 3)
    assert about(await take(3, 1, partial=True), 0, 2)  # what is left
    assert about(await take(3, 1, partial=True), 0, None)  # refused, nothing taken
    assert about(await take(10, 0), -10, 10)  # debt: admitted while not in debt
    assert about(await take(0, 0), -10, None)  # in debt: refused
    assert about(await take(-4, float("-inf")), -6, -4)  # given back
    assert about(await take(-100, float("-inf")), 5, -100)  # never above the burst
    async with backend.store.transaction() as uow:  # buckets are per tenant and resource
        other = await uow.buckets.take("acme", "upload-bytes", BucketAsk(rate, 7, 1, 1))
        assert abs(other.tokens - 6) < 1e-3


# --- API keys -------------------------------------------------------------------------


async def test_api_keys_add_get_list_revoke_count(backend: Backend) -> None:
    store, clock = backend.store, backend.clock
    first = ApiKeyRecord(
        "id1", "hash1", frozenset({"acme", "beta"}), frozenset({Scope.OBJECTS_READ}), clock.now()
    )
    clock.advance(1)
    second = ApiKeyRecord("id2", "hash2", frozenset({"*"}), frozenset(Scope), clock.now())
    async with store.transaction() as uow:
        assert await uow.api_keys.count() == 0
        await uow.api_keys.add(second)
        await uow.api_keys.add(first)
        await uow.commit()
    async with store.snapshot() as view:
        assert await view.api_keys.get("id1") == first
        assert await view.api_keys.get("nope") is None
        assert await view.api_keys.list_all() == [first, second]
        assert await view.api_keys.count() == 2

    clock.advance(5)
    async with store.transaction() as uow:
        assert await uow.api_keys.revoke("id1") is True
        assert await uow.api_keys.revoke("id1") is False  # already revoked
        assert await uow.api_keys.revoke("nope") is False
        await uow.commit()
    async with store.snapshot() as view:
        revoked = await view.api_keys.get("id1")
        assert await view.api_keys.count() == 2  # revoked keys still count
    assert revoked is not None
    assert revoked.revoked_at == clock.now()
    assert (revoked.key_hash, revoked.tenants, revoked.scopes) == (
        first.key_hash,
        first.tenants,
        first.scopes,
    )


# --- SQLite only ----------------------------------------------------------------------


async def test_sqlite_busy_database_is_unavailable_and_keeps_commits_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-durable transaction that cannot begin must not leave the connection relaxed."""
    monkeypatch.setattr(sqlite_adapter, "_BUSY_TIMEOUT_MS", 50)
    clock = FakeClock()
    first = SqliteMetadataStore(tmp_path / "meta.db", clock)
    second = SqliteMetadataStore(tmp_path / "meta.db", clock)
    try:
        await first.migrate()
        await second.ping()  # both connections exist before the contention
        async with second.transaction() as uow:
            await uow.commit()
        async with first.transaction():
            with pytest.raises(Unavailable):
                async with second.transaction(durable=False):
                    pass
        async with second.transaction() as uow:
            synchronous = await uow.session.fetchone("PRAGMA synchronous", ())
            await uow.objects.add_writing(new_upload("k", clock))
            await uow.commit()
        assert synchronous == (2,)  # FULL: every commit is fsynced
        assert await census(first) == {("acme", "files", ObjectState.WRITING, HOT): 1}
    finally:
        await first.close()
        await second.close()


async def test_holds_content_asks_only_the_tenants_committed_rows(backend: Backend) -> None:
    """Upload by hash's lookup (SPEC §8.3): this tenant, this class, this size, committed."""
    store, clock = backend.store, backend.clock
    data = digest_of(b"held")
    theirs = new_upload("theirs", clock, tenant=OTHER)
    gone = new_upload("gone", clock)
    async with store.transaction() as uow:
        await uow.objects.insert_committed(theirs, data, 4)
        await uow.objects.insert_committed(gone, digest_of(b"gone"), 4)
        await uow.commit()
    async with store.transaction() as uow:
        assert await uow.objects.mark_deleting(ACME, gone.id) is not None
        await uow.commit()
    async with store.snapshot() as view:
        assert await view.objects.holds_content(OTHER, HOT, data, 4)
        assert not await view.objects.holds_content(ACME, HOT, data, 4)
        assert not await view.objects.holds_content(OTHER, COLD, data, 4)
        assert not await view.objects.holds_content(OTHER, HOT, data, 5)
        assert not await view.objects.holds_content(OTHER, HOT, data, 3)
        assert not await view.objects.holds_content(ACME, HOT, digest_of(b"gone"), 4)


async def test_acquire_referenced_adds_a_reference_only_to_a_referenced_blob(
    backend: Backend,
) -> None:
    store = backend.store
    held, released = digest_of(b"held"), digest_of(b"released")
    async with store.transaction() as uow:
        await uow.blobs.acquire(BlobLocation(COLD, held, "blobs/held"), 4)
        await uow.blobs.acquire(BlobLocation(COLD, released, "blobs/released"), 8)
        await uow.blobs.release(COLD, released)
        await uow.commit()
    async with store.transaction() as uow:
        got = await uow.blobs.acquire_referenced(BlobLocation(COLD, held, "ignored"), 4)
        assert got == BlobLocation(COLD, held, "blobs/held")
        assert await uow.blobs.acquire_referenced(BlobLocation(COLD, held), 5) is None
        assert await uow.blobs.acquire_referenced(BlobLocation(HOT, held), 4) is None
        assert await uow.blobs.acquire_referenced(BlobLocation(COLD, released), 8) is None
        assert await uow.blobs.acquire_referenced(BlobLocation(COLD, digest_of(b"x")), 1) is None
        await uow.commit()
    async with store.snapshot() as view:
        counts = {a.location.content_hash: a.ref_count for a in await view.blobs.audit(None, 10)}
        assert counts == {held: 2, released: 0}
        (still,) = await view.blobs.unreferenced(backend.clock.now(), 10)
        assert still.content_hash == released  # its release time was left alone
