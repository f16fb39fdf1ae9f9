"""The write protocol without rename, GC and fsck on S3 (real SeaweedFS and Ceph RGW)
with SQLite, and the `gc` / `fsck` commands exiting promptly with s3:// roots."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import obstore
import pytest

from juststorage.adapters.blobs.inline import InlineBlobStore
from juststorage.adapters.blobs.s3 import S3BlobStore
from juststorage.application.deletes import delete_object
from juststorage.application.downloads import find_by_id
from juststorage.application.fsck import ProblemKind, check_store
from juststorage.application.gc import GcPolicy, GcReport, collect_garbage
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services, build
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import PreconditionFailed
from juststorage.domain.model import Namespace, ObjectKey, ObjectVersion, StorageClass, TenantId
from support.s3_servers import S3_SERVERS, S3Server

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT, COLD = StorageClass.HOT, StorageClass.COLD
MIB = 1024 * 1024
CLI = Path(sys.executable).parent / "juststorage"


def s3_settings(server: S3Server, data_dir: Path) -> dict[str, str]:
    prefix = uuid.uuid4().hex
    return {
        **server.env(),
        "JUSTSTORAGE_DATA_DIR": str(data_dir),
        "JUSTSTORAGE_HOT_ROOT": server.root(f"{prefix}/hot"),
        "JUSTSTORAGE_COLD_ROOT": server.root(f"{prefix}/cold"),
        "JUSTSTORAGE_INLINE_MAX_BYTES": "0",  # every blob an S3 object: what this tests
    }


@pytest.fixture(params=S3_SERVERS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    return s3_settings(request.getfixturevalue(request.param), tmp_path)


@pytest.fixture
async def services(env: dict[str, str]) -> AsyncIterator[Services]:
    from juststorage.config import load_settings

    built = build(load_settings(env))
    # At threshold 0 the inline store stays in front (for rows kept inline before),
    # handing every new upload to the S3 store.
    assert isinstance(built.blobs, InlineBlobStore) and isinstance(built.blobs.larger, S3BlobStore)
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


def s3(services: Services) -> S3BlobStore:
    assert isinstance(services.blobs, InlineBlobStore)
    assert isinstance(services.blobs.larger, S3BlobStore)
    return services.blobs.larger


async def upload(
    services: Services,
    key: str,
    data: bytes,
    storage_class: StorageClass = HOT,
    precondition: WritePrecondition | None = None,
) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), MIB):
            yield data[start : start + MIB]

    return await services.uploader.upload(
        UploadRequest(
            ACME,
            FILES,
            ObjectKey(key),
            storage_class=storage_class,
            precondition=precondition or WritePrecondition(),
        ),
        body(),
    )


async def keys(services: Services, storage_class: StorageClass = HOT) -> list[str]:
    return sorted([s.address async for batch in services.blobs.scan(storage_class) for s in batch])


async def read_back(services: Services, version: ObjectVersion) -> bytes:
    found = await find_by_id(services.metadata, version.tenant_id, version.id)
    reader = await services.blobs.open(found.blob)
    return b"".join([c async for c in reader.chunks(0, version.size_bytes)])


async def gc(services: Services, grace_seconds: float = 0) -> GcReport:
    return await collect_garbage(
        services.metadata,
        services.blobs,
        services.clock,
        GcPolicy(grace_seconds=grace_seconds),
        services.liveness,
    )


async def test_each_blob_is_one_object_and_dedup_deletes_the_fresh_upload(
    services: Services,
) -> None:
    data = os.urandom(6 * MIB)  # a multipart upload
    first = await upload(services, "a", data)
    second = await upload(services, "b", data)
    assert not first.deduplicated and second.deduplicated
    assert await keys(services) == [f"blobs/{first.version.id}"]  # the second one is gone
    assert await read_back(services, second.version) == data
    assert (await check_store(services.metadata, services.blobs)).problems == []


async def test_gc_removes_a_deleted_blob_and_fsck_stays_clean(services: Services) -> None:
    gone = await upload(services, "gone", b"deleted bytes")
    kept = await upload(services, "kept", b"kept bytes", COLD)
    await delete_object(services.metadata, ACME, gone.version.id)
    assert (await gc(services, grace_seconds=3600)).blobs_removed == 0
    assert await keys(services) == [f"blobs/{gone.version.id}"]
    report = await gc(services)
    assert report.removed_hashes == [gone.version.content_hash.hex]
    assert await keys(services) == []
    assert await keys(services, COLD) == [f"blobs/{kept.version.id}"]
    assert (await check_store(services.metadata, services.blobs)).problems == []


async def test_a_released_blob_uploaded_again_moves_to_the_new_object(
    services: Services,
) -> None:
    """A row with no reference takes the new upload's key (its old object may be half
    deleted by a crashed GC pass); the old object becomes an orphan for GC."""
    old = await upload(services, "k", b"same bytes")
    await delete_object(services.metadata, ACME, old.version.id)
    new = await upload(services, "k", b"same bytes")
    assert not new.deduplicated
    assert await keys(services) == sorted([f"blobs/{old.version.id}", f"blobs/{new.version.id}"])
    report = await gc(services)
    assert report.orphan_blobs_removed == 1 and report.blobs_removed == 0
    assert await keys(services) == [f"blobs/{new.version.id}"]
    assert await read_back(services, new.version) == b"same bytes"


async def test_a_crash_between_upload_and_commit_leaves_an_orphan_gc_removes(
    services: Services,
) -> None:
    store = s3(services)._stores[HOT]
    dead_upload = f"blobs/{uuid.uuid4()}"  # its WRITING row is gone: the process died
    await obstore.put_async(store, dead_upload, b"never committed")
    await obstore.put_async(store, "elsewhere/not-ours", b"foreign")
    assert (await gc(services, grace_seconds=3600)).orphan_blobs_removed == 0
    report = await check_store(services.metadata, services.blobs)
    (problem,) = report.problems
    assert problem.kind is ProblemKind.ORPHAN_FILE and problem.address == dead_upload
    assert problem.content_hash is None and problem.location is None  # no invented hash
    assert f"address:{dead_upload}" in problem.describe() and "sha256" not in problem.describe()
    assert (await gc(services)).orphan_blobs_removed == 1
    assert await keys(services) == []
    assert (await check_store(services.metadata, services.blobs)).problems == []
    await obstore.head_async(store, "elsewhere/not-ours")  # never touched


async def test_gc_aborts_the_multipart_upload_of_a_dead_process(
    services: Services,
) -> None:
    store = s3(services)._stores[COLD]
    # A process killed mid-upload: a multipart upload begun, never completed.
    writer = obstore.open_writer_async(store, f"blobs/{uuid.uuid4()}", buffer_size=5 * MIB)
    await writer.write(os.urandom(6 * MIB))
    for _ in range(300):  # the multipart upload shows once its first part is sent
        if await services.blobs.temp_files(COLD):
            break
        await anyio.sleep(0.1)
    (stale,) = await services.blobs.temp_files(COLD)
    report = await gc(services)
    assert report.temp_files_removed == 1
    assert await services.blobs.temp_files(COLD) == []
    assert stale.storage_class is COLD


async def test_a_failed_precondition_leaves_no_object(services: Services) -> None:
    await upload(services, "k", b"first")
    with pytest.raises(PreconditionFailed):
        await upload(
            services, "k", os.urandom(6 * MIB), precondition=WritePrecondition(create_only=True)
        )
    assert len(await keys(services)) == 1
    assert await services.blobs.temp_files(HOT) == []


async def test_fsck_finds_corrupted_and_missing_objects(services: Services) -> None:
    corrupt = await upload(services, "corrupt", b"precious bytes")
    lost = await upload(services, "lost", b"lost bytes")
    store = s3(services)._stores[HOT]
    await obstore.put_async(store, f"blobs/{corrupt.version.id}", b"Precious bytes")
    await obstore.delete_async(store, f"blobs/{lost.version.id}")
    report = await check_store(services.metadata, services.blobs, repair=True)
    kinds = {p.kind: p for p in report.problems}
    assert set(kinds) == {ProblemKind.HASH_MISMATCH, ProblemKind.MISSING_BLOB}
    assert kinds[ProblemKind.HASH_MISMATCH].object_ids == (corrupt.version.id,)
    assert kinds[ProblemKind.MISSING_BLOB].object_ids == (lost.version.id,)
    assert report.damaged


def run(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JUSTSTORAGE_", "AWS_"))}
    started = time.monotonic()
    done = subprocess.run(
        [str(CLI), *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done, time.monotonic() - started


async def test_gc_and_fsck_commands_work_on_s3_and_exit_promptly(
    services: Services, env: dict[str, str]
) -> None:
    await upload(services, "k", b"clean")
    gone = await upload(services, "gone", b"gone")
    await delete_object(services.metadata, ACME, gone.version.id)
    await services.metadata.close()

    done, seconds = run(env, "fsck")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 blobs" in done.stdout and "0 problems" in done.stdout
    # A hang would be the S3 client's 60 s timeout; a slow start is not one.
    assert seconds < 30, f"fsck took {seconds:.1f} s to exit"

    done, seconds = run({**env, "JUSTSTORAGE_GC_GRACE_S": "0"}, "gc")
    assert done.returncode == 0, done.stderr
    assert f"removed blob sha256:{gone.version.content_hash.hex}" in done.stdout
    assert seconds < 30, f"gc took {seconds:.1f} s to exit"
    assert run(env, "fsck")[0].returncode == 0
