"""collect_garbage on the fakes, with a FakeClock (SPEC §5, docs/durability.md)."""

from __future__ import annotations

import errno
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import anyio
import pytest
from anyio.abc import TaskGroup

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.liveness import FakeLiveness
from fakes.world import FakeWorld, seed_version, sha256_of
from juststorage.adapters.blobs import filesystem
from juststorage.adapters.blobs.filesystem import FilesystemBlobStore
from juststorage.application.blob_ports import BlobStore
from juststorage.application.deletes import delete_object
from juststorage.application.downloads import find_by_id
from juststorage.application.gc import GC_LEASE, GcPolicy, GcReport, collect_garbage
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import UploadResult
from juststorage.domain.errors import NotFound, StorageError
from juststorage.domain.model import (
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectState,
    StorageClass,
    TenantId,
)

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT, COLD = StorageClass.HOT, StorageClass.COLD


sha256 = sha256_of


class World(FakeWorld):
    def __init__(self, blobs: Callable[[FakeClock], BlobStore] = FakeBlobStore) -> None:
        super().__init__(blobs)
        self.liveness = FakeLiveness("me")

    @property
    def fake_blobs(self) -> FakeBlobStore:
        assert isinstance(self.blobs, FakeBlobStore)
        return self.blobs

    async def gc(self, grace: float, *, batch: int = 500) -> GcReport:
        policy = GcPolicy(grace_seconds=grace, batch=batch)
        return await collect_garbage(self.metadata, self.blobs, self.clock, policy, self.liveness)

    async def has_file(self, location: BlobLocation) -> bool:
        try:
            reader = await self.blobs.open(location)
        except NotFound:
            return False
        await reader.close()
        return True

    async def add_writing(self, key: str, owner: str = "elsewhere") -> NewUpload:
        upload = NewUpload(
            uuid4(), ACME, FILES, ObjectKey(key), HOT, "x/y", self.clock.now(), owner=owner
        )
        async with self.metadata.transaction() as uow:
            await uow.objects.add_writing(upload)
            await uow.commit()
        return upload

    async def claim_lease(self, holder: str, seconds: float = 600) -> bool:
        async with self.metadata.transaction() as uow:
            claimed = await uow.leases.claim(
                GC_LEASE, holder, self.clock.now() + timedelta(seconds=seconds)
            )
            await uow.commit()
        return claimed

    def states(self) -> dict[ObjectState, int]:
        counts: dict[ObjectState, int] = {}
        for version in self.metadata.state.objects.values():
            counts[version.state] = counts.get(version.state, 0) + 1
        return counts


@pytest.fixture
def world() -> World:
    return World()


def location_of(result: UploadResult) -> BlobLocation:
    return BlobLocation(result.version.storage_class, result.version.content_hash)


async def test_a_released_blob_survives_the_grace_period(world: World) -> None:
    result = await world.upload("k", b"bytes")
    await delete_object(world.metadata, ACME, result.version.id)
    world.clock.advance(10)

    report = await world.gc(60)
    assert report.ran and report.blobs_removed == 0 and report.removed_hashes == []
    assert await world.has_file(location_of(result))
    assert world.metadata.blob_record(HOT, result.version.content_hash) is not None

    report = await world.gc(0)
    assert report.blobs_removed == 1
    assert report.removed_hashes == [result.version.content_hash.hex]
    assert not await world.has_file(location_of(result))
    assert world.metadata.blob_record(HOT, result.version.content_hash) is None


async def test_the_grace_counts_from_the_release_not_from_the_upload(world: World) -> None:
    result = await world.upload("k", b"bytes")
    world.clock.advance(3600)  # an old blob ...
    await delete_object(world.metadata, ACME, result.version.id)
    world.clock.advance(59)  # ... released 59 s ago
    assert (await world.gc(60)).blobs_removed == 0
    world.clock.advance(1)
    assert (await world.gc(60)).blobs_removed == 1
    assert not await world.has_file(location_of(result))


async def test_referenced_and_shared_blobs_are_kept(world: World) -> None:
    first = await world.upload("a", b"shared")
    second = await world.upload("b", b"shared")
    assert second.deduplicated
    await delete_object(world.metadata, ACME, first.version.id)
    world.clock.advance(10_000)
    report = await world.gc(0)
    assert report.blobs_removed == report.orphan_blobs_removed == 0
    assert await world.has_file(location_of(second))
    assert (
        await find_by_id(world.metadata, ACME, second.version.id)
    ).version.id == second.version.id


