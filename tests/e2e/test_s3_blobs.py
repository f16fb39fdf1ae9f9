"""The real server with both storage classes on S3 (SeaweedFS): what the filesystem
tests check in blob files (marked `filesystem_layout`), checked in the bucket here —
one object per blob, nothing left by failed or aborted uploads — and /ready when the
object store is missing or unreachable, or (on Ceph RGW) its bucket is missing."""

from __future__ import annotations

import concurrent.futures
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import obstore
import pytest
from obstore.store import S3Store

from juststorage.adapters.blobs import s3_multipart
from juststorage.adapters.blobs.s3_io import S3Connection, S3Root
from juststorage.testing import Server, free_port, start, wait_until
from support.radosgw import RadosGw
from support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, SeaweedFs

from .support import by_key_path, sha256_hex, unique_name, upload

pytestmark = [pytest.mark.e2e, pytest.mark.s3]
MIB = 1024 * 1024


class Bucket:
    """What the server stored under its roots' prefix, seen straight through S3."""

    def __init__(self, seaweedfs: SeaweedFs, prefix: str) -> None:
        self.prefix = prefix
        self.store = S3Store(
            seaweedfs.bucket,
            prefix=prefix,
            config={
                "endpoint": seaweedfs.endpoint_url,
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "region": REGION,
            },
            client_options={"allow_http": True},
        )

    def objects(self, storage_class: str = "hot") -> list[str]:
        return sorted(
            m["path"] for page in obstore.list(self.store, f"{storage_class}/blobs/") for m in page
        )

    def read(self, key: str) -> bytes:
        return bytes(obstore.get(self.store, key).bytes())


@pytest.fixture(scope="module")
def s3_server(seaweedfs: SeaweedFs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    prefix = uuid.uuid4().hex
    server = start(
        tmp_path_factory.mktemp("s3-server"),
        {
            **seaweedfs.env(),
            "JUSTSTORAGE_HOT_ROOT": seaweedfs.root(f"{prefix}/hot"),
            "JUSTSTORAGE_COLD_ROOT": seaweedfs.root(f"{prefix}/cold"),
            "JUSTSTORAGE_S3_PART_BYTES": str(5 * MIB),
            "JUSTSTORAGE_MAX_OBJECT_BYTES": str(64 * MIB),
            "JUSTSTORAGE_INLINE_MAX_BYTES": "0",  # every blob an S3 object: what this tests
        },
    )
    server.bucket = Bucket(seaweedfs, prefix)  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


def bucket(server: Server) -> Bucket:
    found: Bucket = server.bucket  # type: ignore[attr-defined]
    return found


def test_uploads_of_the_same_bytes_share_one_object_per_class(s3_server: Server) -> None:
    auth, tenant = s3_server.admin_headers(), unique_name()
    data = os.urandom(7 * MIB)  # a multipart upload

    def put(key: str) -> int:
        return upload(s3_server.client, auth, tenant, "n", key, data).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(put, [f"k{i}" for i in range(6)])) == [201] * 6
    cold = upload(s3_server.client, auth, tenant, "n", "c", data, x_storage_class="cold")
    assert cold.status_code == 201
    (hot_key,) = bucket(s3_server).objects("hot")
    (cold_key,) = bucket(s3_server).objects("cold")
    assert bucket(s3_server).read(hot_key) == data
    assert cold_key == f"cold/blobs/{cold.json()['id']}"
    for i in range(6):
        got = s3_server.client.get(by_key_path("n", tenant, f"k{i}"), headers=auth)
        assert got.status_code == 200 and got.content == data
    ranged = s3_server.client.get(
        by_key_path("n", tenant, "k3"), headers={**auth, "Range": "bytes=5242870-5242889"}
    )
    assert ranged.status_code == 206 and ranged.content == data[5242870:5242890]


def test_failed_uploads_leave_no_object_and_no_multipart_upload(s3_server: Server) -> None:
    auth, tenant = s3_server.admin_headers(), unique_name()
    before = bucket(s3_server).objects("hot")
    data = os.urandom(6 * MIB)
    bad = upload(s3_server.client, auth, tenant, "n", "bad", data, x_content_sha256="0" * 64)
    assert bad.status_code == 400
    too_big = upload(s3_server.client, auth, tenant, "n", "big", os.urandom(65 * MIB))
    assert too_big.status_code == 413
    assert upload(s3_server.client, auth, tenant, "n", "k", b"v1").status_code == 201
    refused = upload(s3_server.client, auth, tenant, "n", "k", data, if_none_match="*")
    assert refused.status_code == 412
    assert len(bucket(s3_server).objects("hot")) == len(before) + 1  # only "k"
    assert wait_until(lambda: _no_multipart_uploads(s3_server), timeout=10)


