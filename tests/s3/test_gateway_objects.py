"""The S3 gateway's object operations through boto3 (and raw signed requests for
exact answers): PutObject, GetObject, HeadObject, DeleteObject, ListObjectsV2, and
objects crossing between S3 and /v1."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from botocore.exceptions import ClientError

from s3.conftest import TENANT, Gateway


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_put_then_get_head_list_delete(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    data = b"hello, S3 gateway\n" * 1000
    put = s3.put_object(
        Bucket=bucket,
        Key="docs/readme.txt",
        Body=data,
        ContentType="text/plain",
        Metadata={"owner": "team-a", "purpose": "test"},
    )
    md5 = hashlib.md5(data).hexdigest()
    assert put["ETag"] == f'"{md5}"'

    got = s3.get_object(Bucket=bucket, Key="docs/readme.txt")
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{md5}"'
    assert got["ContentType"] == "text/plain"
    assert got["ContentLength"] == len(data)
    assert got["Metadata"] == {"owner": "team-a", "purpose": "test"}
    assert got["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]

    head = s3.head_object(Bucket=bucket, Key="docs/readme.txt")
    assert head["ContentLength"] == len(data)
    assert head["ETag"] == f'"{md5}"'
    assert head["Metadata"] == {"owner": "team-a", "purpose": "test"}
    assert head["LastModified"] is not None

    listed = s3.list_objects_v2(Bucket=bucket)
    assert [(o["Key"], o["Size"], o["ETag"]) for o in listed["Contents"]] == [
        ("docs/readme.txt", len(data), f'"{md5}"')
    ]
    assert listed["KeyCount"] == 1 and listed["IsTruncated"] is False

    s3.delete_object(Bucket=bucket, Key="docs/readme.txt")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="docs/readme.txt")
    assert _error(missing) == ("NoSuchKey", 404)
    # Deleting again is still 204 (S3 without versioning).
    again = s3.delete_object(Bucket=bucket, Key="docs/readme.txt")
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 204


def test_delete_object_removes_every_version(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"first")
    s3.put_object(Bucket=bucket, Key="k", Body=b"second")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"second"
    s3.delete_object(Bucket=bucket, Key="k")
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="k")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_namespace_alone_is_the_bucket_of_a_one_tenant_key(s3: Any) -> None:
    namespace = f"ns{uuid.uuid4().hex[:10]}"
    s3.put_object(Bucket=namespace, Key="a", Body=b"x")
    assert s3.get_object(Bucket=f"{TENANT}.{namespace}", Key="a")["Body"].read() == b"x"


def test_written_through_s3_is_read_through_v1_and_back(
    s3_gateway: Gateway, s3: Any, bucket: str
) -> None:
    namespace = bucket.split(".", 1)[1]
    data = uuid.uuid4().bytes * 100
    s3.put_object(Bucket=bucket, Key="dir/from-s3", Body=data)
    with httpx.Client(base_url=s3_gateway.v1_url, trust_env=False) as v1:
        headers = s3_gateway.v1_headers()
        got = v1.get(f"/v1/objects/by-key/{namespace}/{TENANT}/dir/from-s3", headers=headers)
        assert got.status_code == 200 and got.content == data
        assert got.headers["etag"] == f'"sha256:{hashlib.sha256(data).hexdigest()}"'

        other = b"written through v1"
        put = v1.post(
            "/v1/objects",
            content=other,
            headers={**headers, "X-Tenant": TENANT, "X-Namespace": namespace, "X-Key": "from-v1"},
        )
        assert put.status_code == 201
    got_s3 = s3.get_object(Bucket=bucket, Key="from-v1")
    assert got_s3["Body"].read() == other
    # A /v1 object has no MD5: its S3 ETag is the SHA-256 hex (64 digits, never an MD5).
    assert got_s3["ETag"] == f'"{hashlib.sha256(other).hexdigest()}"'


def test_ranges(s3: Any, bucket: str) -> None:
    data = bytes(range(256)) * 40
    s3.put_object(Bucket=bucket, Key="r", Body=data)
    part = s3.get_object(Bucket=bucket, Key="r", Range="bytes=10-19")
    assert part["Body"].read() == data[10:20]
    assert part["ContentRange"] == f"bytes 10-19/{len(data)}"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-5")["Body"].read() == data[-5:]
    assert (
        s3.get_object(Bucket=bucket, Key="r", Range="bytes=10000-")["Body"].read() == (data[10000:])
    )
    with pytest.raises(ClientError) as bad:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(data)}-")
    assert _error(bad) == ("InvalidRange", 416)


def test_conditional_reads(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="c", Body=b"conditional")
    head = s3.head_object(Bucket=bucket, Key="c")
    etag, modified = head["ETag"], head["LastModified"]

    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"conditional"
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0123"')
    assert _error(failed) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert not_modified.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as not_modified_since:
        s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=modified)
    assert not_modified_since.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as modified_since:
        s3.get_object(
            Bucket=bucket, Key="c", IfUnmodifiedSince=modified.replace(year=modified.year - 1)
        )
    assert _error(modified_since) == ("PreconditionFailed", 412)
    # S3's precedence: If-Match holding wins over a failing If-Unmodified-Since.
    both = s3.get_object(
        Bucket=bucket,
        Key="c",
        IfMatch=etag,
        IfUnmodifiedSince=modified.replace(year=modified.year - 1),
    )
    assert both["Body"].read() == b"conditional"
    # If-None-Match not matching: If-Modified-Since is not looked at.
    assert (
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch='"other"', IfModifiedSince=modified)[
            "Body"
        ].read()
        == b"conditional"
    )


def test_response_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="o", Body=b"x", ContentType="text/plain")
    got = s3.get_object(
        Bucket=bucket,
        Key="o",
        ResponseContentType="application/json",
        ResponseContentDisposition='attachment; filename="o.json"',
    )
    assert got["Body"].read() == b"x"
    assert got["ContentType"] == "application/json"
    assert got["ContentDisposition"] == 'attachment; filename="o.json"'


def test_storage_class_mapping(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    namespace = bucket.split(".", 1)[1]
    s3.put_object(Bucket=bucket, Key="cold", Body=b"c", StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="hot", Body=b"h", StorageClass="STANDARD")
    assert s3.head_object(Bucket=bucket, Key="cold")["StorageClass"] == "STANDARD_IA"
    assert "StorageClass" not in s3.head_object(Bucket=bucket, Key="hot")
    with httpx.Client(base_url=s3_gateway.v1_url, trust_env=False) as v1:
        got = v1.head(
            f"/v1/objects/by-key/{namespace}/{TENANT}/cold", headers=s3_gateway.v1_headers()
        )
    assert got.headers["x-storage-class"] == "cold"
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert {o["Key"]: o["StorageClass"] for o in listed} == {
        "cold": "STANDARD_IA",
        "hot": "STANDARD",
    }
    bad = s3_gateway.signed(
        "PUT", f"/{bucket}/x", body=b"x", headers={"x-amz-storage-class": "PLATINUM"}
    )
    assert bad.status_code == 400 and b"<Code>InvalidStorageClass</Code>" in bad.content


def test_conditional_writes(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="w", Body=b"one", IfNoneMatch="*")
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=bucket, Key="w", Body=b"two", IfNoneMatch="*")
    assert _error(exists) == ("PreconditionFailed", 412)
    etag = s3.head_object(Bucket=bucket, Key="w")["ETag"]
    s3.put_object(Bucket=bucket, Key="w", Body=b"three", IfMatch=etag)
    with pytest.raises(ClientError) as stale:
        s3.put_object(Bucket=bucket, Key="w", Body=b"four", IfMatch=etag)
    assert _error(stale) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="w")["Body"].read() == b"three"


def test_metadata_too_large(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as too_large:
        s3.put_object(Bucket=bucket, Key="m", Body=b"x", Metadata={"big": "v" * 2100})
    assert _error(too_large) == ("MetadataTooLarge", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="m")  # nothing stored


def test_key_names(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    odd = "dir/with space/ü+&=?#%/é"
    s3.put_object(Bucket=bucket, Key=odd, Body=b"odd")
    assert s3.get_object(Bucket=bucket, Key=odd)["Body"].read() == b"odd"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [odd]
    too_long = s3_gateway.signed("PUT", f"/{bucket}/{'k' * 1025}", body=b"x")
    assert too_long.status_code == 400 and b"<Code>KeyTooLongError</Code>" in too_long.content
    control = s3_gateway.signed("PUT", f"/{bucket}/{quote(chr(1))}", body=b"x")
    assert control.status_code == 400 and b"<Code>InvalidArgument</Code>" in control.content


def test_content_headers_are_kept_with_the_object(s3: Any, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key="page.html.gz",
        Body=b"\x1f\x8b compressed",
        ContentEncoding="gzip",
        CacheControl="max-age=60",
        ContentDisposition='inline; filename="page.html"',
        ContentLanguage="en",
    )
    head = s3.head_object(Bucket=bucket, Key="page.html.gz")
    assert head["ContentEncoding"] == "gzip"
    assert head["CacheControl"] == "max-age=60"
    assert head["ContentDisposition"] == 'inline; filename="page.html"'
    assert head["ContentLanguage"] == "en"
    assert head["Metadata"] == {}
    s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "page.html.gz"})
    assert s3.head_object(Bucket=bucket, Key="copy")["ContentEncoding"] == "gzip"