async def test_writing_rows_of_dead_owners_are_reaped_once_past_the_grace(world: World) -> None:
    dead = await world.add_writing("dead", owner="crashed")
    alive = await world.add_writing("alive", owner="running")  # a long upload, heartbeating
    world.liveness.dead.add("crashed")
    world.clock.advance(50)
    async with world.metadata.transaction() as uow:
        await uow.objects.touch_writing(alive.id)
        await uow.commit()
    world.clock.advance(20)
    fresh = await world.add_writing("fresh", owner="crashed")  # dead, but not for long

    report = await world.gc(60)
    assert report.expired_uploads == 1
    assert world.metadata.writing_ids() == {alive.id, fresh.id}
    assert dead.id not in world.metadata.writing_ids()

    world.clock.advance(1)
    report = await world.gc(0)  # grace 0: every upload of a dead owner goes
    assert report.expired_uploads == 1
    assert world.metadata.writing_ids() == {alive.id}


async def test_an_owner_gc_cannot_check_is_taken_for_dead_only_after_a_silence(
    world: World,
) -> None:
    silent = await world.add_writing("silent", owner="other-machine")
    world.clock.advance(299)
    assert (await world.gc(0)).expired_uploads == 0  # might still be streaming
    world.clock.advance(2)
    assert (await world.gc(0)).expired_uploads == 1
    assert silent.id not in world.metadata.writing_ids()


async def test_many_stale_rows_are_reaped_in_one_pass(world: World) -> None:
    """SPEC §5: one pass (grace 0, idle store) leaves no WRITING row of a dead upload."""
    world.liveness.dead.add("crashed")
    for n in range(7):
        await world.add_writing(f"k{n}", owner="crashed")
    world.clock.advance(1)
    report = await world.gc(0, batch=3)
    assert report.expired_uploads == 7
    assert world.metadata.writing_ids() == set()


async def test_old_temp_files_without_an_upload_are_removed_and_others_kept(
    world: World,
) -> None:
    clock, blobs = world.clock, world.fake_blobs
    live = await world.add_writing("live", owner="me")
    old, fresh, cold = uuid4(), uuid4(), uuid4()
    blobs.temps[(HOT, old)] = clock.now() - timedelta(seconds=61)
    blobs.temps[(COLD, cold)] = clock.now() - timedelta(seconds=3600)
    blobs.temps[(HOT, fresh)] = clock.now() - timedelta(seconds=59)
    blobs.temps[(HOT, live.id)] = clock.now() - timedelta(seconds=3600)  # still has its row

    report = await world.gc(60)
    assert report.temp_files_removed == 2
    assert set(blobs.temps) == {(HOT, fresh), (HOT, live.id)}
    clock.advance(1)
    assert (await world.gc(0)).temp_files_removed == 1
    assert set(blobs.temps) == {(HOT, live.id)}


async def test_temp_files_named_after_a_live_owner_are_kept_whatever_the_grace(
    world: World,
) -> None:
    """Small uploads write no WRITING row: the owner in the temp name protects them."""
    clock, blobs = world.clock, world.fake_blobs
    mine, dead, remote = uuid4(), uuid4(), uuid4()
    world.liveness.dead.add("crashed")
    for upload_id, owner in ((mine, "me"), (dead, "crashed"), (remote, "elsewhere")):
        blobs.temps[(HOT, upload_id)] = clock.now() - timedelta(seconds=10)
        blobs.owners[(HOT, upload_id)] = owner

    report = await world.gc(0)
    assert report.temp_files_removed == 1  # only the dead owner's
    assert set(blobs.temps) == {(HOT, mine), (HOT, remote)}
    # An owner this machine cannot judge is judged by age, as its WRITING row would be.
    clock.advance(GcPolicy(grace_seconds=0).remote_owner_seconds + 1)
    assert (await world.gc(0)).temp_files_removed == 2
    assert blobs.temps == {}


async def test_deleting_rows_become_deleted_and_are_purged_after_the_grace(
    world: World,
) -> None:
    kept = await world.upload("kept", b"kept")
    for key in ("a", "b"):
        result = await world.upload(key, key.encode())
        await delete_object(world.metadata, ACME, result.version.id)
    assert world.states() == {ObjectState.COMMITTED: 1, ObjectState.DELETING: 2}

    report = await world.gc(60)
    assert (report.deletes_finished, report.deleted_rows_purged) == (2, 0)
    assert world.states() == {ObjectState.COMMITTED: 1, ObjectState.DELETED: 2}
    world.clock.advance(61)
    report = await world.gc(60)
    assert (report.deletes_finished, report.deleted_rows_purged) == (0, 2)
    assert world.states() == {ObjectState.COMMITTED: 1}
    assert (await find_by_id(world.metadata, ACME, kept.version.id)).version.id == kept.version.id


