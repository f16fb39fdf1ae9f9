"""rclone (Debian's package) against the gateway through an s3 remote (provider
Other, path style) in a config file of its own: copy, sync, check, and files over
its multipart threshold. Without rclone these tests skip locally and fail in CI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .clients_support import (
    MIB,
    REMOTE,
    Gateway,
    S3Key,
    big_file,
    fresh_name,
    gateway_of,
    make_file,
    rclone,
    rclone_binary,
    sha256_of,
    v1_read,
    v1_status,
    v1_write,
)

pytestmark = pytest.mark.e2e

TENANT, NS = "charlie", "files"
BUCKET = f"{TENANT}.{NS}"
# Small parts keep the multipart cases fast; rclone's own minimum part is 5 MiB.
MULTIPART = ("--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M")


@pytest.fixture(scope="module")
def gw(s3_start: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    rclone_binary()  # skip (or fail in CI) before starting anything
    with gateway_of(s3_start, tmp_path_factory) as g:
        yield g


@pytest.fixture(scope="module")
def key(gw: Gateway) -> S3Key:
    return gw.s3_key((TENANT,))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def remote(path: str) -> str:
    return f"{REMOTE}:{BUCKET}/{path}"


def test_copy_sync_check(gw: Gateway, key: S3Key, home: Path, tmp_path: Path) -> None:
    prefix = fresh_name("tree")
    src = tmp_path / "src"
    (src / "deep" / "er").mkdir(parents=True)
    files = {
        "a.txt": b"alpha\n",
        "deep/b.bin": bytes(range(256)) * 400,
        "deep/er/c.txt": "ünïcode ✓\n".encode(),
    }
    for rel, data in files.items():
        (src / rel).write_bytes(data)

    rclone(gw, key, home, "copy", str(src), remote(prefix))
    for rel, data in files.items():
        assert v1_read(gw, TENANT, NS, f"{prefix}/{rel}", key.bearer)[1] == len(data), rel
    rclone(gw, key, home, "check", str(src), remote(prefix))  # sizes and MD5s
    listed = rclone(gw, key, home, "lsf", "-R", "--files-only", remote(prefix)).stdout
    assert sorted(listed.split()) == sorted(files)

    # sync: a new file is sent, a removed one deleted, a changed one replaced.
    (src / "a.txt").unlink()
    (src / "new.txt").write_bytes(b"new\n")
    (src / "deep" / "b.bin").write_bytes(b"changed")
    rclone(gw, key, home, "sync", str(src), remote(prefix))
    rclone(gw, key, home, "check", str(src), remote(prefix))
    assert v1_status(gw, TENANT, NS, f"{prefix}/a.txt") == 404
    assert v1_read(gw, TENANT, NS, f"{prefix}/deep/b.bin", key.bearer)[1] == len(b"changed")

    down = tmp_path / "down"
    rclone(gw, key, home, "copy", remote(prefix), str(down))
    for path in src.rglob("*"):
        if path.is_file():
            assert (down / path.relative_to(src)).read_bytes() == path.read_bytes()

    # check notices a difference.
    (src / "new.txt").write_bytes(b"different\n")
    differs = rclone(gw, key, home, "check", str(src), remote(prefix), check=False)
    assert differs.returncode != 0

    rclone(gw, key, home, "purge", remote(prefix))
    assert rclone(gw, key, home, "lsf", "-R", remote(prefix), check=False).stdout == ""


def test_large_file_over_the_multipart_threshold(
    gw: Gateway, key: S3Key, home: Path, tmp_path: Path
) -> None:
    src_dir = tmp_path / "large"
    src_dir.mkdir()
    large = make_file(src_dir / "large.bin", 12 * MIB + 7)
    prefix = fresh_name("large")
    rclone(gw, key, home, "copy", *MULTIPART, str(src_dir), remote(prefix))
    assert v1_read(gw, TENANT, NS, f"{prefix}/large.bin", key.bearer) == (large.sha256, large.size)
    # A multipart object's ETag is no MD5: rclone checks the MD5 it stored in metadata.
    rclone(gw, key, home, "check", str(src_dir), remote(prefix))
    out = tmp_path / "out"
    rclone(gw, key, home, "copy", remote(prefix), str(out))
    assert sha256_of(out / "large.bin") == large.sha256


def test_100_mib_both_ways(
    gw: Gateway, key: S3Key, home: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    big = big_file(tmp_path_factory)
    name = fresh_name("big")
    rclone(gw, key, home, "copyto", *MULTIPART, str(big.path), remote(name))
    assert v1_read(gw, TENANT, NS, name, gw.server.admin_key) == (big.sha256, big.size)

    other = fresh_name("big-v1")
    v1_write(gw, TENANT, NS, other, key.bearer, big.path)
    out = tmp_path / "big.out"
    rclone(gw, key, home, "copyto", remote(other), str(out))
    assert sha256_of(out) == big.sha256
