"""One suite for every blob store (STYLE G13), plus the filesystem's own guarantees:
its on-disk layout and ENOSPC handled as InsufficientStorage with no temp file left.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest

from fakes import FakeBlobStore, FakeClock, FakeMetadataStore
from juststorage.adapters.blobs import filesystem, fsio
from juststorage.adapters.blobs.filesystem import FilesystemBlobStore
from juststorage.application.ports import BlobLocation, BlobStore
from juststorage.application.uploads import UploadRequest, upload_object
from juststorage.domain.errors import InsufficientStorage, NotFound, Unavailable
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

HOT, COLD = StorageClass.HOT, StorageClass.COLD
MIB = 1024 * 1024


@dataclass
class Backend:
    store: BlobStore
    temp_files: Callable[[], list[object]]


def _fs_store(tmp_path: Path) -> FilesystemBlobStore:
    # Small chunks so that a few KiB already go through the threaded write pipeline.
    roots = {HOT: tmp_path / "hot", COLD: tmp_path / "cold"}
    return FilesystemBlobStore(roots, chunk_bytes=4096, writeback_every_bytes=8192)


def _fs_temp_files(store: FilesystemBlobStore) -> Callable[[], list[object]]:
    return lambda: [p for c in StorageClass for p in store.temp_dir(c).iterdir()]


@pytest.fixture(params=["fake", "filesystem"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "fake":
        fake = FakeBlobStore()
        await fake.prepare()
        yield Backend(fake, lambda: list(fake.temp_files))
    else:
        store = _fs_store(tmp_path)
        await store.prepare()
        yield Backend(store, _fs_temp_files(store))


@pytest.fixture
async def fs_store(tmp_path: Path) -> FilesystemBlobStore:
    store = _fs_store(tmp_path)
    await store.prepare()
    return store


def digest_of(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


def payload(size: int) -> bytes:
    return bytes((n * 7 + n // 251) % 256 for n in range(size))


async def store_blob(store: BlobStore, data: bytes, storage_class: StorageClass = HOT) -> bool:
    async with store.stage(storage_class, uuid4()) as staged:
        for start in range(0, len(data), 1000):
            await staged.write(data[start : start + 1000])
        digest, size = await staged.seal()
        assert (digest, size) == (digest_of(data), len(data))
        return await staged.publish()


async def read(store: BlobStore, location: BlobLocation, first: int, length: int) -> bytes:
    reader = await store.open(location)
    try:
        chunks = [c async for c in reader.chunks(first, length)]
    finally:
        await reader.close()
    assert all(len(c) <= MIB for c in chunks)  # streamed in bounded chunks
    return b"".join(chunks)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 20_000])
async def test_published_blob_reads_back_exactly(backend: Backend, size: int) -> None:
    data = payload(size)
    assert await store_blob(backend.store, data) is True
    location = BlobLocation(HOT, digest_of(data))
    assert await read(backend.store, location, 0, size) == data
    assert backend.temp_files() == []


async def test_ranges_read_the_right_bytes(backend: Backend) -> None:
    data = payload(3 * MIB + 17)  # spans several read chunks
    await store_blob(backend.store, data)
    location = BlobLocation(HOT, digest_of(data))
    for first, length in [(0, 1), (5, 10), (MIB - 1, 2), (len(data) - 1, 1), (100, 2 * MIB + 3)]:
        assert await read(backend.store, location, first, length) == data[first : first + length]
    assert await read(backend.store, location, 10, 0) == b""


async def test_publishing_the_same_bytes_again_deduplicates(backend: Backend) -> None:
    data = payload(10_000)
    assert await store_blob(backend.store, data) is True
    assert await store_blob(backend.store, data) is False
    assert await read(backend.store, BlobLocation(HOT, digest_of(data)), 0, len(data)) == data
    assert backend.temp_files() == []


async def test_storage_classes_hold_separate_blobs(backend: Backend) -> None:
    data = payload(100)
    assert await store_blob(backend.store, data, HOT) is True
    with pytest.raises(NotFound):
        await backend.store.open(BlobLocation(COLD, digest_of(data)))
    assert await store_blob(backend.store, data, COLD) is True
    assert await read(backend.store, BlobLocation(COLD, digest_of(data)), 0, 100) == data


async def test_leaving_stage_without_publish_removes_the_temp_file(backend: Backend) -> None:
    data = payload(10_000)
    async with backend.store.stage(COLD, uuid4()) as staged:
        await staged.write(data)
        assert len(backend.temp_files()) == 1
        await staged.seal()
    assert backend.temp_files() == []
    with pytest.raises(NotFound):
        await backend.store.open(BlobLocation(COLD, digest_of(data)))


async def test_an_exception_inside_stage_removes_the_temp_file(backend: Backend) -> None:
    with pytest.raises(LookupError):
        async with backend.store.stage(HOT, uuid4()) as staged:
            await staged.write(payload(9000))
            raise LookupError("client went away")
    assert backend.temp_files() == []


async def test_publish_before_seal_is_refused(backend: Backend) -> None:
    async with backend.store.stage(HOT, uuid4()) as staged:
        await staged.write(b"abc")
        with pytest.raises(RuntimeError):
            await staged.publish()
    assert backend.temp_files() == []


async def test_opening_a_missing_blob_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        await backend.store.open(BlobLocation(HOT, digest_of(b"never stored")))


async def test_probe_succeeds_and_leaves_nothing(backend: Backend) -> None:
    for storage_class in StorageClass:
        await backend.store.probe(storage_class)
    assert backend.temp_files() == []


# --- filesystem only ------------------------------------------------------------------


async def test_filesystem_blob_path_is_sha256_hh_hh_hex(
    fs_store: FilesystemBlobStore, tmp_path: Path
) -> None:
    data = payload(5000)
    hexdigest = hashlib.sha256(data).hexdigest()
    await store_blob(fs_store, data, COLD)
    path = tmp_path / "cold" / "sha256" / hexdigest[:2] / hexdigest[2:4] / hexdigest
    assert path.read_bytes() == data
    assert fs_store.path_of(BlobLocation(COLD, digest_of(data))) == path
    reader = await fs_store.open(BlobLocation(COLD, digest_of(data)))
    assert reader.path == path
    await reader.close()
    assert not (tmp_path / "hot" / "sha256" / hexdigest[:2]).exists()


async def test_filesystem_dedup_keeps_the_first_file(fs_store: FilesystemBlobStore) -> None:
    data = payload(5000)
    await store_blob(fs_store, data)
    path = fs_store.path_of(BlobLocation(HOT, digest_of(data)))
    inode = path.stat().st_ino
    await store_blob(fs_store, data)
    assert path.stat().st_ino == inode
    assert path.stat().st_nlink == 1  # the temp name is gone


async def test_filesystem_probe_of_an_unwritable_root_is_unavailable(tmp_path: Path) -> None:
    store = FilesystemBlobStore({HOT: tmp_path / "hot", COLD: tmp_path / "cold"})
    with pytest.raises(Unavailable):
        await store.probe(HOT)  # never prepared: no tmp/ directory


def _enospc(*args: object, **kwargs: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("size", [100, 20_000])  # buffered until seal / written in a thread
async def test_enospc_on_write_is_insufficient_storage_and_leaves_no_temp_file(
    fs_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(filesystem.os, "write", _enospc)
    with pytest.raises(InsufficientStorage):
        await store_blob(fs_store, payload(size))
    monkeypatch.undo()
    assert _fs_temp_files(fs_store)() == []
    assert list((fs_store.roots[HOT] / "sha256").iterdir()) == []


async def test_enospc_on_link_is_insufficient_storage_and_leaves_no_blob(
    fs_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(5000)
    monkeypatch.setattr(fsio.os, "link", _enospc)
    with pytest.raises(InsufficientStorage):
        await store_blob(fs_store, data)
    monkeypatch.undo()
    assert _fs_temp_files(fs_store)() == []
    assert not fs_store.path_of(BlobLocation(HOT, digest_of(data))).exists()
    assert await store_blob(fs_store, data) is True  # works again once there is space


async def test_upload_on_a_full_disk_leaves_nothing_behind(
    fs_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    metadata = FakeMetadataStore(clock)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield payload(3000)

    request = UploadRequest(TenantId("acme"), Namespace("files"), ObjectKey("k"))
    monkeypatch.setattr(filesystem.os, "write", _enospc)
    with pytest.raises(InsufficientStorage):
        await upload_object(
            request, body(), metadata=metadata, blobs=fs_store, clock=clock, max_object_bytes=MIB
        )
    monkeypatch.undo()
    assert _fs_temp_files(fs_store)() == []
    assert metadata.writing_ids() == set()
    assert metadata.state.blobs == {}
    async with metadata.snapshot() as view:
        assert await view.objects.newest(request.tenant_id, request.namespace, request.key) is None