async def test_an_orphan_blob_file_goes_only_once_older_than_the_grace(world: World) -> None:
    clock, blobs = world.clock, world.fake_blobs
    data = b"published, then the process died before its commit"
    orphan = BlobLocation(COLD, sha256(data))
    blobs.put(orphan, data, clock.now() - timedelta(seconds=30))

    report = await world.gc(60)
    assert report.orphan_blobs_removed == 0 and await world.has_file(orphan)
    clock.advance(31)
    report = await world.gc(60)
    assert report.orphan_blobs_removed == 1
    assert report.removed_hashes == [orphan.content_hash.hex]
    assert not await world.has_file(orphan)
    assert world.metadata.blob_record(COLD, orphan.content_hash) is None  # claim undone


async def test_grace_zero_on_an_idle_store_leaves_nothing_unreferenced(world: World) -> None:
    result = await world.upload("k", b"deleted")
    kept = await world.upload("kept", b"kept")
    await delete_object(world.metadata, ACME, result.version.id)
    world.liveness.dead.add("crashed")
    await world.add_writing("stale", owner="crashed")
    world.fake_blobs.temps[(HOT, uuid4())] = world.clock.now() - timedelta(seconds=1)
    world.fake_blobs.put(BlobLocation(HOT, sha256(b"orphan")), b"orphan", world.clock.now())
    world.clock.advance(1)

    report = await world.gc(0)
    assert (report.expired_uploads, report.temp_files_removed) == (1, 1)
    assert (report.blobs_removed, report.orphan_blobs_removed) == (1, 1)
    assert world.metadata.writing_ids() == set() and world.fake_blobs.temps == {}
    assert set(world.fake_blobs.blobs) == {(HOT, kept.version.content_hash.hex)}
    assert set(world.metadata.state.blobs) == {(HOT, kept.version.content_hash.hex)}


class InterleavingBlobStore(FakeBlobStore):
    """Starts `meanwhile` as a concurrent task at the first removal (GC holds a row lock)."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.meanwhile: Callable[[], Awaitable[object]] | None = None
        self.task_group: TaskGroup | None = None

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        if self.meanwhile is not None and self.task_group is not None:
            self.task_group.start_soon(self.meanwhile)
            self.meanwhile = None
            await anyio.sleep(0)  # it runs until it queues for the database's write lock
        return await super().remove(storage_class, address)


async def test_a_blob_that_regains_a_reference_after_listing_is_kept() -> None:
    world = World(InterleavingBlobStore)
    clock, blobs = world.clock, world.blobs
    assert isinstance(blobs, InterleavingBlobStore)
    first = await world.upload("first", b"first")
    second = await world.upload("second", b"second")
    await delete_object(world.metadata, ACME, first.version.id)
    clock.advance(1)
    await delete_object(world.metadata, ACME, second.version.id)
    clock.advance(100)
    # GC lists both; while it removes the first, another writer references the second.
    async with anyio.create_task_group() as tg:
        blobs.task_group = tg
        blobs.meanwhile = lambda: seed_version(world.metadata, clock, "again", data=b"second")
        report = await world.gc(60)

    assert report.removed_hashes == [first.version.content_hash.hex]
    assert not await world.has_file(location_of(first))
    assert await world.has_file(location_of(second))
    record = world.metadata.blob_record(HOT, second.version.content_hash)
    assert record is not None and record.ref_count == 1


async def test_a_file_whose_count_drifted_to_zero_is_kept_while_objects_use_it(
    world: World,
) -> None:
    """SPEC §5: a blob file goes only when no committed object references it."""
    result = await world.upload("k", b"still needed")
    async with world.metadata.transaction() as uow:  # damage: a count lower than the truth
        await uow.blobs.set_ref_count(location_of(result), 0)
        await uow.commit()
    world.clock.advance(10_000)
    report = await world.gc(0)
    assert report.blobs_removed == 0
    assert await world.has_file(location_of(result))


async def test_a_file_whose_row_was_lost_is_kept_while_objects_use_it(world: World) -> None:
    """Only a file no committed object references is an orphan, whatever the rows say."""
    result = await world.upload("k", b"still needed")
    async with world.metadata.transaction() as uow:  # damage: the blob row is gone
        await uow.blobs.forget(location_of(result))
        await uow.commit()
    world.clock.advance(10_000)
    report = await world.gc(0)
    assert report.orphan_blobs_removed == 0
    assert await world.has_file(location_of(result))


async def test_a_pass_is_skipped_while_another_holder_has_the_lease(world: World) -> None:
    result = await world.upload("k", b"bytes")
    await delete_object(world.metadata, ACME, result.version.id)
    assert await world.claim_lease("other", seconds=600)
    world.clock.advance(100)

    report = await world.gc(0)
    assert report == GcReport(ran=False)
    assert await world.has_file(location_of(result))
    assert world.states() == {ObjectState.DELETING: 1}  # nothing at all was done

    world.clock.advance(501)  # the other holder died: its lease expired
    report = await world.gc(0)
    assert report.ran and report.blobs_removed == 1


async def test_the_lease_of_a_dead_holder_is_taken_over_at_once(world: World) -> None:
    assert await world.claim_lease("killed-mid-pass")
    world.liveness.dead.add("killed-mid-pass")
    assert (await world.gc(0)).ran
    assert world.metadata.state.leases == {}


async def test_the_lease_is_released_after_a_pass(world: World) -> None:
    assert (await world.gc(0)).ran
    assert world.metadata.state.leases == {}
    assert await world.claim_lease("other")  # free at once, long before it would expire


async def test_the_lease_is_released_when_a_pass_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FilesystemBlobStore({HOT: tmp_path / "hot", COLD: tmp_path / "cold"})
    await store.prepare()
    world = World(lambda clock: store)
    result = await world.upload("k", b"bytes")
    await delete_object(world.metadata, ACME, result.version.id)

    def eio(*args: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(filesystem.os, "unlink", eio)
    with pytest.raises(StorageError):
        await world.gc(0)
    monkeypatch.undo()
    assert world.metadata.state.leases == {}
    record = world.metadata.blob_record(HOT, result.version.content_hash)
    assert record is not None  # the removal's transaction rolled back: the row remains
    assert await world.claim_lease("other")
    async with world.metadata.transaction() as uow:
        await uow.leases.release(GC_LEASE, "other")
        await uow.commit()
    assert (await world.gc(0)).blobs_removed == 1  # the next pass finishes the job
    assert not store.path_of(location_of(result)).exists()


async def test_a_row_whose_address_this_store_cannot_remove_is_counted_once(
    world: World,
) -> None:
    """A row migrated to another store's address (migrate-blobs) while this store still
    holds the file at its hash: the row's removal finds nothing to remove, so only the
    orphan step's removal of the file counts."""
    result = await world.upload("k", b"migrated away")
    async with world.metadata.transaction() as uow:
        assert await uow.blobs.relocate(location_of(result), "elsewhere/3f2a")
        await uow.commit()
    await delete_object(world.metadata, ACME, result.version.id)
    world.clock.advance(100)

    report = await world.gc(60)
    assert (report.blobs_removed, report.orphan_blobs_removed) == (0, 1)
    assert report.removed_hashes == [result.version.content_hash.hex]
    assert not await world.has_file(location_of(result))
    assert world.metadata.blob_record(HOT, result.version.content_hash) is None