def test_an_aborted_upload_leaves_nothing_behind(s3_server: Server) -> None:
    tenant = unique_name()
    declared = 32 * MIB
    head = (
        "POST /v1/objects HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{s3_server.port}\r\n"
        f"Authorization: Bearer {s3_server.admin_key}\r\n"
        f"X-Tenant: {tenant}\r\nX-Namespace: n\r\nX-Key: aborted\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode("ascii")
    before = bucket(s3_server).objects("hot")
    # The timeout covers the whole sendall: the server must drain 12 MiB meanwhile.
    with socket.create_connection(("127.0.0.1", s3_server.port), timeout=60) as sock:
        sock.sendall(head)
        sock.sendall(os.urandom(12 * MIB))  # two parts: a multipart upload is under way
        assert wait_until(lambda: not _no_multipart_uploads(s3_server), timeout=30)
        time.sleep(0.1)
    assert wait_until(lambda: _no_multipart_uploads(s3_server), timeout=30)
    assert bucket(s3_server).objects("hot") == before
    auth = s3_server.admin_headers()
    assert (
        s3_server.client.get(by_key_path("n", tenant, "aborted"), headers=auth).status_code == 404
    )
    assert upload(s3_server.client, auth, tenant, "n", "after", b"fine").status_code == 201


def _no_multipart_uploads(server: Server) -> bool:
    connection = S3Connection(
        endpoint_url=server.env["AWS_ENDPOINT_URL"],
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        allow_http=True,
    )
    root = S3Root.parse(server.env["JUSTSTORAGE_HOT_ROOT"])
    uploads = anyio.run(s3_multipart.unfinished_uploads, connection, root, "blobs/")
    return uploads == []


def test_ready_is_503_when_the_store_refuses_or_is_unreachable(
    seaweedfs: SeaweedFs, tmp_path: Path
) -> None:
    root = seaweedfs.root()
    env = {
        **seaweedfs.env(),
        "JUSTSTORAGE_HOT_ROOT": root,
        "JUSTSTORAGE_S3_TIMEOUT_SECONDS": "3",
        "JUSTSTORAGE_INLINE_MAX_BYTES": "0",  # an upload needs the store
    }
    server = start(tmp_path, {**env, "AWS_SECRET_ACCESS_KEY": "wrong"})
    try:
        ready = server.client.get("/ready")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["cold"] == "ok" and checks["database"] == "ok"
        # A short reason, naming neither the bucket nor the endpoint (SPEC §2 Errors).
        assert checks["hot"] != "ok" and root not in checks["hot"]
        assert "127.0.0.1" not in checks["hot"]
    finally:
        server.stop()
    unreachable = {
        **env,
        "JUSTSTORAGE_HOT_ROOT": seaweedfs.root(),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens there
    }
    server = start(tmp_path, unreachable)
    try:
        started = time.monotonic()
        ready = server.client.get("/ready")
        assert ready.status_code == 503
        assert time.monotonic() - started < 20
        auth, tenant = server.admin_headers(), unique_name()
        assert upload(server.client, auth, tenant, "n", "k", b"x").status_code == 503
        cold = upload(server.client, auth, tenant, "n", "k", b"x", x_storage_class="cold")
        assert cold.status_code == 201  # the other class is a local directory
        assert sha256_hex(b"x") in cold.json()["content_hash"]
    finally:
        server.stop()


def test_a_missing_bucket_is_503_for_ready_and_uploads_never_404(
    radosgw: RadosGw, tmp_path: Path
) -> None:
    """Ceph RGW, like Amazon S3, refuses to write into a bucket that does not exist
    (SeaweedFS makes it). A root naming one is an unusable store: /ready and an upload
    answer 503, never 404, which would tell the client its namespace or key is wrong."""
    env = {
        **radosgw.env(),
        "JUSTSTORAGE_HOT_ROOT": f"s3://missing-{uuid.uuid4().hex}/hot",
        "JUSTSTORAGE_INLINE_MAX_BYTES": "0",  # an upload needs the store
    }
    server = start(tmp_path, env)
    try:
        assert server.client.get("/ready").status_code == 503
        auth, tenant = server.admin_headers(), unique_name()
        response = upload(server.client, auth, tenant, "n", "k", b"x")
        assert response.status_code == 503, response.text
        assert "missing-" not in response.text  # the bucket stays in the log
    finally:
        server.stop()
