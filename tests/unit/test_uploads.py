"""upload_object on the fakes: dedup, checksums, preconditions, size limits, cleanup."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.application import uploads
from juststorage.application.downloads import find_by_id, find_newest
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import Uploader, UploadRequest, UploadResult
from juststorage.bootstrap import build
from juststorage.config import load_settings
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import (
    BadRequest,
    ChecksumMismatch,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
)
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectKey,
    ObjectState,
    StorageClass,
    TenantId,
)

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
MAX_BYTES = 1000


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.metadata = FakeMetadataStore(self.clock)
        self.blobs = FakeBlobStore()

    async def upload(
        self, key: str, chunks: Iterable[bytes] | AsyncIterator[bytes], **options: Any
    ) -> UploadResult:
        request = UploadRequest(ACME, FILES, ObjectKey(key), **options)
        body = chunks if isinstance(chunks, AsyncIterator) else stream(chunks)
        return await Uploader(
            metadata=self.metadata,
            blobs=self.blobs,
            clock=self.clock,
            max_object_bytes=MAX_BYTES,
            registration=uploads.RegistrationPolicy(),
        ).upload(request, body)

    def assert_nothing_left_in_flight(self) -> None:
        assert self.metadata.writing_ids() == set()
        assert self.blobs.temps == {}


@pytest.fixture
def world() -> World:
    return World()


async def stream(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def sha(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


async def test_upload_commits_a_readable_version(world: World) -> None:
    result = await world.upload("a/b.txt", [b"hello ", b"world"], content_type="text/plain")
    version = result.version
    assert not result.deduplicated
    assert version.state is ObjectState.COMMITTED
    assert (version.tenant_id, version.namespace, version.key) == (ACME, FILES, "a/b.txt")
    assert version.content_hash == sha(b"hello world")
    assert version.size_bytes == 11
    assert version.storage_class is StorageClass.HOT
    assert version.content_type == "text/plain"
    assert version.created_at == world.clock.now()
    assert (await find_by_id(world.metadata, ACME, version.id)).version == version
    assert (await find_newest(world.metadata, ACME, FILES, ObjectKey("a/b.txt"))).version == version
    assert world.blobs.blobs == {(StorageClass.HOT, sha(b"hello world").hex): b"hello world"}
    record = world.metadata.blob_record(StorageClass.HOT, version.content_hash)
    assert record is not None and record.ref_count == 1
    world.assert_nothing_left_in_flight()


async def test_upload_of_existing_content_reuses_blob(world: World) -> None:
    first = await world.upload("one", [b"same bytes"])
    second = await world.upload("two", [b"same ", b"bytes"])
    assert (first.deduplicated, second.deduplicated) == (False, True)
    assert second.version.content_hash == first.version.content_hash
    assert second.version.id != first.version.id
    assert len(world.blobs.blobs) == 1
    record = world.metadata.blob_record(StorageClass.HOT, first.version.content_hash)
    assert record is not None and record.ref_count == 2


async def test_same_bytes_in_another_class_are_a_separate_blob(world: World) -> None:
    await world.upload("one", [b"bytes"])
    cold = await world.upload("two", [b"bytes"], storage_class=StorageClass.COLD)
    assert not cold.deduplicated
    assert set(world.blobs.blobs) == {
        (StorageClass.HOT, sha(b"bytes").hex),
        (StorageClass.COLD, sha(b"bytes").hex),
    }


async def test_new_upload_to_a_key_is_a_new_version(world: World) -> None:
    old = (await world.upload("k", [b"v1"])).version
    world.clock.advance(5)
    new = (await world.upload("k", [b"v2"])).version
    assert new.id != old.id and new.commit_seq > old.commit_seq
    assert (await find_newest(world.metadata, ACME, FILES, ObjectKey("k"))).version == new
    assert (await find_by_id(world.metadata, ACME, old.id)).version == old  # older versions stay


async def test_empty_body_is_a_valid_object(world: World) -> None:
    version = (await world.upload("empty", [])).version
    assert version.size_bytes == 0
    assert version.content_hash == sha(b"")
    reader = await world.blobs.open(BlobLocation(StorageClass.HOT, version.content_hash))
    assert [c async for c in reader.chunks(0, 0)] == []
    await reader.close()


async def test_matching_checksum_is_accepted(world: World) -> None:
    result = await world.upload("k", [b"data"], expected_hash=sha(b"data"))
    assert result.version.content_hash == sha(b"data")


async def test_checksum_mismatch_stores_nothing(world: World) -> None:
    with pytest.raises(ChecksumMismatch):
        await world.upload("k", [b"data"], expected_hash=sha(b"other"))
    with pytest.raises(NotFound):
        await find_newest(world.metadata, ACME, FILES, ObjectKey("k"))
    assert world.blobs.blobs == {}
    assert world.metadata.state.blobs == {}
    assert world.metadata.state.objects == {}
    world.assert_nothing_left_in_flight()


async def test_if_none_match_star_creates_only(world: World) -> None:
    create_only = WritePrecondition(create_only=True)
    first = await world.upload("k", [b"1"], precondition=create_only)
    with pytest.raises(PreconditionFailed):
        await world.upload("k", [b"2"], precondition=create_only)
    assert (await find_newest(world.metadata, ACME, FILES, ObjectKey("k"))).version == first.version
    assert world.blobs.blobs.keys() == {(StorageClass.HOT, sha(b"1").hex)}
    world.assert_nothing_left_in_flight()


async def test_if_match_replaces_only_the_current_version(world: World) -> None:
    first = (await world.upload("k", [b"1"])).version
    second = await world.upload("k", [b"2"], precondition=WritePrecondition(expected=sha(b"1")))
    with pytest.raises(PreconditionFailed):  # b"1" is no longer current
        await world.upload("k", [b"3"], precondition=WritePrecondition(expected=sha(b"1")))
    assert (
        await find_newest(world.metadata, ACME, FILES, ObjectKey("k"))
    ).version == second.version
    assert second.version.commit_seq > first.commit_seq
    world.assert_nothing_left_in_flight()


async def test_if_match_on_a_key_without_versions_is_412(world: World) -> None:
    with pytest.raises(PreconditionFailed):
        await world.upload("k", [b"1"], precondition=WritePrecondition(expected=sha(b"1")))
    assert world.metadata.state.objects == {}


async def test_precondition_is_checked_again_at_commit(world: World) -> None:
    """Another upload commits while this body streams: the commit-time check catches it."""

    async def racing_body() -> AsyncIterator[bytes]:
        yield b"mine"
        await world.upload("k", [b"theirs"])
        yield b"!"

    with pytest.raises(PreconditionFailed):
        await world.upload("k", racing_body(), precondition=WritePrecondition(create_only=True))
    newest = (await find_newest(world.metadata, ACME, FILES, ObjectKey("k"))).version
    assert newest.content_hash == sha(b"theirs")
    record = world.metadata.blob_record(StorageClass.HOT, sha(b"mine!"))
    assert record is None  # no reference was taken for the refused bytes
    world.assert_nothing_left_in_flight()


async def test_declared_size_over_the_limit_is_refused_before_reading(world: World) -> None:
    read = []

    async def body() -> AsyncIterator[bytes]:
        read.append(True)
        yield b"x"

    with pytest.raises(PayloadTooLarge):
        await world.upload("k", body(), declared_size=MAX_BYTES + 1)
    assert read == []
    assert world.metadata.state.objects == {} and world.metadata.state.writing == {}


async def test_streamed_size_over_the_limit_is_refused(world: World) -> None:
    chunks = [b"x" * 600, b"y" * 600]  # no declared size (chunked)
    with pytest.raises(PayloadTooLarge):
        await world.upload("k", chunks)
    assert world.metadata.state.objects == {}
    assert world.blobs.blobs == {}
    world.assert_nothing_left_in_flight()


async def test_exactly_the_limit_is_accepted(world: World) -> None:
    result = await world.upload("k", [b"x" * MAX_BYTES], declared_size=MAX_BYTES)
    assert result.version.size_bytes == MAX_BYTES


@pytest.mark.parametrize("declared", [5, 3])
async def test_body_not_matching_its_declared_size_is_refused(world: World, declared: int) -> None:
    with pytest.raises(BadRequest):
        await world.upload("k", [b"abcd"], declared_size=declared)
    assert world.metadata.state.objects == {}
    assert world.blobs.blobs == {}
    world.assert_nothing_left_in_flight()


async def test_aborted_body_leaves_nothing_visible(world: World) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await world.upload("k", body())
    assert world.metadata.state.objects == {}
    assert world.blobs.blobs == {}
    world.assert_nothing_left_in_flight()


async def test_a_stalled_upload_keeps_its_writing_row_fresh_until_it_ends(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GC reaps WRITING rows untouched for long; a live upload whose client sends
    nothing for a while must keep touching its row, and stop once it has ended."""
    monkeypatch.setattr(uploads, "HEARTBEAT_SECONDS", 0.01)
    stalled, resume = asyncio.Event(), asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b"first part, "
        stalled.set()
        await resume.wait()  # the client sends nothing for a while
        yield b"the rest"

    upload = asyncio.ensure_future(world.upload("k", body()))  # no declared size: a row
    await stalled.wait()
    (upload_id,) = world.metadata.writing_ids()
    started = world.metadata.state.updated_at[upload_id]
    world.clock.advance(3600)
    await asyncio.sleep(0.1)
    assert world.metadata.state.updated_at[upload_id] == started + timedelta(seconds=3600)
    resume.set()
    result = await upload
    world.clock.advance(60)
    await asyncio.sleep(0.05)  # no beat after the end: the committed row is left alone
    assert world.metadata.state.updated_at[result.version.id] < world.clock.now()
    world.assert_nothing_left_in_flight()


