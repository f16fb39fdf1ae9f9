"""boto3 in its default configuration (the current release the project installs:
flexible checksums on, `upload_file`'s multipart threshold, SigV2 presigned URLs)
against the gateway, over HTTP (signed payloads, checksums in headers) and HTTPS
(STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies with CRC32 trailers)."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from .clients_support import (
    MIB,
    Gateway,
    S3Key,
    big_file,
    boto3_client,
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

TENANT, NS = "alpha", "files"
BUCKET = f"{TENANT}.{NS}"


@pytest.fixture(scope="module", params=["http", "https"])
def gw(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    if request.param == "https":  # both listeners on a fresh self-signed certificate
        with running_gateway(tmp_path_factory.mktemp("gw"), tls=True) as g:
            yield g
    else:
        with gateway_of(request.getfixturevalue("s3_start"), tmp_path_factory) as g:
            yield g


@pytest.fixture(scope="module")
def key(gw: Gateway) -> S3Key:
    return gw.s3_key((TENANT,))


@pytest.fixture(scope="module")
def s3(gw: Gateway, key: S3Key) -> Iterator[Any]:
    client = boto3_client(gw, key)
    yield client
    client.close()  # its pooled connections, before the server stops


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def object_id(gw: Gateway, key: str) -> str:
    """The newest version's id, from a /v1 HEAD by key."""
    response = gw.v1.head(f"/v1/objects/by-key/{NS}/{TENANT}/{key}", headers=gw.admin())
    assert response.status_code == 200, response.status_code
    return response.headers["X-Object-Id"]


def test_put_get_head_list_delete(gw: Gateway, key: S3Key, s3: Any) -> None:
    client: Any = s3
    name = fresh_name("docs/hello")
    body = b"hello through s3\n" * 100
    put = client.put_object(
        Bucket=BUCKET, Key=name, Body=body, ContentType="text/plain", Metadata={"owner": "qa"}
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'

    got = client.get_object(Bucket=BUCKET, Key=name)
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "text/plain"
    assert got["Metadata"] == {"owner": "qa"}
    head = client.head_object(Bucket=BUCKET, Key=name)
    assert head["ContentLength"] == len(body) and head["ETag"] == put["ETag"]

    # The same object through /v1, at once, and with the same key's bearer token.
    expected = (hashlib.sha256(body).hexdigest(), len(body))
    assert v1_read(gw, TENANT, NS, name, key.bearer) == expected

    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="docs/")
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed["Contents"]] == [
        (name, len(body), put["ETag"])
    ]
    client.delete_object(Bucket=BUCKET, Key=name)
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=BUCKET, Key=name)
    assert code_of(missing) == ("NoSuchKey", 404)
    assert v1_status(gw, TENANT, NS, name) == 404


def test_v1_object_has_a_sha256_etag_through_s3(gw: Gateway, key: S3Key, s3: Any) -> None:
    name = fresh_name("from-v1")
    body = b"written through /v1"
    doc = v1_write(gw, TENANT, NS, name, key.bearer, body)
    head = s3.head_object(Bucket=BUCKET, Key=name)
    assert head["ETag"] == f'"{doc["content_hash"].removeprefix("sha256:")}"'
    assert s3.get_object(Bucket=BUCKET, Key=name)["Body"].read() == body


def test_copy_object_shares_the_blob(gw: Gateway, s3: Any) -> None:
    src, dst = fresh_name("src"), fresh_name("dst")
    body = b"copied without moving bytes" * 1000
    put = s3.put_object(Bucket=BUCKET, Key=src, Body=body, Metadata={"a": "1"})
    copied = s3.copy_object(Bucket=BUCKET, Key=dst, CopySource={"Bucket": BUCKET, "Key": src})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    got = s3.get_object(Bucket=BUCKET, Key=dst)
    assert got["Body"].read() == body and got["Metadata"] == {"a": "1"}
    replaced = s3.copy_object(
        Bucket=BUCKET,
        Key=dst,
        CopySource={"Bucket": BUCKET, "Key": src},
        Metadata={"b": "2"},
        MetadataDirective="REPLACE",
    )
    assert replaced["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3.head_object(Bucket=BUCKET, Key=dst)["Metadata"] == {"b": "2"}
    hashes = {
        gw.v1.head(f"/v1/objects/by-key/{NS}/{TENANT}/{k}", headers=gw.admin()).headers["ETag"]
        for k in (src, dst)
    }
    assert len(hashes) == 1  # the same content hash: one blob


def test_upload_file_multipart_reads_back_through_v1(
    gw: Gateway, key: S3Key, s3: Any, tmp_path: Path
) -> None:
    """boto3's upload_file over its 8 MiB threshold: a multipart upload, each part with
    its CRC32; the object's ETag is S3's `-N` form, its bytes exact through /v1."""
    src = make_file(tmp_path / "twenty.bin", 20 * MIB + 123)
    name = fresh_name("multipart")
    s3.upload_file(str(src.path), BUCKET, name)
    head = s3.head_object(Bucket=BUCKET, Key=name)
    assert head["ContentLength"] == src.size
    assert head["ETag"] == f'"{src.sha256}-3"'  # 8 + 8 + 4 MiB parts
    assert v1_read(gw, TENANT, NS, name, key.bearer) == (src.sha256, src.size)
    out = tmp_path / "back.bin"
    s3.download_file(BUCKET, name, str(out))
    assert sha256_of(out) == src.sha256


def test_100_mib_both_ways(
    gw: Gateway, key: S3Key, s3: Any, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if gw.ca is None:
        pytest.skip("the 100 MiB round trip runs once, over HTTPS (the trailer-checksum path)")
    big = big_file(tmp_path_factory)
    name = fresh_name("big")
    s3.upload_file(str(big.path), BUCKET, name)
    assert v1_read(gw, TENANT, NS, name, gw.server.admin_key) == (big.sha256, big.size)

    other = fresh_name("big-v1")
    v1_write(gw, TENANT, NS, other, key.bearer, big.path)
    out = tmp_path / "big.out"
    s3.download_file(BUCKET, other, str(out))
    assert sha256_of(out) == big.sha256


def test_conditional_requests(s3: Any) -> None:
    name = fresh_name("cond")
    first = s3.put_object(Bucket=BUCKET, Key=name, Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=BUCKET, Key=name, Body=b"two", IfNoneMatch="*")
    assert code_of(exists) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=BUCKET, Key=name, Body=b"two", IfMatch='"' + "0" * 32 + '"')
    assert code_of(stale) == ("PreconditionFailed", 412)
    second = s3.put_object(Bucket=BUCKET, Key=name, Body=b"two", IfMatch=first["ETag"])

    assert s3.get_object(Bucket=BUCKET, Key=name, IfMatch=second["ETag"])["Body"].read() == b"two"
    with pytest.raises(ClientError) as mismatch:
        s3.get_object(Bucket=BUCKET, Key=name, IfMatch=first["ETag"])
    assert code_of(mismatch) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as unchanged:
        s3.get_object(Bucket=BUCKET, Key=name, IfNoneMatch=second["ETag"])
    assert code_of(unchanged)[1] == 304
    future = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    with pytest.raises(ClientError) as not_modified:
        s3.head_object(Bucket=BUCKET, Key=name, IfModifiedSince=future)
    assert code_of(not_modified)[1] == 304
    with pytest.raises(ClientError) as modified:
        s3.get_object(Bucket=BUCKET, Key=name, IfUnmodifiedSince=past)
    assert code_of(modified) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=BUCKET, Key=name, IfModifiedSince=past)["Body"].read() == b"two"


