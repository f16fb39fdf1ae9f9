"""Multipart uploads through the gateway, on the sessions of SPEC §8.2: the -N
ETag, ETag checks of the listed parts, part order and size errors, ListParts,
ListMultipartUploads, Abort, and boto3's managed transfer."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from s3.conftest import TENANT, Gateway

MIB = 1024 * 1024


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_multipart_upload_with_s3_etag(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    first, second = os.urandom(5 * MIB), os.urandom(1000)
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="big", ContentType="application/x-model", Metadata={"v": "1"}
    )
    upload_id = created["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=1, Body=first)
    e2 = s3.upload_part(Bucket=bucket, Key="big", UploadId=upload_id, PartNumber=2, Body=second)
    assert e1["ETag"] == f'"{hashlib.sha256(first).hexdigest()}"'

    parts = s3.list_parts(Bucket=bucket, Key="big", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, len(first), e1["ETag"]),
        (2, len(second), e2["ETag"]),
    ]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("big", upload_id)]

    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="big",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": e1["ETag"]},
                {"PartNumber": 2, "ETag": e2["ETag"]},
            ]
        },
    )
    whole = first + second
    etag = f'"{hashlib.sha256(whole).hexdigest()}-2"'
    assert done["ETag"] == etag
    got = s3.get_object(Bucket=bucket, Key="big")
    assert got["Body"].read() == whole
    assert got["ETag"] == etag
    assert got["ContentType"] == "application/x-model"
    assert got["Metadata"] == {"v": "1"}
    assert [o["ETag"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [etag]
    namespace = bucket.split(".", 1)[1]
    with httpx.Client(base_url=s3_gateway.v1_url, trust_env=False) as v1:
        head = v1.head(
            f"/v1/objects/by-key/{namespace}/{TENANT}/big", headers=s3_gateway.v1_headers()
        )
    assert head.headers["etag"] == f'"sha256:{hashlib.sha256(whole).hexdigest()}"'
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_complete_checks_the_listed_parts(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="p")["UploadId"]
    e1 = s3.upload_part(
        Bucket=bucket, Key="p", UploadId=upload_id, PartNumber=1, Body=os.urandom(5 * MIB)
    )["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="p", UploadId=upload_id, PartNumber=2, Body=b"end")[
        "ETag"
    ]

    def complete(parts: list[dict[str, Any]]) -> Any:
        return s3.complete_multipart_upload(
            Bucket=bucket, Key="p", UploadId=upload_id, MultipartUpload={"Parts": parts}
        )

    with pytest.raises(ClientError) as wrong_etag:
        complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": '"' + "0" * 64 + '"'}])
    assert _code(wrong_etag) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as missing:
        complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}])
    assert _code(missing) == ("InvalidPart", 400)
    with pytest.raises(ClientError) as order:
        complete([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}])
    assert _code(order) == ("InvalidPartOrder", 400)
    with pytest.raises(ClientError):
        s3.head_object(Bucket=bucket, Key="p")  # nothing committed
    done = complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}])
    assert done["ETag"].endswith('-2"')


def test_parts_under_the_minimum_are_entity_too_small(s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="s")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="s", UploadId=upload_id, PartNumber=1, Body=b"a")
    e2 = s3.upload_part(Bucket=bucket, Key="s", UploadId=upload_id, PartNumber=2, Body=b"b")
    with pytest.raises(ClientError) as small:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="s",
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [
                    {"PartNumber": 1, "ETag": e1["ETag"]},
                    {"PartNumber": 2, "ETag": e2["ETag"]},
                ]
            },
        )
    assert _code(small) == ("EntityTooSmall", 400)


def test_abort_and_unknown_uploads(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="a")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="a", UploadId=upload_id, PartNumber=1, Body=b"x")
    aborted = s3.abort_multipart_upload(Bucket=bucket, Key="a", UploadId=upload_id)
    assert aborted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=bucket, Key="a", UploadId=upload_id)
    assert _code(gone) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as bogus:
        s3.upload_part(Bucket=bucket, Key="a", UploadId="not-an-id", PartNumber=1, Body=b"x")
    assert _code(bogus) == ("NoSuchUpload", 404)
    # Another key's upload id, named under this key: no such upload here.
    other = s3.create_multipart_upload(Bucket=bucket, Key="b")["UploadId"]
    with pytest.raises(ClientError) as elsewhere:
        s3.upload_part(Bucket=bucket, Key="a", UploadId=other, PartNumber=1, Body=b"x")
    assert _code(elsewhere) == ("NoSuchUpload", 404)
    bad_number = s3_gateway.signed(
        "PUT", f"/{bucket}/b?partNumber=10001&uploadId={other}", body=b"x"
    )
    assert bad_number.status_code == 400
    copy = s3_gateway.signed(
        "PUT",
        f"/{bucket}/b?partNumber=1&uploadId={other}",
        headers={"x-amz-copy-source": f"/{bucket}/a"},
    )
    assert copy.status_code == 501 and b"<Code>NotImplemented</Code>" in copy.content


def test_boto3_managed_transfer(tmp_path: Any, s3: Any, bucket: str) -> None:
    source = tmp_path / "model.bin"
    data = os.urandom(11 * MIB + 123)
    source.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_file(str(source), bucket, "model.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="model.bin")
    assert head["ETag"] == f'"{hashlib.sha256(data).hexdigest()}-3"'
    target = tmp_path / "back.bin"
    s3.download_file(bucket, "model.bin", str(target), Config=config)
    assert target.read_bytes() == data