def test_small_declared_uploads_skip_the_writing_row_unless_their_class_always_registers() -> None:
    policy = uploads.RegistrationPolicy(always=frozenset({StorageClass.COLD}))

    def registers(declared: int | None, storage_class: StorageClass) -> bool:
        request = UploadRequest(
            ACME, FILES, ObjectKey("k"), storage_class=storage_class, declared_size=declared
        )
        return policy.registers(request)

    assert registers(10, StorageClass.HOT) is False
    assert registers(None, StorageClass.HOT) is True  # size unknown: may be large
    assert registers(uploads.UNREGISTERED_MAX_BYTES + 1, StorageClass.HOT) is True
    assert registers(10, StorageClass.COLD) is True


def test_at_threshold_0_an_empty_upload_to_an_s3_class_registers() -> None:
    """Inlining off: a 0-byte body is stored on S3 too, and GC judges it by its row."""
    off = uploads.RegistrationPolicy(always=frozenset({StorageClass.COLD}), inline_max_bytes=0)
    request = UploadRequest(
        ACME, FILES, ObjectKey("k"), storage_class=StorageClass.COLD, declared_size=0
    )
    assert off.registers(request) is True


def test_bootstrap_makes_every_upload_to_an_s3_class_register(tmp_path: Path) -> None:
    """An S3 object does not name the process writing it: GC judges it by its row."""
    settings = load_settings(
        {"JUSTSTORAGE_DATA_DIR": str(tmp_path), "JUSTSTORAGE_COLD_ROOT": "s3://bucket/cold"}
    )
    services = build(settings)
    assert services.uploader.registration.always == {StorageClass.COLD}