async def test_an_object_naming_its_upload_stays_while_the_upload_is_writing() -> None:
    """On a store that addresses blobs by upload (S3), a sealed object no row names
    yet belongs to its upload while the upload's WRITING row lives, however old;
    once the upload is reaped (its owner died), the object is an orphan."""
    world = World(lambda clock: FakeBlobStore(clock, by_upload=True))
    upload = await world.add_writing("k", owner="uploader")
    async with world.blobs.stage(HOT, upload.id, "uploader") as staged:
        await staged.write(b"sealed, not committed yet")
        await staged.seal()
        await staged.publish()
        world.clock.advance(100)

        report = await world.gc(60)
        assert (report.expired_uploads, report.orphan_blobs_removed) == (0, 0)
        assert (HOT, staged.address) in world.fake_blobs.blobs

        world.liveness.dead.add("uploader")
        report = await world.gc(60)
        assert (report.expired_uploads, report.orphan_blobs_removed) == (1, 1)
        assert world.fake_blobs.blobs == {}


async def test_an_object_naming_its_upload_whose_row_was_lost_is_kept() -> None:
    """On a store that addresses blobs by upload (S3), bytes whose upload committed a
    version whose blob row was lost (damage) are that blob: kept, as on the filesystem
    (fsck records the row again). A dedup hit's own copy is still an orphan: its
    version's blob has a row, at the older copy."""
    world = World(lambda clock: FakeBlobStore(clock, by_upload=True))
    first = await world.upload("a", b"shared")
    hit = await world.upload("b", b"shared")
    assert hit.deduplicated
    # A crash before the dedup hit removed its fresh copy leaves it behind.
    left = BlobLocation(HOT, hit.version.content_hash, str(hit.version.id))
    world.fake_blobs.put(left, b"shared", world.clock.now())
    lost = await world.upload("c", b"row lost")
    async with world.metadata.transaction() as uow:  # damage: the blob row is gone
        await uow.blobs.forget(location_of(lost))
        await uow.commit()
    world.clock.advance(100)

    report = await world.gc(60)
    assert report.orphan_blobs_removed == 1
    assert set(world.fake_blobs.blobs) == {
        (HOT, str(first.version.id)),
        (HOT, str(lost.version.id)),
    }
