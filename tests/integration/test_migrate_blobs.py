"""`juststorage migrate-blobs`: a filesystem store's blobs moved to S3 (SeaweedFS),
verified by hash and resumable; then the same database served from s3:// roots."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from juststorage.adapters.blobs.filesystem import blob_path
from juststorage.application.deletes import delete_object
from juststorage.application.downloads import find_by_id
from juststorage.application.fsck import check_store
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services, build
from juststorage.config import load_settings
from juststorage.domain.model import Namespace, ObjectKey, StorageClass, TenantId
from support.seaweedfs import SeaweedFs

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT, COLD = StorageClass.HOT, StorageClass.COLD
CLI = Path(sys.executable).parent / "juststorage"
MIB = 1024 * 1024


async def upload(services: Services, key: str, data: bytes, cls: StorageClass) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        for start in range(0, len(data), MIB):
            yield data[start : start + MIB]

    return await services.uploader.upload(
        UploadRequest(ACME, FILES, ObjectKey(key), storage_class=cls), body()
    )


def migrate(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JUSTSTORAGE_", "AWS_"))}
    done = subprocess.run(
        [str(CLI), "migrate-blobs", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


async def test_blobs_move_to_s3_verified_and_resumable(
    seaweedfs: SeaweedFs, tmp_path: Path
) -> None:
    fs_env = {
        "JUSTSTORAGE_DATA_DIR": str(tmp_path),
        "JUSTSTORAGE_INLINE_MAX_BYTES": "0",  # every blob a file to move
        **seaweedfs.env(),
    }
    services = build(load_settings(fs_env))
    await services.metadata.migrate()
    await services.blobs.prepare()
    datas = {f"k{i}": os.urandom(size) for i, size in enumerate([0, 10, 6 * MIB, 3000])}
    versions = {}
    for i, (key, data) in enumerate(datas.items()):
        versions[key] = (await upload(services, key, data, COLD if i % 2 else HOT)).version
    gone = await upload(services, "gone", b"released but not yet collected", HOT)
    await delete_object(services.metadata, ACME, gone.version.id)
    await services.metadata.close()

    damaged = blob_path(tmp_path / "hot", versions["k2"].content_hash)
    original = damaged.read_bytes()
    damaged.write_bytes(b"X" + original[1:])
    prefix = uuid.uuid4().hex
    targets = {
        "hot": seaweedfs.root(f"{prefix}/hot"),
        "cold": seaweedfs.root(f"{prefix}/cold"),
    }
    to = ["--to-hot", targets["hot"], "--to-cold", targets["cold"]]

    done = migrate(fs_env, *to)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"problem hot sha256:{versions['k2'].content_hash.hex}" in done.stdout
    assert "migrate-blobs hot: 2 blobs" in done.stdout  # k0 and the released one
    assert "1 remaining" in done.stdout
    assert "migrate-blobs cold: 2 blobs" in done.stdout and "0 remaining" in done.stdout

    damaged.write_bytes(original)  # restored: running it again finishes the job
    done = migrate(fs_env, *to)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "migrate-blobs hot: 1 blobs" in done.stdout and "0 remaining" in done.stdout
    assert "migrate-blobs cold: 0 blobs" in done.stdout

    s3_env = {**fs_env, "JUSTSTORAGE_HOT_ROOT": targets["hot"]}
    s3_env["JUSTSTORAGE_COLD_ROOT"] = targets["cold"]
    moved = build(load_settings(s3_env))
    try:
        for key, data in datas.items():
            version = versions[key]
            found = await find_by_id(moved.metadata, version.tenant_id, version.id)
            reader = await moved.blobs.open(found.blob)
            got = b"".join([c async for c in reader.chunks(0, version.size_bytes)])
            assert hashlib.sha256(got).hexdigest() == version.content_hash.hex
            assert got == data
        report = await check_store(moved.metadata, moved.blobs)
        assert report.problems == [], [p.describe() for p in report.problems]
        assert report.blobs_checked == 5
    finally:
        await moved.metadata.close()


async def test_migrate_blobs_needs_a_target_and_directory_sources(
    seaweedfs: SeaweedFs, tmp_path: Path
) -> None:
    env = {"JUSTSTORAGE_DATA_DIR": str(tmp_path), **seaweedfs.env()}
    assert migrate(env).returncode == 2
    done = migrate({**env, "JUSTSTORAGE_HOT_ROOT": seaweedfs.root()}, "--to-hot", seaweedfs.root())
    assert done.returncode == 2 and "source is s3://" in done.stderr
