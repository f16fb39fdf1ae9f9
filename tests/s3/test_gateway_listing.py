"""ListObjectsV2 and ListObjects (V1) through the gateway: paging by continuation
token and marker, delimiter roll-ups, start-after, fetch-owner, encoding-type=url,
max-keys."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from s3.conftest import Gateway

KEYS = [
    "a.txt",
    "docs/2024/x.txt",
    "docs/2025/y.txt",
    "docs/readme",
    "img/1.png",
    "img/2.png",
    "z",
]


@pytest.fixture
def filled(s3: Any, bucket: str) -> str:
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def test_v2_pages_with_continuation_tokens(s3: Any, filled: str) -> None:
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        args: dict[str, Any] = {"Bucket": filled, "MaxKeys": 3}
        if token:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        pages += 1
        seen += [o["Key"] for o in page.get("Contents", [])]
        assert page["KeyCount"] == len(page.get("Contents", []))
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == KEYS and pages == 3
    paginator = s3.get_paginator("list_objects_v2")
    keys = [
        o["Key"]
        for p in paginator.paginate(Bucket=filled, PaginationConfig={"PageSize": 2})
        for o in p.get("Contents", [])
    ]
    assert keys == KEYS


def test_v2_delimiter_and_prefix(s3: Any, filled: str) -> None:
    top = s3.list_objects_v2(Bucket=filled, Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "z"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["docs/", "img/"]
    assert top["KeyCount"] == 4
    docs = s3.list_objects_v2(Bucket=filled, Delimiter="/", Prefix="docs/")
    assert [o["Key"] for o in docs["Contents"]] == ["docs/readme"]
    assert [p["Prefix"] for p in docs["CommonPrefixes"]] == ["docs/2024/", "docs/2025/"]
    # Paged one entry at a time, prefixes and keys together.
    entries: list[str] = []
    token = None
    while True:
        args: dict[str, Any] = {"Bucket": filled, "Delimiter": "/", "MaxKeys": 1}
        if token:
            args["ContinuationToken"] = token
        page = s3.list_objects_v2(**args)
        entries += [o["Key"] for o in page.get("Contents", [])]
        entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert entries == ["a.txt", "docs/", "img/", "z"]


def test_v2_start_after_max_keys_and_owner(s3: Any, filled: str) -> None:
    after = s3.list_objects_v2(Bucket=filled, StartAfter="docs/readme")
    assert [o["Key"] for o in after["Contents"]] == ["img/1.png", "img/2.png", "z"]
    assert after["StartAfter"] == "docs/readme"
    none = s3.list_objects_v2(Bucket=filled, MaxKeys=0)
    assert none["KeyCount"] == 0 and "Contents" not in none
    capped = s3.list_objects_v2(Bucket=filled, MaxKeys=5000)
    assert capped["MaxKeys"] == 1000 and len(capped["Contents"]) == len(KEYS)
    huge = s3.list_objects_v2(Bucket=filled, MaxKeys=10000001)
    assert huge["MaxKeys"] == 1000 and len(huge["Contents"]) == len(KEYS)
    owned = s3.list_objects_v2(Bucket=filled, FetchOwner=True, MaxKeys=1)
    assert owned["Contents"][0]["Owner"]["ID"]


def test_v2_bad_parameters(s3_gateway: Gateway, filled: str) -> None:
    bad_token = s3_gateway.signed("GET", f"/{filled}?list-type=2&continuation-token=nope")
    assert bad_token.status_code == 400 and b"<Code>InvalidArgument</Code>" in bad_token.content
    bad_max = s3_gateway.signed("GET", f"/{filled}?list-type=2&max-keys=-1")
    assert bad_max.status_code == 400 and b"<Code>InvalidArgument</Code>" in bad_max.content
    bad_encoding = s3_gateway.signed("GET", f"/{filled}?list-type=2&encoding-type=base64")
    assert bad_encoding.status_code == 400
    long_delimiter = s3_gateway.signed("GET", f"/{filled}?list-type=2&delimiter={'x' * 17}")
    assert long_delimiter.status_code == 400


def test_encoding_type_url(s3_gateway: Gateway, s3: Any, bucket: str) -> None:
    odd = "dir/a b+c&d\u00e9\ufffe"
    s3.put_object(Bucket=bucket, Key=odd, Body=b"x")
    raw = s3_gateway.signed("GET", f"/{bucket}?list-type=2&encoding-type=url")
    assert raw.status_code == 200
    assert f"<Key>{quote(odd, safe='/')}</Key>".encode() in raw.content
    assert b"<EncodingType>url</EncodingType>" in raw.content
    # boto3 asks for url encoding and decodes: the key comes back exact.
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [odd]


def test_v1_markers(s3: Any, filled: str) -> None:
    first = s3.list_objects(Bucket=filled, MaxKeys=3)
    assert [o["Key"] for o in first["Contents"]] == KEYS[:3]
    assert first["IsTruncated"] is True and first["NextMarker"] == KEYS[2]
    rest = s3.list_objects(Bucket=filled, Marker=first["NextMarker"])
    assert [o["Key"] for o in rest["Contents"]] == KEYS[3:]
    assert rest["IsTruncated"] is False
    rolled = s3.list_objects(Bucket=filled, Delimiter="/", MaxKeys=2)
    assert [o["Key"] for o in rolled["Contents"]] == ["a.txt"]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["docs/"]
    assert rolled["NextMarker"] == "docs/"
    after = s3.list_objects(Bucket=filled, Delimiter="/", Marker="docs/")
    assert [p["Prefix"] for p in after["CommonPrefixes"]] == ["img/"]
    assert [o["Key"] for o in after["Contents"]] == ["z"]
    paginator = s3.get_paginator("list_objects")
    keys = [
        o["Key"]
        for p in paginator.paginate(Bucket=filled, PaginationConfig={"PageSize": 2})
        for o in p.get("Contents", [])
    ]
    assert keys == KEYS


def test_listing_a_missing_bucket_of_a_held_tenant_is_empty(s3: Any, bucket: str) -> None:
    page = s3.list_objects_v2(Bucket=bucket)
    assert page["KeyCount"] == 0 and page["IsTruncated"] is False


def test_listing_needs_read_scope(s3_gateway: Gateway, bucket: str) -> None:
    writer = s3_gateway.client(s3_gateway.make_key(["acme"], ["objects:write"]))
    writer.put_object(Bucket=bucket, Key="w", Body=b"x")
    with pytest.raises(ClientError) as denied:
        writer.list_objects_v2(Bucket=bucket)
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as read_denied:
        writer.get_object(Bucket=bucket, Key="w")
    assert read_denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as delete_denied:
        writer.delete_object(Bucket=bucket, Key="w")
    assert delete_denied.value.response["Error"]["Code"] == "AccessDenied"
