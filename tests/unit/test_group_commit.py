"""GroupCommitter on the fakes: shared transactions, per-upload outcomes, GC races."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from fakes.blob_index import FakeBlobIndex
from fakes.blobs import FakeStagedBlob
from fakes.liveness import FakeLiveness
from fakes.metadata import FakeUnitOfWork
from fakes.world import FakeWorld, sha256_of
from juststorage.application.commits import (
    INLINE_BATCH_BYTES,
    GroupCommitter,
    SealedUpload,
    _Waiter,
)
from juststorage.application.gc import GcPolicy, GcReport, collect_garbage
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import (
    RegistrationPolicy,
    Uploader,
    UploadRequest,
    UploadResult,
)
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import PreconditionFailed, StorageError, Unavailable
from juststorage.domain.model import Namespace, NewUpload, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _uploader(world: FakeWorld) -> Uploader:
    return Uploader(
        metadata=world.metadata,
        blobs=world.blobs,
        clock=world.clock,
        max_object_bytes=1 << 20,
        registration=RegistrationPolicy(),
    )


async def _upload(
    uploader: Uploader,
    key: str,
    data: bytes,
    precondition: WritePrecondition | None = None,
    declared_size: int | None = None,
) -> UploadResult:
    request = UploadRequest(
        ACME,
        FILES,
        ObjectKey(key),
        precondition=precondition or WritePrecondition(),
        declared_size=declared_size,
    )
    return await uploader.upload(request, _body(data))


async def test_concurrent_uploads_share_transactions() -> None:
    world = FakeWorld()
    uploader = _uploader(world)
    before = world.metadata.commits
    results = await asyncio.gather(
        *(_upload(uploader, f"k{i}", f"data {i}".encode()) for i in range(20))
    )
    assert sorted(r.version.key for r in results) == sorted(f"k{i}" for i in range(20))
    # 20 WRITING rows each commit alone; the 20 final commits share far fewer.
    final_commits = world.metadata.commits - before - 20
    assert 1 <= final_commits < 20
    for result in results:
        record = world.metadata.blob_record(StorageClass.HOT, result.version.content_hash)
        assert record is not None and record.ref_count == 1
    assert world.metadata.writing_ids() == set()


async def test_a_refused_upload_fails_alone() -> None:
    world = FakeWorld()
    uploader = _uploader(world)
    await _upload(uploader, "taken", b"first")
    outcomes = await asyncio.gather(
        _upload(uploader, "taken", b"second", WritePrecondition(create_only=True)),
        *(_upload(uploader, f"free{i}", b"same bytes") for i in range(5)),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], PreconditionFailed)
    assert all(isinstance(o, UploadResult) for o in outcomes[1:])
    record = world.metadata.blob_record(StorageClass.HOT, sha256_of(b"same bytes"))
    assert record is not None and record.ref_count == 5
    # The refused upload took no reference to its bytes.
    assert world.metadata.blob_record(StorageClass.HOT, sha256_of(b"second")) is None


async def test_uploads_of_one_key_see_each_other() -> None:
    """Two If-None-Match: * uploads of one key at once: exactly one wins."""
    world = FakeWorld()
    uploader = _uploader(world)
    only_new = WritePrecondition(create_only=True)
    outcomes = await asyncio.gather(
        _upload(uploader, "k", b"one", only_new),
        _upload(uploader, "k", b"two", only_new),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["PreconditionFailed", "UploadResult"]


async def test_confirm_republishes_a_blob_gc_took_after_publish(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GC may remove an unreferenced blob between publish() and acquire(): confirm()
    under the reference puts it back, so the committed object reads back."""
    world = FakeWorld()
    uploader = _uploader(world)
    data = b"old bytes, once unreferenced"
    location = BlobLocation(StorageClass.HOT, sha256_of(data))
    original_publish = FakeStagedBlob.publish

    async def publish_then_gc(staged: FakeStagedBlob) -> bool:
        created = await original_publish(staged)
        await world.blobs.remove(
            location.storage_class, location.address
        )  # what a GC pass racing the upload does
        return created

    monkeypatch.setattr(FakeStagedBlob, "publish", publish_then_gc)
    result = await _upload(uploader, "k", data)
    assert world.blobs.blobs[(StorageClass.HOT, location.content_hash.hex)] == data
    assert result.version.content_hash == location.content_hash


