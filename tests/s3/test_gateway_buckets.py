"""Buckets through the S3 gateway: every namespace of a held tenant is a bucket;
other tenants' buckets are AccessDenied whether or not they hold anything; names we
cannot map are InvalidBucketName; unsupported bucket operations are NotImplemented."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from s3.conftest import OTHER_TENANT, TENANT, Gateway


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_list_buckets_names_namespaces_with_objects(s3_gateway: Gateway, s3: Any) -> None:
    namespace = f"ns{uuid.uuid4().hex[:10]}"
    s3.put_object(Bucket=f"{TENANT}.{namespace}", Key="k", Body=b"x")
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert f"{TENANT}.{namespace}" in names
    assert all(name.startswith(f"{TENANT}.") for name in names)


def test_head_create_location_of_held_buckets(s3: Any, bucket: str) -> None:
    assert s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
    created = s3.create_bucket(Bucket=bucket)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] is None
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0  # created nothing


def test_delete_bucket_is_refused(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as empty:
        s3.delete_bucket(Bucket=bucket)
    assert _code(empty) == ("MethodNotAllowed", 405)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as full:
        s3.delete_bucket(Bucket=bucket)
    assert _code(full) == ("BucketNotEmpty", 409)
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"x"


def test_another_tenants_bucket_is_access_denied_whether_or_not_it_exists(
    s3_gateway: Gateway, s3: Any
) -> None:
    admin = s3_gateway.client(s3_gateway.make_key([OTHER_TENANT], ["admin"]))
    held = f"{OTHER_TENANT}.ns{uuid.uuid4().hex[:10]}"
    admin.put_object(Bucket=held, Key="secret", Body=b"theirs")
    empty = f"{OTHER_TENANT}.ns{uuid.uuid4().hex[:10]}"
    answers = []
    for name in (held, empty):
        for call in (
            lambda b: s3.get_object(Bucket=b, Key="secret"),
            lambda b: s3.head_object(Bucket=b, Key="secret"),
            lambda b: s3.list_objects_v2(Bucket=b),
            lambda b: s3.put_object(Bucket=b, Key="x", Body=b"x"),
            lambda b: s3.delete_object(Bucket=b, Key="secret"),
            lambda b: s3.head_bucket(Bucket=b),
        ):
            with pytest.raises(ClientError) as denied:
                call(name)
            answers.append(_code(denied))
    assert all(status == 403 for _, status in answers)
    # The same answers (code and message) for the held and the empty bucket.
    raw = [
        s3_gateway.signed("GET", f"/{name}/secret").content.split(b"<Resource>")[0]
        for name in (held, empty)
    ]
    assert raw[0] == raw[1] and b"<Code>AccessDenied</Code>" in raw[0]
    assert admin.get_object(Bucket=held, Key="secret")["Body"].read() == b"theirs"


@pytest.mark.parametrize(
    "name", ["Acme.models", "acme.mod..els", "acme.-x", "acme." + "n" * 64, "acme.a%2Fb"]
)
def test_invalid_bucket_names(s3_gateway: Gateway, name: str) -> None:
    answer = s3_gateway.signed("GET", f"/{name}?list-type=2")
    assert answer.status_code == 400
    assert b"<Code>InvalidBucketName</Code>" in answer.content


def test_namespace_alone_needs_a_one_tenant_key(s3_gateway: Gateway) -> None:
    two = s3_gateway.make_key([TENANT, OTHER_TENANT], ["objects:read"])
    answer = s3_gateway.signed("GET", "/models?list-type=2", key=two)
    assert answer.status_code == 400 and b"<Code>InvalidBucketName</Code>" in answer.content
    held = s3_gateway.signed("GET", f"/{TENANT}.models?list-type=2", key=two)
    assert held.status_code == 200


@pytest.mark.parametrize(
    ("method", "query"),
    [
        ("PUT", "acl"),
        ("GET", "acl"),
        ("GET", "versioning"),
        ("PUT", "versioning"),
        ("PUT", "lifecycle"),
        ("GET", "policy"),
        ("PUT", "tagging"),
        ("GET", "versions"),
        ("PUT", "encryption"),
        ("GET", "website"),
        ("PUT", "cors"),
    ],
)
def test_unsupported_bucket_operations_are_not_implemented(
    s3_gateway: Gateway, bucket: str, method: str, query: str
) -> None:
    answer = s3_gateway.signed(method, f"/{bucket}?{query}")
    assert answer.status_code == 501
    assert b"<Code>NotImplemented</Code>" in answer.content
    assert answer.headers["x-amz-request-id"]


def test_boto3_unsupported_calls(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as versioning:
        s3.get_bucket_versioning(Bucket=bucket)
    assert _code(versioning) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as acl:
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert _code(acl) == ("NotImplemented", 501)
    with pytest.raises(ClientError) as lifecycle:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket,
            LifecycleConfiguration={
                "Rules": [{"ID": "r", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 1}}]
            },
        )
    assert _code(lifecycle) == ("NotImplemented", 501)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    with pytest.raises(ClientError) as tagging:
        s3.get_object_tagging(Bucket=bucket, Key="k")
    assert _code(tagging) == ("NotImplemented", 501)


def test_virtual_host_style(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="dir/v", Body=b"virtual")
    port = s3_gateway.s3_url.rsplit(":", 1)[1]
    answer = s3_gateway.signed("GET", "/dir/v", host=f"{bucket}.localhost:{port}")
    assert answer.status_code == 200 and answer.content == b"virtual"
    listing = s3_gateway.signed("GET", "/?list-type=2", host=f"{bucket}.localhost:{port}")
    assert listing.status_code == 200 and b"<Key>dir/v</Key>" in listing.content
