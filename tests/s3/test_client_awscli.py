"""aws-cli v1 (the venv's `aws`, its own botocore, default settings: checksums on)
against the gateway: `aws s3 cp/sync/ls/rm` and `aws s3api` for multipart and
conditional requests. Each run has its own config and credentials files and HOME
in a temp dir; AWS_* of the caller's shell never reach it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .clients_support import (
    MIB,
    Gateway,
    S3Key,
    aws,
    aws_json,
    big_file,
    fresh_name,
    gateway_of,
    make_file,
    running_gateway,
    sha256_of,
    v1_read,
    v1_status,
    v1_write,
)

pytestmark = pytest.mark.e2e

TENANT, NS = "bravo", "files"
BUCKET = f"{TENANT}.{NS}"


@pytest.fixture(scope="module")
def gw(s3_start: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_of(s3_start, tmp_path_factory) as g:
        yield g


@pytest.fixture(scope="module")
def key(gw: Gateway) -> S3Key:
    return gw.s3_key((TENANT,))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_cp_ls_sync_rm(gw: Gateway, key: S3Key, home: Path, tmp_path: Path) -> None:
    prefix = fresh_name("tree")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    files = {"a.txt": b"alpha\n", "sub/b.bin": bytes(range(256)) * 50, "sub/c": b""}
    for rel, data in files.items():
        (src / rel).write_bytes(data)

    aws(gw, key, home, "s3", "cp", str(src / "a.txt"), f"s3://{BUCKET}/{prefix}/single.txt")
    assert v1_read(gw, TENANT, NS, f"{prefix}/single.txt", key.bearer)[1] == 6

    aws(gw, key, home, "s3", "sync", str(src), f"s3://{BUCKET}/{prefix}/tree")
    listing = aws(gw, key, home, "s3", "ls", "--recursive", f"s3://{BUCKET}/{prefix}/tree/")
    listed = sorted(line.split()[-1] for line in listing.stdout.splitlines())
    assert listed == sorted(f"{prefix}/tree/{rel}" for rel in files)
    top = aws(gw, key, home, "s3", "ls", f"s3://{BUCKET}/{prefix}/tree/").stdout
    assert "PRE sub/" in top and "a.txt" in top

    # Sync again: only the changed file is sent.
    (src / "a.txt").write_bytes(b"alpha, changed\n")
    changed = aws(gw, key, home, "s3", "sync", str(src), f"s3://{BUCKET}/{prefix}/tree")
    uploads = [line for line in changed.stdout.splitlines() if line.startswith("upload:")]
    assert len(uploads) == 1 and uploads[0].endswith(f"/{prefix}/tree/a.txt"), uploads

    down = tmp_path / "down"
    aws(gw, key, home, "s3", "sync", f"s3://{BUCKET}/{prefix}/tree", str(down))
    for rel in files:
        assert (down / rel).read_bytes() == (src / rel).read_bytes(), rel

    aws(gw, key, home, "s3", "rm", "--recursive", f"s3://{BUCKET}/{prefix}/tree")
    for rel in files:
        assert v1_status(gw, TENANT, NS, f"{prefix}/tree/{rel}") == 404, rel


def test_s3api_multipart(gw: Gateway, key: S3Key, home: Path, tmp_path: Path) -> None:
    name = fresh_name("mpu")
    parts = [make_file(tmp_path / f"part{n}", 5 * MIB if n < 3 else 1234) for n in (1, 2, 3)]
    created = aws_json(
        gw, key, home, "s3api", "create-multipart-upload", "--bucket", BUCKET, "--key", name
    )
    upload_id = created["UploadId"]
    etags = []
    for n, part in enumerate(parts, start=1):
        sent = aws_json(
            gw, key, home, "s3api", "upload-part", "--bucket", BUCKET, "--key", name,
            "--upload-id", upload_id, "--part-number", str(n), "--body", str(part.path),
        )  # fmt: skip
        assert sent["ETag"] == f'"{part.sha256}"'
        etags.append(sent["ETag"])
    listed = aws_json(
        gw, key, home, "s3api", "list-parts", "--bucket", BUCKET, "--key", name,
        "--upload-id", upload_id,
    )  # fmt: skip
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2, 3]
    uploads = aws_json(gw, key, home, "s3api", "list-multipart-uploads", "--bucket", BUCKET)
    assert upload_id in [u["UploadId"] for u in uploads.get("Uploads", [])]

    layout = tmp_path / "parts.json"
    layout.write_text(
        json.dumps({"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]})
    )
    done = aws_json(
        gw, key, home, "s3api", "complete-multipart-upload", "--bucket", BUCKET, "--key", name,
        "--upload-id", upload_id, "--multipart-upload", f"file://{layout}",
    )  # fmt: skip
    whole = hashlib.sha256(b"".join(p.path.read_bytes() for p in parts)).hexdigest()
    assert done["ETag"] == f'"{whole}-3"'
    assert v1_read(gw, TENANT, NS, name, key.bearer) == (whole, 10 * MIB + 1234)

    aborted = aws_json(
        gw, key, home, "s3api", "create-multipart-upload", "--bucket", BUCKET, "--key", name
    )
    aws(
        gw, key, home, "s3api", "abort-multipart-upload", "--bucket", BUCKET, "--key", name,
        "--upload-id", aborted["UploadId"],
    )  # fmt: skip
    uploads = aws_json(gw, key, home, "s3api", "list-multipart-uploads", "--bucket", BUCKET)
    assert aborted["UploadId"] not in [u["UploadId"] for u in uploads.get("Uploads", [])]


def test_s3api_conditional_put_and_get(gw: Gateway, key: S3Key, home: Path, tmp_path: Path) -> None:
    name = fresh_name("cond")
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_bytes(b"one")
    two.write_bytes(b"two")
    base = ("s3api", "put-object", "--bucket", BUCKET, "--key", name)
    first = aws_json(gw, key, home, *base, "--body", str(one), "--if-none-match", "*")
    refused = aws(gw, key, home, *base, "--body", str(two), "--if-none-match", "*", check=False)
    assert refused.returncode != 0 and "PreconditionFailed" in refused.stderr
    stale = aws(
        gw, key, home, *base, "--body", str(two), "--if-match", '"' + "0" * 32 + '"', check=False
    )
    assert stale.returncode != 0 and "PreconditionFailed" in stale.stderr
    second = aws_json(gw, key, home, *base, "--body", str(two), "--if-match", first["ETag"])

    out = tmp_path / "out"
    get = ("s3api", "get-object", "--bucket", BUCKET, "--key", name)
    fetched = aws_json(gw, key, home, *get, "--if-match", second["ETag"], str(out))
    assert out.read_bytes() == b"two" and fetched["ETag"] == second["ETag"]
    mismatch = aws(gw, key, home, *get, "--if-match", first["ETag"], str(out), check=False)
    assert mismatch.returncode != 0 and "PreconditionFailed" in mismatch.stderr
    unchanged = aws(gw, key, home, *get, "--if-none-match", second["ETag"], str(out), check=False)
    assert unchanged.returncode != 0 and "304" in unchanged.stderr
    ranged = aws_json(gw, key, home, *get, "--range", "bytes=1-2", str(out))
    assert out.read_bytes() == b"wo" and ranged["ContentRange"] == "bytes 1-2/3"


def test_100_mib_both_ways(
    gw: Gateway, key: S3Key, home: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    big = big_file(tmp_path_factory)
    name = fresh_name("big")
    aws(gw, key, home, "s3", "cp", str(big.path), f"s3://{BUCKET}/{name}")
    assert v1_read(gw, TENANT, NS, name, gw.server.admin_key) == (big.sha256, big.size)

    other = fresh_name("big-v1")
    v1_write(gw, TENANT, NS, other, key.bearer, big.path)
    out = tmp_path / "big.out"
    aws(gw, key, home, "s3", "cp", f"s3://{BUCKET}/{other}", str(out))
    assert sha256_of(out) == big.sha256


@pytest.fixture(scope="module")
def tls_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway whose listeners speak HTTPS (a fresh self-signed certificate)."""
    with running_gateway(tmp_path_factory.mktemp("gw-tls"), tls=True) as g:
        yield g


def test_cp_over_https_sends_trailing_checksums(tls_gw: Gateway, tmp_path: Path) -> None:
    """Over HTTPS aws-cli's botocore sends STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies
    with a CRC32 trailer, for single uploads and for each part of a multipart one."""
    key = tls_gw.s3_key((TENANT,))
    home = tmp_path / "home"
    small = tmp_path / "small.txt"
    small.write_bytes(b"over tls\n" * 1000)
    large = make_file(tmp_path / "large.bin", 9 * MIB + 5)  # over the 8 MiB threshold
    for src in (small, large.path):
        aws(tls_gw, key, home, "s3", "cp", str(src), f"s3://{BUCKET}/tls/{src.name}")
        expected = (sha256_of(src), src.stat().st_size)
        assert v1_read(tls_gw, TENANT, NS, f"tls/{src.name}", key.bearer) == expected
    out = tmp_path / "back.bin"
    aws(tls_gw, key, home, "s3", "cp", f"s3://{BUCKET}/tls/large.bin", str(out))
    assert sha256_of(out) == large.sha256
