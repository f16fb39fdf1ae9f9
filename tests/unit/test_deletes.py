"""delete_object / delete_versions on the fakes."""

from __future__ import annotations

from uuid import UUID

import pytest

from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from fakes.world import seed_version
from juststorage.application.deletes import delete_object, delete_versions
from juststorage.application.downloads import find_by_id, find_newest
from juststorage.application.listing import list_objects
from juststorage.application.records import ListQuery
from juststorage.domain.errors import NotFound
from juststorage.domain.model import Namespace, ObjectKey, ObjectState, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, OTHER, FILES = TenantId("acme"), TenantId("other"), Namespace("files")
HOT = StorageClass.HOT


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> FakeMetadataStore:
    return FakeMetadataStore(clock)


async def listed_ids(store: FakeMetadataStore) -> list[object]:
    page = await list_objects(store, ListQuery(ACME, FILES, limit=100, all_versions=True))
    return [UUID(v["id"]) for v in page.items]


async def test_delete_hides_object_before_gc(store: FakeMetadataStore, clock: FakeClock) -> None:
    version = await seed_version(store, clock, "k", data=b"bytes")
    clock.advance(30)
    deleted = await delete_object(store, ACME, version.id)
    assert deleted.id == version.id and deleted.state is ObjectState.DELETING
    with pytest.raises(NotFound):
        await find_by_id(store, ACME, version.id)
    with pytest.raises(NotFound):
        await find_newest(store, ACME, FILES, ObjectKey("k"))
    assert await listed_ids(store) == []
    record = store.blob_record(HOT, version.content_hash)
    assert record is not None
    assert (record.ref_count, record.released_at) == (0, clock.now())


async def test_second_delete_is_not_found(store: FakeMetadataStore, clock: FakeClock) -> None:
    version = await seed_version(store, clock, "k")
    await delete_object(store, ACME, version.id)
    with pytest.raises(NotFound):
        await delete_object(store, ACME, version.id)
    record = store.blob_record(HOT, version.content_hash)
    assert record is not None and record.ref_count == 0  # released once only


async def test_delete_of_another_tenants_object_is_not_found(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    version = await seed_version(store, clock, "k")
    with pytest.raises(NotFound):
        await delete_object(store, OTHER, version.id)
    assert (await find_by_id(store, ACME, version.id)).version == version
    record = store.blob_record(HOT, version.content_hash)
    assert record is not None and record.ref_count == 1


async def test_deleting_the_newest_version_exposes_the_previous_one(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    old = await seed_version(store, clock, "k", data=b"old")
    new = await seed_version(store, clock, "k", data=b"new")
    await delete_object(store, ACME, new.id)
    assert (await find_newest(store, ACME, FILES, ObjectKey("k"))).version == old


async def test_deleting_one_of_two_objects_sharing_a_blob_keeps_the_reference(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    one = await seed_version(store, clock, "one", data=b"shared")
    two = await seed_version(store, clock, "two", data=b"shared")
    await delete_object(store, ACME, one.id)
    record = store.blob_record(HOT, one.content_hash)
    assert record is not None and (record.ref_count, record.released_at) == (1, None)
    assert (await find_by_id(store, ACME, two.id)).version == two


async def test_delete_by_key_deletes_every_version(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    v1 = await seed_version(store, clock, "k", data=b"same")
    v2 = await seed_version(store, clock, "k", data=b"same")
    v3 = await seed_version(store, clock, "k", data=b"cold", storage_class=StorageClass.COLD)
    kept = await seed_version(store, clock, "kk")
    deleted = await delete_versions(store, ACME, FILES, ObjectKey("k"))
    assert {v.id for v in deleted} == {v1.id, v2.id, v3.id}
    assert await listed_ids(store) == [kept.id]
    for version in (v1, v3):
        with pytest.raises(NotFound):
            await find_by_id(store, ACME, version.id)
    same = store.blob_record(HOT, v1.content_hash)
    cold = store.blob_record(StorageClass.COLD, v3.content_hash)
    assert same is not None and (same.ref_count, same.released_at) == (0, clock.now())
    assert cold is not None and cold.ref_count == 0
    with pytest.raises(NotFound):
        await delete_versions(store, ACME, FILES, ObjectKey("k"))


async def test_delete_by_key_without_versions_is_not_found(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    await seed_version(store, clock, "k", tenant="other")
    with pytest.raises(NotFound):
        await delete_versions(store, ACME, FILES, ObjectKey("k"))
    assert (await find_newest(store, OTHER, FILES, ObjectKey("k"))).version
