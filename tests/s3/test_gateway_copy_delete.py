"""CopyObject (server-side, no bytes move) and DeleteObjects through the gateway."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from s3.conftest import OTHER_TENANT, TENANT, Gateway


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _blob_files(gateway: Gateway) -> list[Path]:
    return sorted((gateway.server.data_dir / "hot" / "sha256").rglob("*"))


def test_copy_references_the_same_blob(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    data = os.urandom(300 * 1024)  # over the inline threshold: a blob file
    s3.put_object(Bucket=bucket, Key="src", Body=data, Metadata={"a": "1"}, ContentType="x/y")
    before = _blob_files(s3_gateway)
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src"})
    md5 = hashlib.md5(data).hexdigest()
    assert copied["CopyObjectResult"]["ETag"] == f'"{md5}"'
    assert _blob_files(s3_gateway) == before  # no new blob file
    got = s3.get_object(Bucket=bucket, Key="dst")
    assert got["Body"].read() == data
    assert got["Metadata"] == {"a": "1"} and got["ContentType"] == "x/y"
    assert got["ETag"] == f'"{md5}"'


def test_copy_with_replaced_metadata_and_encoded_source(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="dir/a b+é", Body=b"src", Metadata={"old": "1"})
    s3.copy_object(
        Bucket=bucket,
        Key="new",
        CopySource=f"{bucket}/dir/a b+é",  # boto3 URL-encodes it
        MetadataDirective="REPLACE",
        Metadata={"new": "2"},
        ContentType="text/plain",
    )
    got = s3.get_object(Bucket=bucket, Key="new")
    assert got["Body"].read() == b"src"
    assert got["Metadata"] == {"new": "2"} and got["ContentType"] == "text/plain"
    # Onto itself, only with new metadata.
    with pytest.raises(ClientError) as same:
        s3.copy_object(Bucket=bucket, Key="new", CopySource={"Bucket": bucket, "Key": "new"})
    assert _code(same) == ("InvalidRequest", 400)
    s3.copy_object(
        Bucket=bucket,
        Key="new",
        CopySource={"Bucket": bucket, "Key": "new"},
        MetadataDirective="REPLACE",
        Metadata={"newer": "3"},
    )
    assert s3.head_object(Bucket=bucket, Key="new")["Metadata"] == {"newer": "3"}


def test_copy_across_namespaces_and_tenants_the_key_holds(s3_gateway: Gateway) -> None:
    key = s3_gateway.make_key([TENANT, "initech"], ["objects:read", "objects:write"])
    client = s3_gateway.client(key)
    client.put_object(Bucket=f"{TENANT}.from", Key="k", Body=b"shared bytes")
    client.copy_object(Bucket=f"{TENANT}.to", Key="k", CopySource=f"{TENANT}.from/k")
    client.copy_object(Bucket="initech.to", Key="k", CopySource=f"{TENANT}.from/k")
    assert client.get_object(Bucket="initech.to", Key="k")["Body"].read() == b"shared bytes"
    # A source in a tenant the key does not hold: AccessDenied, nothing copied.
    with pytest.raises(ClientError) as denied:
        client.copy_object(Bucket=f"{TENANT}.to", Key="x", CopySource=f"{OTHER_TENANT}.any/k")
    assert _code(denied) == ("AccessDenied", 403)


def test_copy_errors(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="src", Body=b"x")
    etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    with pytest.raises(ClientError) as missing:
        s3.copy_object(Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "nope"})
    assert _code(missing) == ("NoSuchKey", 404)
    with pytest.raises(ClientError) as condition:
        s3.copy_object(
            Bucket=bucket,
            Key="d",
            CopySource={"Bucket": bucket, "Key": "src"},
            CopySourceIfNoneMatch=etag,
        )
    assert _code(condition) == ("PreconditionFailed", 412)
    s3.copy_object(
        Bucket=bucket, Key="d", CopySource={"Bucket": bucket, "Key": "src"}, CopySourceIfMatch=etag
    )
    version = s3_gateway.signed(
        "PUT", f"/{bucket}/d2", headers={"x-amz-copy-source": f"/{bucket}/src?versionId=abc"}
    )
    assert version.status_code == 501 and b"<Code>NotImplemented</Code>" in version.content
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="d2")


def test_copy_into_another_storage_class_copies_the_bytes(s3: Any, bucket: str) -> None:
    data = os.urandom(100 * 1024)
    s3.put_object(Bucket=bucket, Key="hot", Body=data)
    s3.copy_object(
        Bucket=bucket,
        Key="cold",
        CopySource={"Bucket": bucket, "Key": "hot"},
        StorageClass="STANDARD_IA",
    )
    got = s3.get_object(Bucket=bucket, Key="cold")
    assert got["Body"].read() == data and got["StorageClass"] == "STANDARD_IA"
    assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'


def test_delete_objects(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    for key in ("a", "b", "c"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    answer = s3.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "missing"}, {"Key": "k" * 1100}]},
    )
    assert sorted(d["Key"] for d in answer["Deleted"]) == ["a", "b", "missing"]
    assert [(e["Key"], e["Code"]) for e in answer["Errors"]] == [("k" * 1100, "KeyTooLongError")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["c"]
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_delete_objects_limits_and_malformed_bodies(s3_gateway: Gateway, bucket: str) -> None:
    too_many = "".join(f"<Object><Key>k{i}</Key></Object>" for i in range(1001))
    body = f"<Delete>{too_many}</Delete>".encode()
    answer = s3_gateway.signed("POST", f"/{bucket}?delete", body=body, headers=_md5(body))
    assert answer.status_code == 400 and b"<Code>MalformedXML</Code>" in answer.content
    for bad in (b"<Delete><Object>", b"not xml", b"<Other/>"):
        answer = s3_gateway.signed("POST", f"/{bucket}?delete", body=bad, headers=_md5(bad))
        assert answer.status_code == 400 and b"<Code>MalformedXML</Code>" in answer.content
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><Delete><Object><Key>&b;</Key>'
        b"</Object></Delete>"
    )
    answer = s3_gateway.signed("POST", f"/{bucket}?delete", body=bomb, headers=_md5(bomb))
    assert answer.status_code == 400 and b"<Code>MalformedXML</Code>" in answer.content


def _md5(body: bytes) -> dict[str, str]:
    import base64

    return {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