async def test_a_failing_confirm_fails_only_its_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    world = FakeWorld()
    uploader = _uploader(world)
    original_confirm = FakeStagedBlob.confirm

    async def confirm(staged: FakeStagedBlob, blob: BlobLocation, *, uow: Any) -> bool:
        if bytes(staged._buffer) == b"broken":
            raise StorageError("storage I/O error: the disk said no")
        return await original_confirm(staged, blob, uow=uow)

    monkeypatch.setattr(FakeStagedBlob, "confirm", confirm)
    outcomes = await asyncio.gather(
        *(_upload(uploader, f"k{i}", f"ok {i}".encode()) for i in range(4)),
        _upload(uploader, "bad", b"broken"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[-1], StorageError)
    assert all(isinstance(o, UploadResult) for o in outcomes[:-1])
    assert world.metadata.blob_record(StorageClass.HOT, sha256_of(b"broken")) is None
    assert world.metadata.writing_ids() == set()


class HeldConfirm:
    """`FakeStagedBlob.confirm` held inside its batch's transaction until `release` is
    set (never, if a test does not): the batch runs, its outcome unknown."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, events: list[str]) -> None:
        self.in_batch, self.release = asyncio.Event(), asyncio.Event()
        confirm = FakeStagedBlob.confirm

        async def held(staged: FakeStagedBlob, blob: BlobLocation, *, uow: Any) -> bool:
            self.in_batch.set()
            await self.release.wait()
            events.append("confirmed")
            return await confirm(staged, blob, uow=uow)

        monkeypatch.setattr(FakeStagedBlob, "confirm", held)


async def test_a_caller_cancelled_while_queued_commits_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = FakeWorld()
    uploader = _uploader(world)
    held = HeldConfirm(monkeypatch, [])  # keeps the first batch open while the second queues
    first = asyncio.ensure_future(_upload(uploader, "first", b"1"))
    await held.in_batch.wait()
    second = asyncio.ensure_future(_upload(uploader, "second", b"2"))
    await asyncio.sleep(0.01)
    second.cancel()
    held.release.set()
    assert (await first).version.key == "first"
    with pytest.raises(asyncio.CancelledError):
        await second
    assert [v.key for v in world.metadata.state.objects.values()] == ["first"]
    assert world.metadata.writing_ids() == set()


async def test_a_caller_cancelled_while_its_batch_runs_cleans_up_only_after_the_outcome(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A keyed store (S3) deletes a staged object that was not made the blob when the
    upload leaves `stage()`: that must not happen while the batch may still commit it."""
    world = FakeWorld()
    uploader = _uploader(world)
    events: list[str] = []
    held = HeldConfirm(monkeypatch, events)
    original_stage = type(world.blobs).stage

    @contextlib.asynccontextmanager
    async def recorded_stage(*args: object, **kwargs: object) -> AsyncIterator[FakeStagedBlob]:
        try:
            async with original_stage(*args, **kwargs) as staged:  # type: ignore[arg-type]
                yield staged
        finally:
            events.append("cleaned up")

    monkeypatch.setattr(type(world.blobs), "stage", recorded_stage)
    upload = asyncio.ensure_future(_upload(uploader, "k", b"bytes"))
    await held.in_batch.wait()
    upload.cancel()  # the client disconnects while its batch runs
    await asyncio.sleep(0.01)
    upload.cancel()  # and the server, shutting down, cancels it again
    await asyncio.sleep(0.01)
    assert events == [] and not upload.done()  # still waiting for the batch
    held.release.set()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert events == ["confirmed", "cleaned up"]
    assert [v.key for v in world.metadata.state.objects.values()] == ["k"]  # committed


async def test_uploads_queued_when_the_leader_is_cancelled_fail_instead_of_hanging(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = FakeWorld()
    uploader = _uploader(world)
    held = HeldConfirm(monkeypatch, [])  # never released: a batch that does not end itself
    first = asyncio.ensure_future(_upload(uploader, "first", b"1"))
    await held.in_batch.wait()
    # Declares its size: no WRITING row, so nothing holds it up before the queue.
    queued = asyncio.ensure_future(_upload(uploader, "queued", b"2", declared_size=1))
    for _ in range(100):
        await asyncio.sleep(0.001)
        if uploader.committer._queue:
            break
    assert uploader.committer._queue and uploader.committer._leader is not None
    uploader.committer._leader.cancel()  # the server stops
    done, _ = await asyncio.wait({first, queued}, timeout=5)
    assert done == {first, queued}  # neither hangs
    assert isinstance(queued.exception(), Unavailable)
    assert first.cancelled() or isinstance(first.exception(), asyncio.CancelledError)
    assert world.metadata.state.objects == {}


async def test_a_small_upload_survives_a_gc_pass_with_grace_zero_mid_upload() -> None:
    """No WRITING row: the temp file's owner keeps GC away; the object commits."""
    world = FakeWorld()
    liveness = FakeLiveness("uploader")
    seen: dict[str, object] = {}

    async def body() -> AsyncIterator[bytes]:
        yield b"first half, "
        seen["writing rows"] = set(world.metadata.writing_ids())
        seen["temp owners"] = set(world.blobs.owners.values())
        seen["gc"] = await collect_garbage(
            world.metadata, world.blobs, world.clock, GcPolicy(grace_seconds=0), liveness
        )
        yield b"second half"

    world.clock.advance(1)  # the temp file is "older" than the grace of 0
    result = await Uploader(
        metadata=world.metadata,
        blobs=world.blobs,
        clock=world.clock,
        max_object_bytes=1 << 20,
        owner="uploader",
        registration=RegistrationPolicy(),
    ).upload(UploadRequest(ACME, FILES, ObjectKey("small"), declared_size=23), body())
    assert seen["writing rows"] == set() and seen["temp owners"] == {"uploader"}
    assert isinstance(seen["gc"], GcReport) and seen["gc"].temp_files_removed == 0
    assert result.version.size_bytes == 23
    record = world.metadata.blob_record(StorageClass.HOT, result.version.content_hash)
    assert record is not None and record.ref_count == 1
    assert world.blobs.temps == {}


async def test_uploads_queued_behind_a_batch_the_database_refused_fail_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """They would only wait a whole transaction more (the database's timeouts) for
    the same answer: the SPEC's 503 comes within 5 s."""
    world = FakeWorld()
    uploader = _uploader(world)
    held = HeldConfirm(monkeypatch, [])
    refused = Unavailable("the database is unavailable: no answer in time")

    async def refuse(uow: FakeUnitOfWork) -> None:
        raise refused

    monkeypatch.setattr(FakeUnitOfWork, "commit", refuse)
    first = asyncio.ensure_future(_upload(uploader, "first", b"1", declared_size=1))
    await held.in_batch.wait()
    queued = asyncio.ensure_future(_upload(uploader, "queued", b"2", declared_size=1))
    for _ in range(100):
        await asyncio.sleep(0.001)
        if uploader.committer._queue:
            break
    assert uploader.committer._queue
    begun: list[FakeUnitOfWork] = []
    transaction = world.metadata.transaction

    def counted(*, durable: bool = True) -> FakeUnitOfWork:
        begun.append(transaction(durable=durable))
        return begun[-1]

    monkeypatch.setattr(world.metadata, "transaction", counted)
    held.release.set()
    done, _ = await asyncio.wait({first, queued}, timeout=5)
    assert done == {first, queued}
    assert first.exception() is refused and queued.exception() is refused
    assert begun == []  # the queued upload began no transaction of its own
    assert world.metadata.state.objects == {}


async def test_a_batch_holds_a_bounded_number_of_inline_bytes() -> None:
    """Inline bodies beyond INLINE_BATCH_BYTES wait for the next batch; the key order
    holds (a later upload of a waiting key never jumps ahead of it)."""
    now = datetime.now(UTC)

    class _Staged:
        def __init__(self, address: str) -> None:
            self.address = address

    def sealed(key: str, size: int, inline: bool) -> SealedUpload:
        upload = NewUpload(uuid.uuid4(), ACME, FILES, ObjectKey(key), StorageClass.HOT, "x/y", now)
        return SealedUpload(
            upload=upload,
            registered=False,
            content_hash=sha256_of(key.encode()),
            size_bytes=size,
            precondition=WritePrecondition(),
            staged=_Staged(("inline:" if inline else "") + "ab" * 32),  # type: ignore[arg-type]
        )

    big = INLINE_BATCH_BYTES // 2 + 1
    committer = GroupCommitter(FakeWorld().metadata)
    queue = [
        sealed("a", big, inline=True),
        sealed("b", big, inline=True),  # over the budget with "a": waits
        sealed("b", 10, inline=True),  # same key as the waiting one: waits too
        sealed("c", 10 << 20, inline=False),  # a file: costs the budget nothing
        sealed("d", 10, inline=True),
    ]
    committer._queue = [_Waiter(s) for s in queue]
    first = [str(w.sealed.upload.key) for w in committer._take_batch()]
    assert first == ["a", "c", "d"]
    second = [(str(w.sealed.upload.key), w.sealed.size_bytes) for w in committer._take_batch()]
    assert second == [("b", big)]
    assert [w.sealed.size_bytes for w in committer._take_batch()] == [10]


async def test_a_failing_inline_row_fails_only_its_upload(monkeypatch: pytest.MonkeyPatch) -> None:
    # As with blobs kept in the database: the batch writes their rows in one statement;
    # one row the database refuses fails its upload, not the others of the batch.
    world = FakeWorld()
    uploader = _uploader(world)

    def inline_bytes(staged: FakeStagedBlob, blob: BlobLocation) -> bytes:
        return bytes(staged._buffer)

    async def confirm(staged: FakeStagedBlob, blob: BlobLocation, *, uow: Any) -> bool:
        stored: bool = await uow.blobs.store_inline(blob, staged._buffer)
        return stored

    real_store_inline = FakeBlobIndex.store_inline

    async def store_inline(index: FakeBlobIndex, blob: BlobLocation, data: Any) -> bool:
        if bytes(data) == b"broken":
            raise StorageError("the database refused the row")
        return await real_store_inline(index, blob, data)

    monkeypatch.setattr(FakeStagedBlob, "inline_bytes", inline_bytes)
    monkeypatch.setattr(FakeStagedBlob, "confirm", confirm)
    monkeypatch.setattr(FakeBlobIndex, "store_inline", store_inline)
    outcomes = await asyncio.gather(
        *(_upload(uploader, f"k{i}", f"ok {i}".encode()) for i in range(4)),
        _upload(uploader, "bad", b"broken"),
        return_exceptions=True,
    )
    assert isinstance(outcomes[-1], StorageError)
    assert all(isinstance(o, UploadResult) for o in outcomes[:-1]), outcomes
