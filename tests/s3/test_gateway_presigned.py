"""Presigned URLs through the real gateway: boto3's own URLs work for object and
bucket operations in path and virtual-host style, and a URL serves exactly the
bucket, key, sub-resources and values that were signed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import pytest
from botocore.auth import HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from s3.conftest import ALL_SCOPES, OTHER_TENANT, REGION, TENANT, Gateway, S3Key

pytestmark = pytest.mark.e2e


def _send(
    gateway: Gateway, method: str, url: str, content: bytes = b"", host: str | None = None
) -> httpx.Response:
    """Send `url` to the gateway with its own host name as the Host header (or
    `host`): `<bucket>.localhost` needs no name resolution this way."""
    parts = urlsplit(url)
    local = urlunsplit(parts._replace(netloc=urlsplit(gateway.s3_url).netloc))
    with httpx.Client(timeout=30.0, trust_env=False) as client:
        return client.request(
            method, local, content=content, headers={"Host": host or parts.netloc}
        )


def _presign_v2(gateway: Gateway, method: str, path: str, key: S3Key | None = None) -> str:
    """A SigV2 presigned URL of `path` (as botocore's HmacV1QueryAuth makes it)."""
    key = key or gateway.key
    request = AWSRequest(method=method, url=gateway.s3_url + path)
    HmacV1QueryAuth(Credentials(key.access_key, key.secret_key), expires=600).add_auth(request)
    return str(request.url)


def _presigner(gateway: Gateway, addressing: str, version: str) -> Any:
    """A boto3 client of the gateway's key with `localhost` in its endpoint, so
    virtual-host URLs name `<bucket>.localhost` (the gateway's default domain)."""
    port = urlsplit(gateway.s3_url).port
    client = boto3.client(
        "s3",
        endpoint_url=f"http://localhost:{port}",
        aws_access_key_id=gateway.key.access_key,
        aws_secret_access_key=gateway.key.secret_key,
        region_name=REGION,
        config=Config(s3={"addressing_style": addressing}, signature_version=version),
    )
    gateway._clients.append(client)  # closed with the gateway's clients
    return client


@pytest.mark.parametrize("addressing", ["path", "virtual"])
@pytest.mark.parametrize("version", ["s3", "s3v4"])
def test_boto3_presigned_urls_for_object_and_bucket_operations(
    s3_gateway: Gateway, s3: Any, bucket: str, addressing: str, version: str
) -> None:
    s3.put_object(Bucket=bucket, Key="dir/a b+c.txt", Body=b"hello")
    presigner = _presigner(s3_gateway, addressing, version)

    def url(operation: str, **params: Any) -> str:
        made: str = presigner.generate_presigned_url(operation, Params=params)
        if addressing == "virtual":
            assert urlsplit(made).hostname == f"{bucket}.localhost"
        return made

    got = _send(s3_gateway, "GET", url("get_object", Bucket=bucket, Key="dir/a b+c.txt"))
    assert (got.status_code, got.content) == (200, b"hello")
    put = _send(s3_gateway, "PUT", url("put_object", Bucket=bucket, Key="up"), b"new")
    assert put.status_code == 200, put.text
    assert s3.get_object(Bucket=bucket, Key="up")["Body"].read() == b"new"
    head = _send(s3_gateway, "HEAD", url("head_bucket", Bucket=bucket))
    assert head.status_code == 200
    for operation in ("list_objects", "list_objects_v2"):
        listing = _send(s3_gateway, "GET", url(operation, Bucket=bucket))
        assert listing.status_code == 200, listing.text
        assert b"<Key>dir/a%20b%2Bc.txt</Key>" in listing.content  # encoding-type=url


def test_a_sigv2_url_is_bound_to_its_bucket_whatever_the_host_says(
    s3_gateway: Gateway, bucket: str
) -> None:
    both = s3_gateway.make_key([TENANT, OTHER_TENANT], list(ALL_SCOPES))
    other = f"{OTHER_TENANT}.{bucket.partition('.')[2]}"
    mine = s3_gateway.client(both)
    mine.put_object(Bucket=bucket, Key="report", Body=b"acme report")
    mine.put_object(Bucket=other, Key=f"{bucket}/report", Body=b"GLOBEX-PRIVATE")
    get = _presign_v2(s3_gateway, "GET", f"/{bucket}/report", both)
    assert _send(s3_gateway, "GET", get).content == b"acme report"
    swapped_host = f"{other}.localhost"
    swapped = _send(s3_gateway, "GET", get, host=swapped_host)
    assert swapped.status_code == 403 and b"SignatureDoesNotMatch" in swapped.content
    put = _presign_v2(s3_gateway, "PUT", f"/{bucket}/up", both)
    written = _send(s3_gateway, "PUT", put, b"x", host=swapped_host)
    assert written.status_code == 403 and b"SignatureDoesNotMatch" in written.content
    keys = [o["Key"] for o in mine.list_objects_v2(Bucket=other).get("Contents", [])]
    assert keys == [f"{bucket}/report"]


def test_percent_encoded_sub_resources_are_signed_as_they_are_served(
    s3_gateway: Gateway, s3: Any, bucket: str
) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"text")
    upload = s3.create_multipart_upload(Bucket=bucket, Key="a.txt")["UploadId"]
    get = _presign_v2(s3_gateway, "GET", f"/{bucket}/a.txt")
    assert _send(s3_gateway, "GET", get).content == b"text"
    for extra in (f"&upload%49d={upload}", "&response-content-typ%65=text/html"):
        answer = _send(s3_gateway, "GET", get + extra)
        assert answer.status_code == 403 and b"SignatureDoesNotMatch" in answer.content
    delete = _presign_v2(s3_gateway, "DELETE", f"/{bucket}/a.txt")
    aborted = _send(s3_gateway, "DELETE", delete + f"&upload%49d={upload}")
    assert aborted.status_code == 403
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in uploads] == [upload]
    twice = _send(s3_gateway, "GET", get + "&uploadId=1&uploadId=2")
    assert twice.status_code == 400 and b"InvalidArgument" in twice.content