def test_ranges(s3: Any) -> None:
    name = fresh_name("range")
    body = bytes(range(256)) * 400
    s3.put_object(Bucket=BUCKET, Key=name, Body=body)
    size = len(body)
    for spec, first, last in (
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, size - 1),
        ("bytes=-7", size - 7, size - 1),
        (f"bytes=5-{size * 2}", 5, size - 1),
    ):
        got = s3.get_object(Bucket=BUCKET, Key=name, Range=spec)
        assert got["ResponseMetadata"]["HTTPStatusCode"] == 206, spec
        assert got["Body"].read() == body[first : last + 1], spec
        assert got["ContentRange"] == f"bytes {first}-{last}/{size}", spec
    with pytest.raises(ClientError) as bad:
        s3.get_object(Bucket=BUCKET, Key=name, Range=f"bytes={len(body)}-")
    assert code_of(bad) == ("InvalidRange", 416)


def test_listing_pages_delimiter_and_v1(s3: Any) -> None:
    prefix = fresh_name("list") + "/"
    keys = [f"{prefix}a/{i}" for i in range(3)] + [f"{prefix}b{i}" for i in range(5)]
    for k in keys:
        s3.put_object(Bucket=BUCKET, Key=k, Body=b"x")
    pages = s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix, PaginationConfig={"PageSize": 2}
    )
    assert [o["Key"] for page in pages for o in page.get("Contents", [])] == sorted(keys)
    rolled = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == [f"{prefix}a/"]
    assert [o["Key"] for o in rolled["Contents"]] == sorted(k for k in keys if "/a/" not in k)
    after = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix, StartAfter=f"{prefix}b2")
    assert [o["Key"] for o in after["Contents"]] == [f"{prefix}b3", f"{prefix}b4"]
    v1_pages = s3.get_paginator("list_objects").paginate(
        Bucket=BUCKET, Prefix=prefix, PaginationConfig={"PageSize": 3}
    )
    assert [o["Key"] for page in v1_pages for o in page.get("Contents", [])] == sorted(keys)
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert BUCKET in buckets or NS in buckets


def test_delete_objects_removes_every_version(gw: Gateway, s3: Any) -> None:
    name, other = fresh_name("versions"), fresh_name("other")
    s3.put_object(Bucket=BUCKET, Key=name, Body=b"old")
    old_id = object_id(gw, name)
    s3.put_object(Bucket=BUCKET, Key=name, Body=b"new")
    new_id = object_id(gw, name)
    s3.put_object(Bucket=BUCKET, Key=other, Body=b"x")
    done = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": name}, {"Key": other}]})
    assert sorted(d["Key"] for d in done["Deleted"]) == sorted([name, other])
    assert done.get("Errors", []) == []
    for version in (old_id, new_id):
        response = gw.v1.get(f"/v1/objects/{version}", headers={**gw.admin(), "X-Tenant": TENANT})
        assert response.status_code == 404, version  # no older bytes come back


def test_presigned_urls(gw: Gateway, key: S3Key, s3: Any) -> None:
    """boto3's default presigned URL (SigV2 query) and a SigV4 one both work without
    credentials for their one method and object."""
    name = fresh_name("presigned")
    s3.put_object(Bucket=BUCKET, Key=name, Body=b"shared")
    v4 = boto3_client(gw, key, signature_version="s3v4")
    with contextlib.closing(v4), httpx.Client(verify=gw.verify(), trust_env=False) as http:
        for client in (s3, v4):
            url = client.generate_presigned_url(
                "get_object", Params={"Bucket": BUCKET, "Key": name}, ExpiresIn=300
            )
            assert http.get(url).content == b"shared", url
            assert http.put(url, content=b"no").status_code == 403, url
        put_url = v4.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": name}, ExpiresIn=300
        )
        assert http.put(put_url, content=b"replaced").status_code == 200
    assert s3.get_object(Bucket=BUCKET, Key=name)["Body"].read() == b"replaced"
