"""One suite for every blob store (STYLE G13): the fake (by content and by upload), the
filesystem and S3 on two real servers, SeaweedFS and Ceph RGW; plus the filesystem's
own guarantees: its on-disk layout and ENOSPC handled as InsufficientStorage with no
temp file left.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.adapters.blobs import filesystem, fsio
from juststorage.adapters.blobs.filesystem import FilesystemBlobStore
from juststorage.adapters.blobs.s3 import S3BlobStore
from juststorage.adapters.blobs.s3_io import S3Connection, S3Root
from juststorage.application.blob_ports import BlobStore, StagedBlob
from juststorage.application.downloads import find_by_id
from juststorage.application.fsck import ProblemKind, check_store
from juststorage.application.orphans import Removal, find_orphans, remove_orphan
from juststorage.application.records import BlobLocation, StoredBlob
from juststorage.application.uploads import RegistrationPolicy, Uploader, UploadRequest
from juststorage.domain.errors import (
    InsufficientStorage,
    NotFound,
    StorageError,
    Unavailable,
    details_of,
)
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    StorageClass,
    TenantId,
)
from juststorage.testing import free_port
from support.s3_servers import S3_SERVERS, S3Server
from support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

pytestmark = pytest.mark.anyio

HOT, COLD = StorageClass.HOT, StorageClass.COLD
MIB = 1024 * 1024
S3_PART_BYTES = 5 * MIB  # S3's smallest part: multipart uploads start early


@dataclass
class Backend:
    """A store under test plus what the database would record: the blob rows' addresses.

    `keeps_owners`: the store keeps the uploading process's identity with an upload in
    flight (`TempFile.owner`); where it does not, every upload writes a WRITING row
    (bootstrap's `RegistrationPolicy`). `names_uploads`: what its `scan` lists names the
    upload that stored it (`StoredBlob.upload_id`), not its content.
    """

    store: BlobStore
    temp_files: Callable[[], Awaitable[list[object]]]
    keeps_owners: bool = True
    names_uploads: bool = False
    index: dict[tuple[StorageClass, str], str] = field(default_factory=dict)

    def acquire(self, location: BlobLocation) -> BlobLocation:
        """`BlobIndex.acquire`: the first copy's address stays the blob's."""
        row = (location.storage_class, location.content_hash.hex)
        address = self.index.setdefault(row, location.address)
        return BlobLocation(location.storage_class, location.content_hash, address)

    def at(self, storage_class: StorageClass, data: bytes) -> BlobLocation:
        row = (storage_class, digest_of(data).hex)
        return BlobLocation(storage_class, digest_of(data), self.index.get(row, ""))

    def forget(self, location: BlobLocation) -> None:
        self.index.pop((location.storage_class, location.content_hash.hex), None)


def _fs_store(tmp_path: Path) -> FilesystemBlobStore:
    # Small chunks so that a few KiB already go through the threaded write pipeline.
    roots = {HOT: tmp_path / "hot", COLD: tmp_path / "cold"}
    return FilesystemBlobStore(roots, chunk_bytes=4096, writeback_every_bytes=8192)


def _fs_temp_files(store: FilesystemBlobStore) -> Callable[[], Awaitable[list[object]]]:
    async def listing() -> list[object]:
        return [p for c in StorageClass for p in store.temp_dir(c).iterdir()]

    return listing


def s3_store(server: S3Server, bucket: str | None = None) -> S3BlobStore:
    """The S3 store on a fresh prefix of the server's bucket (or of `bucket`)."""
    connection = S3Connection(
        endpoint_url=server.endpoint_url,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        allow_http=True,
        timeout_seconds=20,
    )
    prefix = uuid4().hex
    roots = {
        c: S3Root(bucket, f"{prefix}/{c.value}")
        if bucket is not None
        else S3Root.parse(server.root(f"{prefix}/{c.value}"))
        for c in StorageClass
    }
    return S3BlobStore(roots, connection, part_bytes=S3_PART_BYTES, max_concurrency=2)


def _s3_leftovers(backend: Backend, store: S3BlobStore) -> Callable[[], Awaitable[list[object]]]:
    """Unfinished multipart uploads and objects that no blob row names."""

    async def listing() -> list[object]:
        recorded = set(backend.index.values())
        found: list[object] = []
        for storage_class in StorageClass:
            found += await store.temp_files(storage_class)
            found += [s for s in await scan_all(store, storage_class) if s.address not in recorded]
        return found

    return listing


@pytest.fixture(params=["fake", "fake-by-upload", "filesystem", *S3_SERVERS])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param.startswith("fake"):
        by_upload = request.param == "fake-by-upload"
        fake = FakeBlobStore(by_upload=by_upload)
        await fake.prepare()

        async def fake_temps() -> list[object]:
            return list(fake.temps)

        yield Backend(fake, fake_temps, keeps_owners=not by_upload, names_uploads=by_upload)
    elif request.param == "filesystem":
        store = _fs_store(tmp_path)
        await store.prepare()
        yield Backend(store, _fs_temp_files(store))
    else:
        s3 = s3_store(request.getfixturevalue(request.param))
        await s3.prepare()
        backend = Backend(s3, _no_temps, keeps_owners=False, names_uploads=True)
        backend.temp_files = _s3_leftovers(backend, s3)
        yield backend


async def _no_temps() -> list[object]:
    return []


@pytest.fixture
async def fs_store(tmp_path: Path) -> FilesystemBlobStore:
    store = _fs_store(tmp_path)
    await store.prepare()
    return store


def digest_of(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


def payload(size: int) -> bytes:
    return random.Random(size).randbytes(size)


async def store_blob(
    target: Backend | BlobStore, data: bytes, storage_class: StorageClass = HOT
) -> bool:
    """Stage, seal, publish, take the reference (as the database would) and confirm."""
    backend = target if isinstance(target, Backend) else Backend(target, _no_temps)
    async with backend.store.stage(storage_class, uuid4()) as staged:
        piece = 1000 if len(data) < 100_000 else 256 * 1024
        for start in range(0, len(data), piece):
            await staged.write(data[start : start + piece])
        digest, size = await staged.seal()
        assert (digest, size) == (digest_of(data), len(data))
        published = await staged.publish()
        blob = backend.acquire(BlobLocation(storage_class, digest, staged.address))
        return await _confirm(staged, blob) or published


async def _confirm(staged: StagedBlob, blob: BlobLocation) -> bool:
    """confirm() outside a group commit: the file and S3 stores ignore its unit of work."""
    async with FakeMetadataStore(FakeClock()).transaction() as uow:
        return await staged.confirm(blob, uow=uow)


async def stored_file(fs_store: FilesystemBlobStore, data: bytes) -> Path:
    """Store `data` as a hot blob; the path of its file."""
    await store_blob(fs_store, data)
    return fs_store.path_of(BlobLocation(HOT, digest_of(data)))


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
    assert await store_blob(backend, data) is True
    assert await read(backend.store, backend.at(HOT, data), 0, size) == data
    assert await backend.temp_files() == []


async def test_a_multipart_upload_streams_and_reads_back(backend: Backend) -> None:
    data = payload(S3_PART_BYTES * 2 + 12345)  # three parts on S3
    assert await store_blob(backend, data, COLD) is True
    location = backend.at(COLD, data)
    assert await read(backend.store, location, 0, len(data)) == data
    assert await backend.store.digest_of(location) == digest_of(data)
    assert await backend.temp_files() == []


async def test_ranges_read_the_right_bytes(backend: Backend) -> None:
    data = payload(3 * MIB + 17)  # spans several read chunks
    await store_blob(backend, data)
    location = backend.at(HOT, data)
    for first, length in [(0, 1), (5, 10), (MIB - 1, 2), (len(data) - 1, 1), (100, 2 * MIB + 3)]:
        assert await read(backend.store, location, first, length) == data[first : first + length]
    assert await read(backend.store, location, 10, 0) == b""


async def test_open_with_the_range_to_read_first_then_any_other(backend: Backend) -> None:
    data = payload(2 * MIB + 5)
    await store_blob(backend, data)
    location = backend.at(HOT, data)
    reader = await backend.store.open(location, first=MIB, length=100)
    try:
        assert b"".join([c async for c in reader.chunks(MIB, 100)]) == data[MIB : MIB + 100]
        assert b"".join([c async for c in reader.chunks(3, 4)]) == data[3:7]
    finally:
        await reader.close()
    reader = await backend.store.open(location, first=0, length=0)  # a HEAD-like open
    await reader.close()
    unread = await backend.store.open(location)  # announced, never read: closing is fine
    await unread.close()
    with pytest.raises(NotFound):
        await backend.store.open(BlobLocation(HOT, digest_of(b"x"), "blobs/none"), length=10)


async def test_publishing_the_same_bytes_again_deduplicates(backend: Backend) -> None:
    data = payload(10_000)
    assert await store_blob(backend, data) is True
    assert await store_blob(backend, data) is False
    assert await read(backend.store, backend.at(HOT, data), 0, len(data)) == data
    assert await backend.temp_files() == []  # the second copy is gone


@pytest.mark.parametrize("size", [100, S3_PART_BYTES * 2 + 7])
async def test_rewrite_puts_bytes_back_at_the_blobs_address(backend: Backend, size: int) -> None:
    """A repair from a backup (fsck --from-backup): what is at the address is replaced
    whole; chunks that fail leave the old bytes and no temporary leftovers."""
    data = payload(size)
    await store_blob(backend, data)
    location = backend.at(HOT, data)

    async def chunks(body: bytes, fail: bool = False) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]
        if fail:
            raise RuntimeError("the source failed")

    damaged = data[: size // 2] + b"!" + data[size // 2 + 1 :]
    await backend.store.rewrite(location, chunks(damaged))
    assert await read(backend.store, location, 0, size) == damaged
    with pytest.raises(RuntimeError, match="the source failed"):
        await backend.store.rewrite(location, chunks(data, fail=True))
    assert await read(backend.store, location, 0, size) == damaged
    await backend.store.rewrite(location, chunks(data))
    assert await backend.store.digest_of(location) == digest_of(data)
    assert await backend.temp_files() == []


async def test_storage_classes_hold_separate_blobs(backend: Backend) -> None:
    data = payload(100)
    assert await store_blob(backend, data, HOT) is True
    with pytest.raises(NotFound):
        await backend.store.open(backend.at(COLD, data))
    assert await store_blob(backend, data, COLD) is True
    assert await read(backend.store, backend.at(COLD, data), 0, 100) == data


@pytest.mark.parametrize("size", [10_000, S3_PART_BYTES + 10])
async def test_leaving_stage_without_publish_removes_the_temp_file(
    backend: Backend, size: int
) -> None:
    data = payload(size)
    async with backend.store.stage(COLD, uuid4()) as staged:
        await staged.write(data)
        await staged.seal()
    assert await backend.temp_files() == []
    with pytest.raises(NotFound):
        await backend.store.open(backend.at(COLD, data))


@pytest.mark.parametrize("size", [9000, S3_PART_BYTES + 10])
async def test_an_exception_inside_stage_removes_the_temp_file(backend: Backend, size: int) -> None:
    with pytest.raises(LookupError):
        async with backend.store.stage(HOT, uuid4()) as staged:
            await staged.write(payload(size))
            raise LookupError("client went away")
    assert await backend.temp_files() == []


async def test_publish_before_seal_is_refused(backend: Backend) -> None:
    async with backend.store.stage(HOT, uuid4()) as staged:
        await staged.write(b"abc")
        with pytest.raises(RuntimeError):
            await staged.publish()
        with pytest.raises(RuntimeError):
            await _confirm(staged, BlobLocation(HOT, digest_of(b"abc")))
    assert await backend.temp_files() == []


async def test_confirm_puts_back_a_blob_removed_after_publish(backend: Backend) -> None:
    """The GC race confirm() exists for: the blob vanished between publish and commit."""
    data = payload(5000)
    location = BlobLocation(HOT, digest_of(data))
    async with backend.store.stage(HOT, uuid4()) as staged:
        await staged.write(data)
        await staged.seal()
        if not await staged.publish():
            pytest.skip("the store wrote the bytes at their own address: nothing to put back")
        assert await backend.store.remove(HOT, location.address) is True  # a GC pass took it
        assert await _confirm(staged, location) is True
        assert await _confirm(staged, location) is False  # there: nothing to do
    assert await read(backend.store, location, 0, len(data)) == data
    assert await backend.temp_files() == []


async def test_opening_a_missing_blob_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        await backend.store.open(BlobLocation(HOT, digest_of(b"never stored")))
    with pytest.raises(NotFound):
        await backend.store.open(BlobLocation(HOT, digest_of(b"never stored"), "blobs/nothing"))


async def test_probe_succeeds_and_leaves_nothing(backend: Backend) -> None:
    for storage_class in StorageClass:
        await backend.store.probe(storage_class)
    assert await backend.temp_files() == []


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
    path = await stored_file(fs_store, data)
    inode = path.stat().st_ino
    await store_blob(fs_store, data)
    assert path.stat().st_ino == inode
    assert path.stat().st_nlink == 1  # the temp name is gone


async def test_filesystem_shard_directories_removed_by_hand_are_made_again(
    fs_store: FilesystemBlobStore,
) -> None:
    first = payload(5000)
    path = await stored_file(fs_store, first)
    path.unlink()
    path.parent.rmdir()
    path.parent.parent.rmdir()  # the store still remembers these as made durably
    # The same shard, both ways in: a fresh publish, and a confirm after GC took it.
    await store_blob(fs_store, first)
    assert path.read_bytes() == first
    path.unlink()
    path.parent.rmdir()
    async with fs_store.stage(HOT, uuid4()) as staged:
        await staged.write(first)
        await staged.seal()
        assert await _confirm(staged, BlobLocation(HOT, digest_of(first))) is True
    assert path.read_bytes() == first


async def test_filesystem_probe_of_an_unwritable_root_is_unavailable(tmp_path: Path) -> None:
    store = FilesystemBlobStore({HOT: tmp_path / "hot", COLD: tmp_path / "cold"})
    with pytest.raises(Unavailable) as raised:
        await store.probe(HOT)  # never prepared: no tmp/ directory
    assert str(tmp_path) not in raised.value.message  # /ready shows it to anyone


def _enospc(*args: object, **kwargs: object) -> int:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("size", [100, 20_000])  # buffered until seal / written in a thread
async def test_enospc_on_write_is_insufficient_storage_and_leaves_no_temp_file(
    fs_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(filesystem.os, "write", _enospc)
    monkeypatch.setattr(filesystem.os, "writev", _enospc)  # the staged chunks
    with pytest.raises(InsufficientStorage):
        await store_blob(fs_store, payload(size))
    monkeypatch.undo()
    assert await _fs_temp_files(fs_store)() == []
    assert list((fs_store.roots[HOT] / "sha256").iterdir()) == []


async def test_enospc_on_link_is_insufficient_storage_and_leaves_no_blob(
    fs_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = payload(5000)
    monkeypatch.setattr(fsio.os, "link", _enospc)
    with pytest.raises(InsufficientStorage):
        await store_blob(fs_store, data)
    monkeypatch.undo()
    assert await _fs_temp_files(fs_store)() == []
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
    monkeypatch.setattr(filesystem.os, "writev", _enospc)  # the staged chunks
    with pytest.raises(InsufficientStorage):
        await Uploader(
            metadata=metadata,
            blobs=fs_store,
            clock=clock,
            max_object_bytes=MIB,
            registration=RegistrationPolicy(),
        ).upload(request, body())
    monkeypatch.undo()
    assert await _fs_temp_files(fs_store)() == []
    assert metadata.writing_ids() == set()
    assert metadata.state.blobs == {}
    async with metadata.snapshot() as view:
        assert await view.objects.newest(request.tenant_id, request.namespace, request.key) is None


# --- GC and fsck ----------------------------------------------------------------------


async def scan_all(store: BlobStore, storage_class: StorageClass) -> list[StoredBlob]:
    return [blob async for batch in store.scan(storage_class) for blob in batch]


async def test_remove_unlinks_a_blob_once(backend: Backend) -> None:
    data = payload(3000)
    await store_blob(backend, data)
    await store_blob(backend, data, COLD)
    location = backend.at(HOT, data)
    assert await backend.store.remove(HOT, location.address) is True
    backend.forget(location)  # GC deletes the row in the same transaction
    with pytest.raises(NotFound):
        await backend.store.open(location)
    assert await backend.store.remove(HOT, location.address) is False  # gone: not an error
    assert await read(backend.store, backend.at(COLD, data), 0, 3000) == data
    assert await store_blob(backend, data) is True  # published afresh
    assert await read(backend.store, backend.at(HOT, data), 0, 3000) == data


async def test_temp_files_list_staged_uploads_and_remove_temp_deletes_them(
    backend: Backend,
) -> None:
    upload_id = uuid4()
    assert await backend.store.temp_files(HOT) == []
    async with backend.store.stage(HOT, upload_id) as staged:
        # More than a part: an S3 store has begun its multipart upload; the second
        # write waits for the first flush, which created the filesystem's temp file.
        await staged.write(payload(S3_PART_BYTES + 100))
        await staged.write(payload(8192))
        temps = await backend.store.temp_files(HOT)
        assert await backend.store.temp_files(COLD) == []
        assert [(t.storage_class, t.upload_id) for t in temps] == [(HOT, upload_id)]
        assert temps[0].owner == ""
        assert temps[0].modified_at.tzinfo is not None
        await backend.store.remove_temp(temps[0])
        await backend.store.remove_temp(temps[0])  # already gone: not an error
        assert await backend.store.temp_files(HOT) == []
        assert await backend.temp_files() == []
        with pytest.raises(StorageError):  # the reaped upload cannot complete any more
            await staged.seal()
            await staged.publish()
    assert await backend.store.temp_files(HOT) == []


async def test_temp_files_name_their_owner(backend: Backend) -> None:
    if not backend.keeps_owners:
        pytest.skip("the store keeps no owner: its uploads always write WRITING rows")
    owner = "0c6f1e2a-boot/pid:[4026531836]:4242:987654"
    upload_id = uuid4()
    async with backend.store.stage(COLD, upload_id, owner) as staged:
        await staged.write(payload(10))
        await staged.seal()
        (temp,) = await backend.store.temp_files(COLD)
        assert (temp.upload_id, temp.owner) == (upload_id, owner)
        assert "/" not in temp.name
        await backend.store.remove_temp(temp)
        assert await backend.store.temp_files(COLD) == []


async def test_scan_lists_every_published_blob_of_a_class(backend: Backend) -> None:
    hot = [payload(n) for n in (0, 10, 2000)]
    for data in hot:
        await store_blob(backend, data)
    await store_blob(backend, b"cold only", COLD)
    async with backend.store.stage(HOT, uuid4()) as staged:  # temp files are not blobs
        await staged.write(b"in flight")
        found = await scan_all(backend.store, HOT)
    # Each names its content (any upload may adopt it) or its upload (only that one may).
    assert sorted((b.address, b.size_bytes) for b in found) == sorted(
        (backend.at(HOT, d).address, len(d)) for d in hot
    )
    by_address = {backend.at(HOT, d).address: d for d in hot}
    for stored in found:
        assert stored.storage_class is HOT and stored.modified_at.tzinfo is not None
        if stored.content_hash is not None:
            assert stored.content_hash == digest_of(by_address[stored.address])
        else:
            assert stored.upload_id is not None
    cold = backend.at(COLD, b"cold only")
    assert [b.address for b in await scan_all(backend.store, COLD)] == [cold.address]
    assert await backend.store.remove(COLD, cold.address) is True
    assert await scan_all(backend.store, COLD) == []


async def test_digest_of_rehashes_the_bytes(backend: Backend) -> None:
    data = payload(3 * MIB + 1)
    await store_blob(backend, data, COLD)
    location = backend.at(COLD, data)
    assert await backend.store.digest_of(location) == digest_of(data)
    with pytest.raises(NotFound):
        await backend.store.digest_of(backend.at(HOT, data))


# --- filesystem only: GC and fsck -------------------------------------------------------


async def test_filesystem_digest_of_sees_corrupted_bytes(fs_store: FilesystemBlobStore) -> None:
    data = payload(5000)
    await store_blob(fs_store, data)
    location = BlobLocation(HOT, digest_of(data))
    path = fs_store.path_of(location)
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff")
    assert await fs_store.digest_of(location) != digest_of(data)
    assert [b.content_hash for b in await scan_all(fs_store, HOT)] == [digest_of(data)]  # listed


async def test_filesystem_scan_and_temp_files_ignore_foreign_names(
    fs_store: FilesystemBlobStore,
) -> None:
    data = payload(10)
    path = await stored_file(fs_store, data)
    (path.parent / "notes.txt").write_bytes(b"x")
    (path.parent / ("A" * 64)).write_bytes(b"x")  # upper case is not a blob name
    (fs_store.temp_dir(HOT) / "upload.part").write_bytes(b"x")
    (fs_store.temp_dir(HOT) / "dir.tmp").mkdir()
    assert [(b.address, b.content_hash) for b in await scan_all(fs_store, HOT)] == [
        (digest_of(data).hex, digest_of(data))
    ]
    assert await fs_store.temp_files(HOT) == []


async def test_filesystem_scan_and_temp_files_report_mtimes(
    fs_store: FilesystemBlobStore,
) -> None:
    data = payload(10)
    path = await stored_file(fs_store, data)
    os.utime(path, (1_000_000_000, 1_000_000_000))
    (found,) = await scan_all(fs_store, HOT)
    assert found.modified_at == datetime.fromtimestamp(1_000_000_000, UTC)
    temp = fs_store.temp_dir(COLD) / f"{uuid4()}.tmp"
    temp.write_bytes(b"dead upload")
    os.utime(temp, (1_500_000_000, 1_500_000_000))
    (listed,) = await fs_store.temp_files(COLD)
    assert listed.modified_at == datetime.fromtimestamp(1_500_000_000, UTC)
    await fs_store.remove_temp(listed)
    assert not temp.exists()


def _eio(*args: object, **kwargs: object) -> None:
    raise OSError(errno.EIO, os.strerror(errno.EIO))


async def test_filesystem_io_errors_in_gc_and_fsck_paths_are_storage_errors(
    fs_store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing but domain errors leaves the adapter: the CLI turns those into messages."""
    data = payload(10)
    await store_blob(fs_store, data)
    location = BlobLocation(HOT, digest_of(data))
    temp = fs_store.temp_dir(HOT) / f"{uuid4()}.tmp"
    temp.write_bytes(b"dead upload")
    (listed,) = await fs_store.temp_files(HOT)

    monkeypatch.setattr(filesystem.os, "unlink", _eio)
    with pytest.raises(StorageError):
        await fs_store.remove(location.storage_class, location.address)
    monkeypatch.setattr(fsio.os, "unlink", _eio)
    with pytest.raises(StorageError):
        await fs_store.remove_temp(listed)
    monkeypatch.setattr(filesystem.os, "scandir", _eio)
    with pytest.raises(StorageError):
        await fs_store.temp_files(HOT)
    with pytest.raises(StorageError):
        await scan_all(fs_store, HOT)
    monkeypatch.setattr(filesystem, "open", _eio, raising=False)
    with pytest.raises(StorageError):
        await fs_store.digest_of(location)
    monkeypatch.undo()
    assert temp.exists() and fs_store.path_of(location).exists()


# --- orphans: what GC and fsck share, found the same way on every store ------------------


async def test_stored_bytes_no_row_accounts_for_are_an_orphan_on_every_store(
    backend: Backend,
) -> None:
    """A crash between storing and committing leaves bytes no row names: `find_orphans`
    reports them (and not a blob whose row exists), `remove_orphan` removes them."""
    metadata = FakeMetadataStore(FakeClock())
    kept, lost = payload(300), payload(400)
    await store_blob(backend, kept)
    await store_blob(backend, lost)
    blob = backend.at(HOT, kept)
    async with metadata.transaction() as uow:  # only the committed one has its row
        await uow.blobs.acquire(blob, len(kept))
        await uow.commit()

    async def orphans(**since: datetime) -> list[StoredBlob]:
        return [
            s async for batch in find_orphans(metadata, backend.store, HOT, **since) for s in batch
        ]

    found = await orphans()
    assert [o.address for o in found] == [backend.at(HOT, lost).address]
    assert await orphans(stored_before=datetime(2000, 1, 1, tzinfo=UTC)) == []  # too new
    assert await remove_orphan(metadata, backend.store, found[0]) is Removal.REMOVED
    assert await orphans() == []
    with pytest.raises(NotFound):
        await backend.store.open(backend.at(HOT, lost))
    assert await read(backend.store, blob, 0, len(kept)) == kept


async def test_stored_bytes_that_name_their_upload_are_no_orphan_while_it_is_writing(
    backend: Backend,
) -> None:
    """Where a stored thing names the upload that stored it (S3's objects), only that
    upload may adopt it: it is no orphan, whatever its age, while the upload's WRITING
    row exists, and one once the row is gone."""
    if not backend.names_uploads:
        pytest.skip("the store's stored things name their content: the blob row decides")
    clock = FakeClock()
    metadata = FakeMetadataStore(clock)
    upload = NewUpload(
        uuid4(), TenantId("acme"), Namespace("files"), ObjectKey("k"), HOT, "x/y", clock.now()
    )
    async with metadata.transaction() as uow:
        await uow.objects.add_writing(upload)
        await uow.commit()
    later = datetime(9999, 1, 1, tzinfo=UTC)  # age protects nothing

    async def orphans() -> list[StoredBlob]:
        return [
            s
            async for batch in find_orphans(metadata, backend.store, HOT, stored_before=later)
            for s in batch
        ]

    async with backend.store.stage(HOT, upload.id) as staged:
        await staged.write(payload(500))
        await staged.seal()
        await staged.publish()
        assert [s.upload_id for s in await scan_all(backend.store, HOT)] == [upload.id]
        assert await orphans() == []  # its upload may still commit it
        async with metadata.transaction() as uow:
            await uow.objects.discard_writing(upload.id)
            await uow.commit()
        assert [s.address for s in await orphans()] == [staged.address]


async def test_the_bytes_of_a_lost_blob_row_are_kept_and_fsck_records_them_again(
    backend: Backend,
) -> None:
    """Damage (an old database restored, an operator's DELETE) loses a committed
    object's blob row. Where a stored thing names its upload, the upload's committed
    version says whose bytes they are: GC's orphan step keeps them, fsck reports the
    missing row and `repair` records it again at their address."""
    if not backend.names_uploads:
        pytest.skip("the store's stored things name their content: the unit tests cover it")
    clock = FakeClock()
    metadata = FakeMetadataStore(clock)
    uploader = Uploader(
        metadata=metadata,
        blobs=backend.store,
        clock=clock,
        max_object_bytes=MIB,
        registration=RegistrationPolicy(always=frozenset(StorageClass)),  # as on S3
    )
    data = payload(700)

    async def body() -> AsyncIterator[bytes]:
        yield data

    tenant = TenantId("acme")
    request = UploadRequest(tenant, Namespace("files"), ObjectKey("k"))
    version = (await uploader.upload(request, body())).version
    blob = (await find_by_id(metadata, tenant, version.id)).blob
    async with metadata.transaction() as uow:  # damage: the blob row is gone
        await uow.blobs.forget(blob)
        await uow.commit()

    later = datetime(9999, 1, 1, tzinfo=UTC)  # age protects nothing
    assert [
        s async for b in find_orphans(metadata, backend.store, HOT, stored_before=later) for s in b
    ] == []
    (problem,) = (await check_store(metadata, backend.store)).problems
    assert (problem.kind, problem.address, problem.object_ids) == (
        ProblemKind.MISSING_ROW,
        blob.address,
        (version.id,),
    )
    report = await check_store(metadata, backend.store, repair=True)
    assert [(p.kind, p.repaired) for p in report.problems] == [(ProblemKind.MISSING_ROW, True)]
    assert (await check_store(metadata, backend.store)).problems == []
    found = await find_by_id(metadata, tenant, version.id)
    assert found.blob.address == blob.address
    assert await read(backend.store, found.blob, 0, len(data)) == data


async def test_space_is_free_and_total_bytes_or_none(backend: Backend) -> None:
    for storage_class in StorageClass:
        space = await backend.store.space(storage_class)
        assert space is None or 0 <= space[0] <= space[1]


async def test_s3_probe_of_an_unreachable_store_names_no_host_or_bucket() -> None:
    """/ready shows the reason to anyone: the endpoint and bucket stay in the log."""
    port = free_port()  # nothing listens there: every connect is refused
    connection = S3Connection(
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        region=REGION,
        allow_http=True,
        timeout_seconds=2,
        max_retries=0,
    )
    roots = {c: S3Root.parse(f"s3://secret-bucket/{c.value}") for c in StorageClass}
    store = S3BlobStore(roots, connection, part_bytes=S3_PART_BYTES, max_concurrency=2)
    with pytest.raises(Unavailable) as raised:
        await store.probe(HOT)
    assert str(port) not in raised.value.message
    assert "secret-bucket" not in raised.value.message
    assert str(port) in details_of(raised.value)  # what the log gets


@pytest.mark.parametrize("server_name", S3_SERVERS)
async def test_an_s3_root_whose_bucket_is_missing_is_unavailable_not_missing_blobs(
    request: pytest.FixtureRequest, server_name: str
) -> None:
    """A bucket that does not exist (a typo in a root, a bucket deleted) is the store
    being unusable, 503 for every request, never "no such blob": a 404 would tell a
    client its object does not exist, and GC would take a blob as removed already."""
    store = s3_store(request.getfixturevalue(server_name), bucket=f"missing-{uuid4().hex}")
    location = BlobLocation(HOT, digest_of(b"x"), "blobs/none")
    with pytest.raises(Unavailable, match="no such bucket"):
        await store.open(location)
    with pytest.raises(Unavailable, match="no such bucket"):
        await store.open(location, first=0, length=0)  # a HEAD's 404 has no body
    with pytest.raises(Unavailable, match="no such bucket"):
        await store.digest_of(location)
    with pytest.raises(Unavailable, match="no such bucket"):
        await store.remove(HOT, location.address)
    with pytest.raises(Unavailable):
        await scan_all(store, HOT)
    if server_name == "seaweedfs":
        return  # SeaweedFS makes a missing bucket on the first write: nothing is refused
    for size in (100, S3_PART_BYTES + 10):  # a PUT, and a multipart upload's start
        with pytest.raises(Unavailable, match="no such bucket"):
            await store_blob(store, payload(size))
