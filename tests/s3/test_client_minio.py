"""minio-py (the one S3 SDK here not built on botocore: its own SigV4 and
multipart code) against the gateway: fput/fget, stat, list, remove, multipart."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from .clients_support import (
    MIB,
    Gateway,
    S3Key,
    big_file,
    fresh_name,
    gateway_of,
    make_file,
    minio_client,
    sha256_of,
    v1_read,
    v1_status,
    v1_write,
)

pytestmark = pytest.mark.e2e

TENANT, NS = "delta", "files"
BUCKET = f"{TENANT}.{NS}"


@pytest.fixture(scope="module")
def gw(s3_start: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_of(s3_start, tmp_path_factory) as g:
        yield g


@pytest.fixture(scope="module")
def key(gw: Gateway) -> S3Key:
    return gw.s3_key((TENANT,))


@pytest.fixture(scope="module")
def mc(gw: Gateway, key: S3Key) -> Any:
    return minio_client(gw, key)


def test_fput_fget_stat_list_remove(gw: Gateway, key: S3Key, mc: Any, tmp_path: Path) -> None:
    prefix = fresh_name("m") + "/"
    src = tmp_path / "small.txt"
    src.write_bytes(b"minio says hello\n" * 10)
    written = mc.fput_object(
        BUCKET, f"{prefix}small.txt", str(src), content_type="text/plain", metadata={"k": "v"}
    )
    assert written.etag == hashlib.md5(src.read_bytes()).hexdigest()
    assert mc.bucket_exists(BUCKET)

    stat = mc.stat_object(BUCKET, f"{prefix}small.txt")
    assert stat.size == src.stat().st_size and stat.etag == written.etag
    assert stat.content_type == "text/plain"
    assert stat.metadata.get("x-amz-meta-k") == "v"

    out = tmp_path / "out.txt"
    mc.fget_object(BUCKET, f"{prefix}small.txt", str(out))
    assert out.read_bytes() == src.read_bytes()
    got = mc.get_object(BUCKET, f"{prefix}small.txt", offset=6, length=4)
    try:
        assert got.read() == b"says"
    finally:
        got.close()
        got.release_conn()

    mc.put_object(BUCKET, f"{prefix}sub/b", io.BytesIO(b"b"), 1)
    mc.copy_object(BUCKET, f"{prefix}copy.txt", CopySource(BUCKET, f"{prefix}small.txt"))
    top = [(o.object_name, o.is_dir) for o in mc.list_objects(BUCKET, prefix=prefix)]
    assert top == [
        (f"{prefix}copy.txt", False),
        (f"{prefix}small.txt", False),
        (f"{prefix}sub/", True),
    ]
    deep = [o.object_name for o in mc.list_objects(BUCKET, prefix=prefix, recursive=True)]
    assert deep == [f"{prefix}copy.txt", f"{prefix}small.txt", f"{prefix}sub/b"]

    mc.remove_object(BUCKET, f"{prefix}small.txt")
    with pytest.raises(S3Error) as gone:
        mc.stat_object(BUCKET, f"{prefix}small.txt")
    assert gone.value.code == "NoSuchKey"
    errors = list(
        mc.remove_objects(
            BUCKET, [DeleteObject(f"{prefix}copy.txt"), DeleteObject(f"{prefix}sub/b")]
        )
    )
    assert errors == []
    assert list(mc.list_objects(BUCKET, prefix=prefix, recursive=True)) == []
    assert v1_status(gw, TENANT, NS, f"{prefix}copy.txt") == 404


def test_multipart_upload(gw: Gateway, key: S3Key, mc: Any, tmp_path: Path) -> None:
    """fput_object with 5 MiB parts: minio-py's own multipart upload."""
    src = make_file(tmp_path / "mp.bin", 16 * MIB + 3)
    name = fresh_name("mp")
    written = mc.fput_object(BUCKET, name, str(src.path), part_size=5 * MIB)
    assert written.etag == f"{src.sha256}-4"
    assert v1_read(gw, TENANT, NS, name, key.bearer) == (src.sha256, src.size)
    out = tmp_path / "mp.out"
    mc.fget_object(BUCKET, name, str(out))
    assert sha256_of(out) == src.sha256


def test_100_mib_both_ways(
    gw: Gateway, key: S3Key, mc: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    big = big_file(tmp_path_factory)
    name = fresh_name("big")
    mc.fput_object(BUCKET, name, str(big.path))
    assert v1_read(gw, TENANT, NS, name, gw.server.admin_key) == (big.sha256, big.size)

    other = fresh_name("big-v1")
    v1_write(gw, TENANT, NS, other, key.bearer, big.path)
    out = tmp_path / "big.out"
    mc.fget_object(BUCKET, other, str(out))
    assert sha256_of(out) == big.sha256
