"""Multipart upload sessions on an s3:// root (a real SeaweedFS) with SQLite (SPEC
§8.2): parts stored as objects, completion done by the store (UploadPartCopy, no
byte sent again), GC and fsck of part objects and of unfinished part uploads."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import obstore
import pytest

from juststorage.adapters.blobs import s3_multipart
from juststorage.adapters.blobs.s3 import S3BlobStore
from juststorage.adapters.blobs.s3_parts import S3PartStore
from juststorage.application.fsck import ProblemKind, check_store
from juststorage.application.gc import GcPolicy, collect_garbage
from juststorage.application.sessions import SessionRequest
from juststorage.bootstrap import Services, build
from juststorage.domain.model import Namespace, ObjectKey, StorageClass, TenantId
from support.seaweedfs import SeaweedFs

pytestmark = pytest.mark.anyio


def s3_settings(seaweedfs: SeaweedFs, data_dir: Path) -> dict[str, str]:
    prefix = uuid.uuid4().hex
    return {
        **seaweedfs.env(),
        "JUSTSTORAGE_DATA_DIR": str(data_dir),
        "JUSTSTORAGE_HOT_ROOT": seaweedfs.root(f"{prefix}/hot"),
        "JUSTSTORAGE_COLD_ROOT": seaweedfs.root(f"{prefix}/cold"),
        "JUSTSTORAGE_INLINE_MAX_BYTES": "0",
    }


def s3(services: Services) -> S3BlobStore:
    return parts_store(services).blobs


ACME, MODELS = TenantId("acme"), Namespace("models")
HOT = StorageClass.HOT
MIB = 1024 * 1024


@pytest.fixture
async def services(seaweedfs: SeaweedFs, tmp_path: Path) -> AsyncIterator[Services]:
    from juststorage.config import load_settings

    built = build(load_settings(s3_settings(seaweedfs, tmp_path)))
    await built.metadata.migrate()
    try:
        yield built
    finally:
        await built.metadata.close()


def parts_store(services: Services) -> S3PartStore:
    store = services.part_stores[HOT]
    assert isinstance(store, S3PartStore)
    return store


async def body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MIB):
        yield data[start : start + MIB]


async def listed(services: Services, prefix: str) -> list[str]:
    store = s3(services).object_store(HOT)
    return sorted([m["path"] async for page in obstore.list(store, prefix=prefix) for m in page])


async def test_completion_is_done_by_the_store_and_leaves_no_part(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = services.sessions
    session = await sessions.create(SessionRequest(ACME, MODELS, ObjectKey("m.bin")))
    parts = [os.urandom(5 * MIB), os.urandom(5 * MIB + 3), os.urandom(1000)]
    for number in (1, 3, 2):  # 3 out of order: read once at completion to hash it
        await sessions.put_part(ACME, session.id, number, body(parts[number - 1]))
    assert len(await listed(services, f"parts/{session.id}/")) == 3
    copies: list[int] = []
    real = s3_multipart.copy_into

    async def counted(*args: object) -> None:
        copies.append(len(args[3]))  # type: ignore[arg-type]
        await real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(s3_multipart, "copy_into", counted)
    done = await sessions.complete(ACME, session.id)
    whole = b"".join(parts)
    assert done.created and done.version.content_hash.hex == hashlib.sha256(whole).hexdigest()
    assert copies == [3]  # one UploadPartCopy per part, server-side
    key = f"blobs/{done.version.id}"
    store = s3(services).object_store(HOT)
    assert bytes(await (await obstore.get_async(store, key)).bytes_async()) == whole
    assert await listed(services, "parts/") == []
    again = await sessions.complete(ACME, session.id)
    assert not again.created and again.version.id == done.version.id
    report = await check_store(
        services.metadata,
        services.blobs,
        parts=services.part_stores,
        liveness=services.liveness,
    )
    assert report.problems == []


async def test_gc_removes_leaked_part_objects_and_unfinished_part_uploads(
    services: Services,
) -> None:
    sessions = services.sessions
    session = await sessions.create(SessionRequest(ACME, MODELS, ObjectKey("m.bin")))
    await sessions.put_part(ACME, session.id, 1, body(b"live part"))
    store = s3(services).object_store(HOT)
    root = s3(services).roots[HOT]
    dead = f"parts/{session.id}/2.{uuid.uuid4()}"  # no owner: judged by age (grace 0)
    await obstore.put_async(store, dead, b"cut off")
    # A large part cut off mid-way: an unfinished multipart upload, invisible to a list.
    unfinished = f"parts/{session.id}/3.{uuid.uuid4()}"
    async with s3_multipart._client(s3(services).connection) as client:
        await client.create_multipart_upload(Bucket=root.bucket, Key=root.full_key(unfinished))
    found = await check_store(
        services.metadata, services.blobs, parts=services.part_stores, liveness=services.liveness
    )
    leaked = sorted(p.address for p in found.problems if p.kind is ProblemKind.LEAKED_PART)
    assert len(leaked) == 2, found.problems
    report = await collect_garbage(
        services.metadata,
        services.blobs,
        services.clock,
        GcPolicy(grace_seconds=0),
        services.liveness,
        services.part_stores,
    )
    assert report.part_files_removed == 2
    assert len(await listed(services, f"parts/{session.id}/")) == 1  # the live part
    assert await s3_multipart.unfinished_uploads(s3(services).connection, root, "parts/") == []
    clean = await check_store(
        services.metadata, services.blobs, parts=services.part_stores, liveness=services.liveness
    )
    assert clean.problems == []
    await sessions.abort(ACME, session.id)
    assert await listed(services, "parts/") == []


async def test_gc_leaves_a_part_upload_in_flight_alone(services: Services) -> None:
    """A large part paused mid-body: its unfinished multipart upload's time never
    advances, yet GC, even judging writers silent at once, leaves it alone while its
    writer holds the part's lease; the part is stored and the object is its bytes."""
    sessions = services.sessions
    session = await sessions.create(SessionRequest(ACME, MODELS, ObjectKey("m.bin")))
    first, second = os.urandom(12 * MIB), os.urandom(MIB)
    paused, resume = asyncio.Event(), asyncio.Event()

    async def stalling() -> AsyncIterator[bytes]:
        async for chunk in body(first[: 10 * MIB]):
            yield chunk
        paused.set()
        await resume.wait()
        async for chunk in body(first[10 * MIB :]):
            yield chunk

    writing = asyncio.ensure_future(sessions.put_part(ACME, session.id, 1, stalling()))
    root = s3(services).roots[HOT]
    connection = s3(services).connection
    await paused.wait()
    for _ in range(100):  # the writer sends its first piece in the background
        if await s3_multipart.unfinished_uploads(connection, root, f"parts/{session.id}/"):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("no multipart upload of the part began")
    report = await collect_garbage(
        services.metadata,
        services.blobs,
        services.clock,
        GcPolicy(grace_seconds=0, remote_owner_seconds=0),  # as after a long pause
        services.liveness,
        services.part_stores,
    )
    resume.set()
    part = await writing
    assert part.sha256.hex == hashlib.sha256(first).hexdigest()
    await sessions.put_part(ACME, session.id, 2, body(second))
    done = await sessions.complete(ACME, session.id)
    whole = first + second
    assert done.version.content_hash.hex == hashlib.sha256(whole).hexdigest()
    store = s3(services).object_store(HOT)
    key = f"blobs/{done.version.id}"
    assert bytes(await (await obstore.get_async(store, key)).bytes_async()) == whole
    assert report.part_files_removed == 0
    clean = await check_store(
        services.metadata, services.blobs, parts=services.part_stores, liveness=services.liveness
    )
    assert clean.problems == []
