"""The inline store's staging (SPEC §8.1): a body is held in memory only up to the
threshold; past it, everything goes on to the larger store, and the bytes kept
inline are written only through the commit's unit of work."""

from __future__ import annotations

import asyncio
import hashlib
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast
from uuid import uuid4

import pytest

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.adapters.blobs.inline import InlineBlobStore, InlineStagedBlob
from juststorage.application.ports import UnitOfWork
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import RegistrationPolicy, Uploader, UploadRequest
from juststorage.config import SettingsError, load_settings
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

HOT = StorageClass.HOT
LIMIT = 1000


def _store() -> tuple[InlineBlobStore, FakeBlobStore, FakeMetadataStore]:
    clock = FakeClock()
    metadata, larger = FakeMetadataStore(clock), FakeBlobStore(clock)
    return InlineBlobStore(metadata, larger, LIMIT), larger, metadata


def _held(staged: InlineStagedBlob) -> int:
    return len(staged._buffer)


@pytest.mark.parametrize("piece", [1, 100, 999, 1001, 5000])
async def test_a_body_over_the_threshold_spills_without_holding_more_than_it(
    piece: int,
) -> None:
    store, larger, _ = _store()
    data = bytes(range(256)) * 20  # 5120 bytes
    async with store.stage(HOT, uuid4()) as staged:
        for start in range(0, len(data), piece):
            await staged.write(data[start : start + piece])
            assert _held(staged) <= LIMIT
            assert staged.spilled == (start + piece > LIMIT)
        digest, size = await staged.seal()
        assert (digest.hex, size) == (hashlib.sha256(data).hexdigest(), len(data))
        assert staged.address == digest.hex  # the larger store's address
        assert await staged.publish() is True
    assert larger.blobs == {(HOT, digest.hex): data}


async def test_a_body_at_the_threshold_stays_in_memory_until_its_commit() -> None:
    store, larger, metadata = _store()
    data = b"x" * LIMIT
    location = BlobLocation(HOT, ContentHash(hashlib.sha256(data).hexdigest()))
    async with store.stage(HOT, uuid4()) as staged:
        await staged.write(data)
        await staged.seal()
        assert not staged.spilled and staged.address == f"inline:{location.content_hash.hex}"
        assert await staged.publish() is False  # nothing stored outside the transaction
        inline = BlobLocation(HOT, location.content_hash, staged.address)
        with pytest.raises(TypeError):
            await staged.confirm(inline)  # type: ignore[call-arg]  # only through a commit's
        async with metadata.transaction() as uow:
            assert await staged.confirm(location, uow=uow) is False  # a dedup hit on a file
            assert await staged.confirm(inline, uow=uow) is True
            await uow.commit()
    assert larger.blobs == {} and larger.temps == {}
    async with metadata.snapshot() as view:
        assert await view.blobs.inline_data(location) == data


async def test_concurrent_small_uploads_share_commits_and_store_nothing_outside() -> None:
    store, larger, metadata = _store()
    uploader = Uploader(
        metadata=metadata,
        blobs=store,
        clock=metadata.clock,
        max_object_bytes=1 << 20,
        registration=RegistrationPolicy(inline_max_bytes=LIMIT),
    )

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async def put(i: int) -> None:
        data = f"small object {i}".encode()
        request = UploadRequest(
            TenantId("acme"), Namespace("n"), ObjectKey(f"k{i}"), declared_size=len(data)
        )
        await uploader.upload(request, body(data))

    await asyncio.gather(*(put(i) for i in range(20)))
    # No WRITING row and no file: one commit per batch, however many uploads it holds.
    assert 1 <= metadata.commits <= 2
    assert larger.blobs == {} and larger.temps == {}
    async with metadata.snapshot() as view:
        assert len(await view.blobs.inline_stored(HOT, "", 100)) == 20


def test_uploads_declared_up_to_the_threshold_write_no_writing_row_even_on_s3() -> None:
    policy = RegistrationPolicy(always=frozenset({HOT}), inline_max_bytes=LIMIT)

    def request(size: int | None) -> UploadRequest:
        return UploadRequest(TenantId("a"), Namespace("n"), ObjectKey("k"), declared_size=size)

    assert not policy.registers(request(0)) and not policy.registers(request(LIMIT))
    assert policy.registers(request(LIMIT + 1)) and policy.registers(request(None))


def test_the_threshold_is_bounded_at_1_mib(tmp_path: Path) -> None:
    """Every upload in flight may hold the threshold in memory, and on SQLite a GET's
    lookup reads the bytes on the event loop."""
    base = {"JUSTSTORAGE_DATA_DIR": str(tmp_path)}
    assert load_settings({**base, "JUSTSTORAGE_INLINE_MAX_BYTES": "1048576"}).inline_max_bytes
    with pytest.raises(SettingsError, match="INLINE_MAX_BYTES"):
        load_settings({**base, "JUSTSTORAGE_INLINE_MAX_BYTES": "1048577"})


class _RecordingBlobs:
    """A unit of work's blob index that only keeps what confirm() hands it."""

    def __init__(self) -> None:
        self.stored: list[bytes | bytearray] = []

    async def store_inline(self, location: BlobLocation, data: bytes | bytearray) -> bool:
        self.stored.append(data)
        return True


async def test_confirm_hands_the_buffer_over_without_copying_it() -> None:
    """Memory per inline upload is the threshold once, not twice, at its commit."""
    size = 256 * 1024
    clock = FakeClock()
    store = InlineBlobStore(FakeMetadataStore(clock), FakeBlobStore(clock), size)
    data = b"m" * size
    blob = BlobLocation(HOT, ContentHash(hashlib.sha256(data).hexdigest()))
    uow = SimpleNamespace(blobs=_RecordingBlobs())
    async with store.stage(HOT, uuid4()) as staged:
        await staged.write(data)
        await staged.seal()
        inline = BlobLocation(HOT, blob.content_hash, staged.address)
        tracemalloc.start()
        try:
            assert await staged.confirm(inline, uow=cast(UnitOfWork, uow)) is True
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert uow.blobs.stored == [data]
    assert peak < size // 2