def test_a_presigned_v4_value_is_served_as_it_was_signed(s3_gateway: Gateway, s3: Any) -> None:
    bucket = f"{TENANT}.plus"
    for key in ("a+b", "a b"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    presigner = _presigner(s3_gateway, "path", "s3v4")
    url = presigner.generate_presigned_url(
        "list_objects_v2", Params={"Bucket": bucket, "Prefix": "a+b"}
    )
    assert "a%2Bb" in url
    listed = _send(s3_gateway, "GET", url)
    assert b"<KeyCount>1</KeyCount>" in listed.content
    assert b"<Key>a%2Bb</Key>" in listed.content  # boto3 asks for encoding-type=url
    # `+` is a space (as AWS reads it): signed as a space, so the signature fails.
    rewritten = _send(s3_gateway, "GET", url.replace("a%2Bb", "a+b"))
    assert rewritten.status_code == 403 and b"SignatureDoesNotMatch" in rewritten.content


@pytest.mark.parametrize(
    "value",
    ["text/plain\r\nSet-Cookie: x=1", "text/plain\nX: y", "a\x00b", "text/plain; name=\u2713"],
)
def test_response_overrides_that_cannot_be_headers_are_invalid_argument(
    s3_gateway: Gateway, s3: Any, bucket: str, value: str
) -> None:
    s3.put_object(Bucket=bucket, Key="page", Body=b"page")
    presigner = _presigner(s3_gateway, "path", "s3v4")
    for method, operation in (("GET", "get_object"), ("HEAD", "head_object")):
        url = presigner.generate_presigned_url(
            operation, Params={"Bucket": bucket, "Key": "page", "ResponseContentType": value}
        )
        answer = _send(s3_gateway, method, url)
        assert answer.status_code == 400
        assert "set-cookie" not in answer.headers
        if method == "GET":
            assert b"<Code>InvalidArgument</Code>" in answer.content
    fine = presigner.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": "page", "ResponseContentDisposition": "inline; a=\tb"},
    )
    answer = _send(s3_gateway, "GET", fine)
    assert answer.status_code == 200 and answer.headers["content-disposition"] == "inline; a=\tb"
