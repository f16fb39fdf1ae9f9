"""check_store on the fakes: every problem kind, repair, and `damaged` (SPEC §6)."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from fakes.blobs import FakeBlobStore
from fakes.world import FakeWorld, sha256_of
from juststorage.application.deletes import delete_object
from juststorage.application.fsck import FsckReport, Problem, ProblemKind, check_store
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import UploadResult
from juststorage.domain.model import Namespace, NewUpload, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT, COLD = StorageClass.HOT, StorageClass.COLD


sha256 = sha256_of


class World(FakeWorld):
    async def fsck(self, *, repair: bool = False, verify: bool = True) -> FsckReport:
        return await check_store(self.metadata, self.blobs, repair=repair, verify_hashes=verify)


@pytest.fixture
def world() -> World:
    return World()


def location_of(result: UploadResult) -> BlobLocation:
    return BlobLocation(result.version.storage_class, result.version.content_hash)


def kinds(report: FsckReport) -> dict[ProblemKind, Problem]:
    found = {p.kind: p for p in report.problems}
    assert len(found) == len(report.problems), report.problems  # one problem of each kind
    return found


async def test_a_healthy_store_has_no_problems(world: World) -> None:
    await world.upload("a", b"one")
    await world.upload("b", b"one")
    await world.upload("c", b"two", COLD)
    deleted = await world.upload("d", b"three")
    await delete_object(world.metadata, ACME, deleted.version.id)  # released, file kept
    for verify in (True, False):
        report = await world.fsck(verify=verify)
        assert report.problems == [] and not report.damaged
        assert (report.blobs_checked, report.bytes_checked) == (3, 11)


async def test_a_missing_blob_names_the_affected_objects(world: World) -> None:
    first = await world.upload("a", b"lost bytes")
    second = await world.upload("b", b"lost bytes")
    await world.upload("c", b"fine")
    await world.blobs.remove(HOT, location_of(first).address)
    for verify in (True, False):
        report = await world.fsck(verify=verify)
        (problem,) = report.problems
        assert problem.kind is ProblemKind.MISSING_BLOB
        assert problem.location == location_of(first)
        assert set(problem.object_ids) == {first.version.id, second.version.id}
        assert report.damaged
        line = problem.describe()
        assert line.startswith(f"missing-blob hot sha256:{first.version.content_hash.hex}")
        assert str(first.version.id) in line and str(second.version.id) in line


async def test_a_hash_mismatch_names_the_affected_objects(world: World) -> None:
    result = await world.upload("a", b"original")
    world.blobs.put(location_of(result), b"bit rot!", world.clock.now())
    report = await world.fsck()
    (problem,) = report.problems
    assert problem.kind is ProblemKind.HASH_MISMATCH
    assert problem.object_ids == (result.version.id,)
    assert sha256(b"bit rot!").hex in problem.detail
    assert report.damaged
    assert (await world.fsck(verify=False)).problems == []  # only re-hashing finds it


async def test_refcount_drift_is_found_and_repaired(world: World) -> None:
    result = await world.upload("a", b"counted")
    await world.upload("b", b"counted")
    async with world.metadata.transaction() as uow:
        await uow.blobs.set_ref_count(location_of(result), 5)
        await uow.commit()
    report = await world.fsck()
    (problem,) = report.problems
    assert problem.kind is ProblemKind.REFCOUNT_DRIFT and not problem.repaired
    assert problem.detail == "ref_count=5 live=2"
    assert report.damaged

    report = await world.fsck(repair=True)
    assert [p.repaired for p in report.problems] == [True] and not report.damaged
    record = world.metadata.blob_record(HOT, result.version.content_hash)
    assert record is not None and (record.ref_count, record.released_at) == (2, None)
    assert (await world.fsck()).problems == []


async def test_a_count_repaired_to_zero_lets_gc_count_the_grace_from_now(world: World) -> None:
    result = await world.upload("a", b"counted")
    await delete_object(world.metadata, ACME, result.version.id)
    async with world.metadata.transaction() as uow:
        await uow.blobs.set_ref_count(location_of(result), 1)  # a leaked reference
        await uow.commit()
    world.clock.advance(30)
    report = await world.fsck(repair=True)
    assert [(p.kind, p.repaired) for p in report.problems] == [(ProblemKind.REFCOUNT_DRIFT, True)]
    record = world.metadata.blob_record(HOT, result.version.content_hash)
    assert record is not None and (record.ref_count, record.released_at) == (0, world.clock.now())


async def test_a_missing_row_is_found_and_repaired(world: World) -> None:
    first = await world.upload("a", b"row lost")
    second = await world.upload("b", b"row lost")
    async with world.metadata.transaction() as uow:
        await uow.blobs.forget(location_of(first))
        await uow.commit()
    report = await world.fsck()
    (problem,) = kinds(report).values()  # the file is not reported as an orphan as well
    assert problem.kind is ProblemKind.MISSING_ROW
    assert set(problem.object_ids) == {first.version.id, second.version.id}
    assert report.damaged

    report = await world.fsck(repair=True)
    assert [(p.kind, p.repaired) for p in report.problems] == [(ProblemKind.MISSING_ROW, True)]
    assert not report.damaged
    record = world.metadata.blob_record(HOT, first.version.content_hash)
    assert record is not None and (record.ref_count, record.size_bytes) == (2, 8)
    assert (await world.fsck()).problems == []


async def test_a_lost_row_of_bytes_naming_their_upload_is_recorded_again_there() -> None:
    """On a store that addresses blobs by upload (S3), the missing row's blob is the
    bytes its upload stored: repair records the row at their address, with the live
    count; a version being deleted still names its bytes (count 0)."""
    world = World(lambda clock: FakeBlobStore(clock, by_upload=True))
    kept = await world.upload("k", b"row lost")
    going = await world.upload("g", b"deleting")
    await delete_object(world.metadata, ACME, going.version.id)
    async with world.metadata.transaction() as uow:  # damage: the blob rows are gone
        await uow.blobs.forget(location_of(kept))
        await uow.blobs.forget(location_of(going))
        await uow.commit()
    report = await world.fsck()
    assert sorted(p.describe() for p in report.problems) == sorted(
        [
            f"missing-row hot sha256:{kept.version.content_hash.hex}"
            f" address:{kept.version.id} objects={kept.version.id} file without row",
            f"missing-row hot sha256:{going.version.content_hash.hex}"
            f" address:{going.version.id} objects=- file without row",
        ]
    )
    report = await world.fsck(repair=True)
    assert [(p.kind, p.repaired) for p in report.problems] == [(ProblemKind.MISSING_ROW, True)] * 2
    record = world.metadata.blob_record(HOT, kept.version.content_hash)
    assert record is not None and (record.location, record.ref_count) == (str(kept.version.id), 1)
    record = world.metadata.blob_record(HOT, going.version.content_hash)
    assert record is not None and (record.location, record.ref_count) == (str(going.version.id), 0)
    assert (await world.fsck()).problems == []


async def test_a_committed_object_without_row_or_file_is_a_missing_blob(world: World) -> None:
    result = await world.upload("a", b"all gone")
    async with world.metadata.transaction() as uow:
        await uow.blobs.forget(location_of(result))
        await uow.commit()
    await world.blobs.remove(HOT, location_of(result).address)
    report = await world.fsck(repair=True)
    (problem,) = report.problems
    assert problem.kind is ProblemKind.MISSING_BLOB and not problem.repaired
    assert problem.object_ids == (result.version.id,)
    assert report.damaged


async def test_an_orphan_file_is_found_and_removed_by_repair(world: World) -> None:
    orphan = BlobLocation(COLD, sha256(b"no row"))
    world.blobs.put(orphan, b"no row", world.clock.now() - timedelta(days=1))
    report = await world.fsck()
    (problem,) = report.problems
    assert (problem.kind, problem.location, problem.object_ids) == (
        ProblemKind.ORPHAN_FILE,
        orphan,
        (),
    )
    assert report.damaged

    report = await world.fsck(repair=True)
    assert [p.repaired for p in report.problems] == [True] and not report.damaged
    assert world.blobs.blobs == {}
    assert world.metadata.state.blobs == {}  # the claim was undone
    assert (await world.fsck()).problems == []


async def test_an_orphan_row_is_found_and_removed_by_repair(world: World) -> None:
    result = await world.upload("a", b"gc crashed after unlink")
    await delete_object(world.metadata, ACME, result.version.id)
    await world.blobs.remove(
        HOT, location_of(result).address
    )  # as GC step 4 killed before its commit
    for verify in (True, False):
        (problem,) = (await world.fsck(verify=verify)).problems
        assert problem.kind is ProblemKind.ORPHAN_ROW and not problem.repaired

    report = await world.fsck(repair=True)
    assert [(p.kind, p.repaired) for p in report.problems] == [(ProblemKind.ORPHAN_ROW, True)]
    assert not report.damaged
    assert world.metadata.blob_record(HOT, result.version.content_hash) is None


async def test_repair_fixes_what_it_can_and_still_reports_the_damage(world: World) -> None:
    missing = await world.upload("missing", b"missing")
    corrupt = await world.upload("corrupt", b"corrupt")
    drifted = await world.upload("drifted", b"drifted")
    await world.blobs.remove(HOT, location_of(missing).address)
    world.blobs.put(location_of(corrupt), b"corrupted", world.clock.now())
    async with world.metadata.transaction() as uow:
        await uow.blobs.set_ref_count(location_of(drifted), 0)
        await uow.commit()
    world.blobs.put(BlobLocation(HOT, sha256(b"orphan")), b"orphan", world.clock.now())

    report = await world.fsck(repair=True)
    found = kinds(report)
    assert set(found) == {
        ProblemKind.MISSING_BLOB,
        ProblemKind.HASH_MISMATCH,
        ProblemKind.REFCOUNT_DRIFT,
        ProblemKind.ORPHAN_FILE,
    }
    assert {k for k, p in found.items() if p.repaired} == {
        ProblemKind.REFCOUNT_DRIFT,
        ProblemKind.ORPHAN_FILE,
    }
    assert found[ProblemKind.MISSING_BLOB].object_ids == (missing.version.id,)
    assert found[ProblemKind.HASH_MISMATCH].object_ids == (corrupt.version.id,)
    assert report.damaged

    after = await world.fsck(repair=True)
    assert {p.kind for p in after.problems} == {
        ProblemKind.MISSING_BLOB,
        ProblemKind.HASH_MISMATCH,
    }
    assert after.damaged


def test_damaged_is_true_while_any_problem_is_unrepaired() -> None:
    location = BlobLocation(HOT, sha256(b"x"))
    fixed = Problem.of_blob(ProblemKind.ORPHAN_FILE, location, repaired=True)
    open_problem = Problem.of_blob(ProblemKind.REFCOUNT_DRIFT, location)
    assert not FsckReport().damaged
    assert not FsckReport([fixed]).damaged
    assert FsckReport([fixed, open_problem]).damaged
    unrepairable = (
        ProblemKind.MISSING_BLOB,
        ProblemKind.HASH_MISMATCH,
        ProblemKind.MISSING_PART,
        ProblemKind.DAMAGED_PART,
    )
    assert not any(k.repairable for k in unrepairable)
    assert all(k.repairable for k in ProblemKind if k not in unrepairable)


async def test_fsck_pages_through_many_blobs_and_reports_progress(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from juststorage.application import fsck

    monkeypatch.setattr(fsck, "_PAGE", 2)  # page size, not a mock: every page boundary
    for n in range(5):
        await world.upload(f"k{n}", f"blob {n}".encode())
    seen: list[tuple[int, int]] = []
    report = await check_store(world.metadata, world.blobs, progress=lambda *a: seen.append(a))
    assert report.problems == [] and report.blobs_checked == 5
    assert seen == [(n, 6 * n) for n in range(1, 6)]


class RacedBlobStore(FakeBlobStore):
    """Another pass (GC, a second fsck) removes each orphan just before this one does."""

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        await super().remove(storage_class, address)
        return await super().remove(storage_class, address)


async def test_an_orphan_already_gone_when_repair_removes_it_counts_as_repaired() -> None:
    world = World(RacedBlobStore)
    orphan = BlobLocation(COLD, sha256(b"no row"))
    world.blobs.put(orphan, b"no row", world.clock.now() - timedelta(days=1))
    report = await world.fsck(repair=True)
    (problem,) = report.problems
    assert problem.kind is ProblemKind.ORPHAN_FILE and problem.repaired
    assert not report.damaged
    assert world.blobs.blobs == {} and world.metadata.state.blobs == {}


async def test_an_object_naming_its_upload_is_no_orphan_while_the_upload_is_writing() -> None:
    """On a store that addresses blobs by upload (S3), only the WRITING row tells an
    upload in flight from a crashed one's leftover."""
    world = World(lambda clock: FakeBlobStore(clock, by_upload=True))
    upload = NewUpload(uuid4(), ACME, FILES, ObjectKey("k"), HOT, "x/y", world.clock.now())
    async with world.metadata.transaction() as uow:
        await uow.objects.add_writing(upload)
        await uow.commit()
    async with world.blobs.stage(HOT, upload.id) as staged:
        await staged.write(b"sealed, not committed yet")
        await staged.seal()
        await staged.publish()
        assert (await world.fsck(repair=True)).problems == []

        async with world.metadata.transaction() as uow:
            await uow.objects.discard_writing(upload.id)
            await uow.commit()
        (problem,) = (await world.fsck(repair=True)).problems
        assert problem.kind is ProblemKind.ORPHAN_FILE and problem.repaired
        assert problem.describe() == (
            f"orphan-file hot address:{upload.id} objects=- 25 bytes, no row [repaired]"
        )
        assert world.blobs.blobs == {}
