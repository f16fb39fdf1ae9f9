"""list_objects on the fake store: pages, cursors, prefix, versions, class filter."""

from __future__ import annotations

from uuid import UUID

import pytest

from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from fakes.world import seed_version
from juststorage.application.deletes import delete_object
from juststorage.application.listing import ListPage, list_objects
from juststorage.application.records import ListQuery
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import Namespace, ObjectVersion, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
KEYS = ["b", "a", "é", "z", "日本/1", "a/b", "A", "\U0001f600", "a-", "zz", "ß", "0"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> FakeMetadataStore:
    return FakeMetadataStore(clock)


async def page(
    store: FakeMetadataStore, limit: int, cursor: str | None, **options: object
) -> ListPage:
    after = ListCursor.decode(cursor) if cursor else None
    query = ListQuery(ACME, FILES, limit=limit, after=after, **options)
    return await list_objects(store, query)


async def every_page(store: FakeMetadataStore, limit: int, **options: object) -> list[ListPage]:
    pages = [await page(store, limit, None, **options)]
    while pages[-1].next_cursor is not None:
        pages.append(await page(store, limit, pages[-1].next_cursor, **options))
    return pages


async def seed_three_versions_each(
    store: FakeMetadataStore, clock: FakeClock
) -> list[ObjectVersion]:
    seeded = []
    for round_ in range(3):
        for key in KEYS:
            seeded.append(await seed_version(store, clock, key, data=f"{key}{round_}".encode()))
    return seeded


def expected_order(versions: list[ObjectVersion]) -> list[ObjectVersion]:
    return sorted(versions, key=lambda v: (v.key.encode("utf-8"), -v.commit_seq))


@pytest.mark.parametrize("limit", [1, 2, 5, 12, 13, 1000])
async def test_pages_cover_every_version_exactly_once(
    store: FakeMetadataStore, clock: FakeClock, limit: int
) -> None:
    seeded = await seed_three_versions_each(store, clock)
    pages = await every_page(store, limit, all_versions=True)
    items = [v for p in pages for v in p.items]
    assert [UUID(v["id"]) for v in items] == [v.id for v in expected_order(seeded)]
    assert all(len(p.items) == limit for p in pages[:-1])
    assert 1 <= len(pages[-1].items) <= limit


@pytest.mark.parametrize("limit", [1, 3, 12])
async def test_pages_of_newest_versions_cover_every_key_once(
    store: FakeMetadataStore, clock: FakeClock, limit: int
) -> None:
    seeded = await seed_three_versions_each(store, clock)
    items = [v for p in await every_page(store, limit) for v in p.items]
    newest = {v.key: v for v in seeded}  # seeded in commit order: the last one wins
    assert [UUID(v["id"]) for v in items] == [v.id for v in expected_order(list(newest.values()))]


async def test_listing_is_in_utf8_byte_order(store: FakeMetadataStore, clock: FakeClock) -> None:
    for key in KEYS:
        await seed_version(store, clock, key)
    keys = [v["key"] for v in (await page(store, 100, None)).items]
    assert keys == ["0", "A", "a", "a-", "a/b", "b", "z", "zz", "ß", "é", "日本/1", "\U0001f600"]


async def test_last_page_has_no_cursor_even_when_it_is_full(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    for key in ["a", "b", "c", "d"]:
        await seed_version(store, clock, key)
    pages = await every_page(store, 2)
    assert [[v["key"] for v in p.items] for p in pages] == [["a", "b"], ["c", "d"]]
    assert pages[-1].next_cursor is None
    empty = await page(store, 10, None, prefix="nothing")
    assert (empty.items, empty.next_cursor) == ([], None)


async def test_prefix_lists_only_matching_keys(store: FakeMetadataStore, clock: FakeClock) -> None:
    for key in ["img/1", "img/2", "img", "imgs/1", "doc/img/1", "im"]:
        await seed_version(store, clock, key)
    pages = await every_page(store, 1, prefix="img/")
    assert [v["key"] for p in pages for v in p.items] == ["img/1", "img/2"]


async def test_storage_class_filter_uses_each_keys_newest_version(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    await seed_version(store, clock, "moved", data=b"1", storage_class=StorageClass.HOT)
    moved = await seed_version(store, clock, "moved", data=b"2", storage_class=StorageClass.COLD)
    hot = await seed_version(store, clock, "hot", storage_class=StorageClass.HOT)
    cold = (await page(store, 10, None, storage_class=StorageClass.COLD)).items
    assert [UUID(v["id"]) for v in cold] == [moved.id]
    assert [
        UUID(v["id"]) for v in (await page(store, 10, None, storage_class=StorageClass.HOT)).items
    ] == [hot.id]


async def test_deleted_versions_and_other_tenants_are_not_listed(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    gone = await seed_version(store, clock, "gone")
    kept = await seed_version(store, clock, "kept")
    await seed_version(store, clock, "theirs", tenant="other")
    await seed_version(store, clock, "elsewhere", namespace="models")
    await delete_object(store, ACME, gone.id)
    listed = await page(store, 10, None, all_versions=True)
    assert [UUID(v["id"]) for v in listed.items] == [kept.id]
