"""S3 request authentication against requests botocore signs: every form a client
uses, and the ways an attacker would bend them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from fakes.clock import FakeClock
from juststorage.domain.auth import ANONYMOUS_ADMIN
from juststorage.s3.request import PayloadKind, RequestHead
from juststorage.s3.signing import S3Authenticator, S3AuthError, Verified, verified_body
from support.s3_requests import (
    StaticKeys,
    body_bytes,
    boto3_presigned_url,
    boto3_request,
    head_of,
    head_of_url,
    pieces,
    read_all,
)

pytestmark = pytest.mark.anyio

KEY_ID, SECRET = "AKTEST", "test-secret"


def _authenticator(clock: FakeClock | None = None) -> S3Authenticator:
    return S3Authenticator(StaticKeys({KEY_ID: SECRET}), clock or FakeClock(datetime.now(UTC)))


async def _refused(head: RequestHead, clock: FakeClock | None = None) -> S3AuthError:
    with pytest.raises(S3AuthError) as caught:
        await _authenticator(clock).verify(head)
    return caught.value


def _signed(
    method: str,
    url: str,
    body: bytes = b"",
    *,
    headers: dict[str, str] | None = None,
    unsigned_payload: bool = False,
    secret: str = SECRET,
) -> RequestHead:
    request = AWSRequest(method, url, data=body, headers=headers or {})
    if unsigned_payload:  # botocore's own setting for it
        request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials(KEY_ID, secret), "s3", "us-east-1").add_auth(request)
    return head_of(request)


async def _body(verified: Verified, head: RequestHead, data: bytes) -> bytes:
    return await read_all(verified_body(verified, head, pieces(data, 7)))


# --- every form a client sends -------------------------------------------------------


async def test_boto3_put_object_with_its_default_checksum_verifies() -> None:
    request = boto3_request("put_object", Bucket="acme.docs", Key="a/b c+d~.txt", Body=b"hello")
    head = head_of(request)
    verified = await _authenticator().verify(head)
    assert (verified.key_id, verified.presigned) == (KEY_ID, False)
    assert verified.payload.kind is PayloadKind.SIGNED
    body = verified_body(verified, head, pieces(body_bytes(request.body)))
    assert await read_all(body) == b"hello"
    assert body.md5_hex == "5d41402abc4b2a76b9719d911017c592"
    assert body.checksums == {"crc32": "NhCmhg=="}


async def test_boto3_get_with_query_parameters_verifies() -> None:
    request = boto3_request(
        "list_objects_v2", Bucket="acme.docs", Prefix="a b/ü&=", Delimiter="/", MaxKeys=7
    )
    verified = await _authenticator().verify(head_of(request))
    assert verified.principal.subject == "key:test"


async def test_boto3_streaming_unsigned_payload_trailer_verifies_its_crc32() -> None:
    data = bytes(range(256)) * 5000
    request = boto3_request(
        "put_object", endpoint="https://s3.test", Bucket="b", Key="k", Body=data
    )
    head = head_of(request)
    verified = await _authenticator().verify(head)
    assert verified.payload.kind is PayloadKind.STREAMING_UNSIGNED_TRAILER
    body = verified_body(verified, head, pieces(body_bytes(request.body), 65536))
    assert await read_all(body) == data
    assert body.decoded_length == len(data)
    assert set(body.checksums) == {"crc32"}


@pytest.mark.parametrize("algorithm", ["SHA256", "SHA1", "CRC32"])
async def test_boto3_trailers_of_each_algorithm_verify(algorithm: str) -> None:
    request = boto3_request(
        "put_object",
        endpoint="https://s3.test",
        Bucket="b",
        Key="k",
        Body=b"x" * 100_000,
        ChecksumAlgorithm=algorithm,
    )
    head = head_of(request)
    verified = await _authenticator().verify(head)
    body = verified_body(verified, head, pieces(body_bytes(request.body), 1000))
    assert await read_all(body) == b"x" * 100_000
    assert set(body.checksums) == {algorithm.lower()}


async def test_a_trailer_checksum_that_does_not_match_is_bad_digest() -> None:
    request = boto3_request(
        "put_object", endpoint="https://s3.test", Bucket="b", Key="k", Body=b"hi"
    )
    head = head_of(request)
    verified = await _authenticator().verify(head)
    raw = body_bytes(request.body).replace(b"\r\nhi\r\n", b"\r\nho\r\n")
    with pytest.raises(S3AuthError) as caught:
        await read_all(verified_body(verified, head, pieces(raw)))
    assert caught.value.code == "BadDigest"


async def test_unsigned_payload_verifies_and_its_body_is_not_hashed_for_the_signature() -> None:
    head = _signed("PUT", "http://h:1/b/k", b"anything", unsigned_payload=True)
    verified = await _authenticator().verify(head)
    assert verified.payload.kind is PayloadKind.UNSIGNED
    assert await _body(verified, head, b"ANYTHING") == b"ANYTHING"


async def test_a_signed_payload_that_differs_is_refused_before_the_end() -> None:
    head = _signed("PUT", "http://h:1/b/k", b"the signed bytes")
    verified = await _authenticator().verify(head)
    with pytest.raises(S3AuthError) as caught:
        await _body(verified, head, b"the other bytes!")
    assert caught.value.code == "XAmzContentSHA256Mismatch"


@pytest.mark.parametrize("addressing", ["path", "virtual"])
@pytest.mark.parametrize("version", ["s3v4", "s3"])
async def test_boto3_presigned_urls_verify(version: str, addressing: str) -> None:
    bucket = "acme.docs" if addressing == "path" else "docs"
    url = boto3_presigned_url(
        "get_object",
        signature_version=version,
        addressing_style=addressing,
        endpoint="http://s3.test:9000",
        Bucket=bucket,
        Key="dir/a b+c~%.txt",
        ResponseContentType="text/plain",
    )
    if addressing == "virtual":
        assert url.startswith("http://docs.s3.test:9000/dir/")
    head = head_of_url("GET", url, virtual_bucket=bucket if addressing == "virtual" else None)
    verified = await _authenticator().verify(head)
    assert verified.presigned
    assert verified.payload.kind is PayloadKind.UNSIGNED


async def test_boto3_presigned_bucket_request_verifies_in_virtual_host_style() -> None:
    url = boto3_presigned_url(
        "list_objects",
        signature_version="s3",
        addressing_style="virtual",
        endpoint="http://s3.test:9000",
        Bucket="docs",
    )
    head = head_of_url("GET", url, virtual_bucket="docs")
    assert (await _authenticator().verify(head)).presigned


@pytest.mark.parametrize("version", ["s3v4", "s3"])
async def test_presigned_put_with_its_content_type_verifies(version: str) -> None:
    url = boto3_presigned_url(
        "put_object",
        signature_version=version,
        Bucket="acme.docs",
        Key="k",
        ContentType="image/png",
    )
    head = head_of_url("PUT", url, [("Content-Type", "image/png")])
    verified = await _authenticator().verify(head)
    assert await _body(verified, head, b"png bytes") == b"png bytes"
    if version == "s3":  # SigV2 signs the Content-Type
        other = head_of_url("PUT", url, [("Content-Type", "text/html")])
        assert (await _refused(other)).code == "SignatureDoesNotMatch"


async def test_a_presigned_v2_url_expires() -> None:
    url = boto3_presigned_url(
        "get_object", signature_version="s3", Bucket="b", Key="k", expires_in=60
    )
    clock = FakeClock(datetime.now(UTC) + timedelta(seconds=120))
    refused = await _refused(head_of_url("GET", url), clock)
    assert (refused.code, refused.message) == ("AccessDenied", "Request has expired")


async def test_a_presigned_v4_url_expires() -> None:
    url = boto3_presigned_url(
        "get_object", signature_version="s3v4", Bucket="b", Key="k", expires_in=60
    )
    clock = FakeClock(datetime.now(UTC) + timedelta(seconds=120))
    refused = await _refused(head_of_url("GET", url), clock)
    assert (refused.code, refused.message) == ("AccessDenied", "Request has expired")


async def test_a_presigned_v4_url_of_more_than_a_week_is_refused() -> None:
    url = boto3_presigned_url(
        "get_object", signature_version="s3v4", Bucket="b", Key="k", expires_in=604801
    )
    assert (await _refused(head_of_url("GET", url))).code == "AuthorizationQueryParametersError"


# --- forged and replayed signatures --------------------------------------------------


async def test_a_forged_signature_is_refused() -> None:
    head = _signed("GET", "http://h:1/b/k")
    forged = [
        (name, value[:-1] + (b"0" if value[-1:] != b"0" else b"1"))
        if name == b"authorization"
        else (name, value)
        for name, value in head.headers
    ]
    refused = await _refused(replace(head, headers=forged))
    assert refused.code == "SignatureDoesNotMatch"
    assert "Signature=" not in refused.message


async def test_a_signature_made_with_another_secret_is_refused() -> None:
    refused = await _refused(_signed("GET", "http://h:1/b/k", secret="guessed"))
    assert refused.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize(
    "change",
    [
        {"method": "DELETE"},
        {"raw_path": b"/b/other-key"},
        {"raw_path": b"/other-bucket/k"},
        {"query_string": b"uploads="},
        {"host": "other.host:1"},
    ],
)
async def test_a_signature_replayed_on_another_request_is_refused(
    change: dict[str, object],
) -> None:
    head = _signed("GET", "http://h:1/b/k")
    if "host" in change:
        headers = [(n, v) for n, v in head.headers if n != b"host"] + [(b"host", b"other.host:1")]
        change = {**change, "headers": headers}
    refused = await _refused(replace(head, **change))  # type: ignore[arg-type]
    assert refused.code == "SignatureDoesNotMatch"


async def test_a_presigned_url_replayed_for_another_method_or_key_is_refused() -> None:
    for version in ("s3v4", "s3"):
        url = boto3_presigned_url("get_object", signature_version=version, Bucket="b", Key="k")
        assert (await _refused(head_of_url("DELETE", url))).code == "SignatureDoesNotMatch"
        other = url.replace("/b/k?", "/b/secret?")
        assert (await _refused(head_of_url("GET", other))).code == "SignatureDoesNotMatch"


async def test_headers_that_were_not_signed_are_refused_on_a_presigned_url() -> None:
    url = boto3_presigned_url("put_object", signature_version="s3v4", Bucket="b", Key="k")
    head = head_of_url("PUT", url, [("x-amz-copy-source", "b/secret")])
    refused = await _refused(head)
    assert refused.code == "AccessDenied"
    assert "x-amz-copy-source" in refused.message


async def test_a_date_header_that_was_not_signed_is_refused() -> None:
    head = _signed("GET", "http://h:1/b/k")
    headers = [
        (name, value.replace(b"x-amz-date;", b"").replace(b";x-amz-date", b""))
        if name == b"authorization"
        else (name, value)
        for name, value in head.headers
    ]
    refused = await _refused(replace(head, headers=headers))
    assert refused.code == "AccessDenied"


@pytest.mark.parametrize("minutes", [16, -16])
async def test_a_request_more_than_15_minutes_off_is_refused(minutes: int) -> None:
    head = _signed("GET", "http://h:1/b/k")
    clock = FakeClock(datetime.now(UTC) + timedelta(minutes=minutes))
    assert (await _refused(head, clock)).code == "RequestTimeTooSkewed"


async def test_a_request_14_minutes_off_is_accepted() -> None:
    head = _signed("GET", "http://h:1/b/k")
    clock = FakeClock(datetime.now(UTC) + timedelta(minutes=14))
    assert (await _authenticator(clock).verify(head)).key_id == KEY_ID


async def test_an_unknown_access_key_is_refused() -> None:
    auth = S3Authenticator(StaticKeys({}), FakeClock(datetime.now(UTC)))
    with pytest.raises(S3AuthError) as caught:
        await auth.verify(_signed("GET", "http://h:1/b/k"))
    assert (caught.value.code, caught.value.status) == ("InvalidAccessKeyId", 403)


async def test_an_anonymous_request_is_refused() -> None:
    refused = await _refused(head_of_url("GET", "http://h:1/b/k"))
    assert (refused.code, refused.status) == ("AccessDenied", 403)


async def test_two_auth_mechanisms_at_once_are_refused() -> None:
    url = boto3_presigned_url("get_object", signature_version="s3v4", Bucket="b", Key="k")
    signed = _signed("GET", "http://h:1/b/k")
    both = head_of_url(
        "GET", url, [(n.decode(), v.decode()) for n, v in signed.headers if n == b"authorization"]
    )
    assert (await _refused(both)).code == "InvalidArgument"


async def test_sigv2_headers_and_sigv4a_are_refused_clearly() -> None:
    v2 = head_of_url("GET", "http://h:1/b/k", [("Authorization", "AWS AKTEST:c2lnbmF0dXJl")])
    assert (await _refused(v2)).code == "InvalidRequest"
    v4a = head_of_url(
        "GET", "http://h:1/b/k", [("Authorization", "AWS4-ECDSA-P256-SHA256 Credential=x")]
    )
    assert (await _refused(v4a)).status == 501


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256 Credential=AKTEST/20261207/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKTEST/20261207/us-east-1/sqs/aws4_request,"
        " SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKTEST/2026/us-east-1/s3/aws4_request,"
        " SignedHeaders=host, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKTEST/20261207/us-east-1/s3/aws4_request,"
        " SignedHeaders=x-amz-date, Signature=" + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKTEST/20261207/us-east-1/s3/aws4_request,"
        " SignedHeaders=host, Signature=XYZ",
    ],
)
async def test_malformed_authorization_headers_are_refused(authorization: str) -> None:
    head = head_of_url(
        "GET",
        "http://h:1/b/k",
        [("Authorization", authorization), ("x-amz-date", "20261207T120000Z")],
    )
    refused = await _refused(head, FakeClock(datetime(2026, 12, 7, 12, tzinfo=UTC)))
    assert (refused.code, refused.status) == ("AuthorizationHeaderMalformed", 400)


async def test_with_authentication_disabled_every_request_is_the_anonymous_admin() -> None:
    auth = S3Authenticator(StaticKeys({}), FakeClock(), enabled=False)
    verified = await auth.verify(head_of_url("GET", "http://h:1/b/k"))
    assert verified.principal == ANONYMOUS_ADMIN


TRICKY_KEYS = ["a//b/../c/./d", "ü/日本語 key", "x?y#z&w=v", "sp ace+plus%25", "~!$'()*,;:@[]"]


@pytest.mark.parametrize("key", TRICKY_KEYS)
async def test_keys_that_need_encoding_verify_in_every_form(key: str) -> None:
    request = boto3_request("put_object", Bucket="acme.docs", Key=key, Body=b"x")
    assert (await _authenticator().verify(head_of(request))).key_id == KEY_ID
    for version in ("s3v4", "s3"):
        url = boto3_presigned_url("get_object", signature_version=version, Bucket="b", Key=key)
        assert (await _authenticator().verify(head_of_url("GET", url))).presigned


async def test_a_client_that_signs_an_encoded_path_but_sends_it_raw_verifies() -> None:
    request = boto3_request("get_object", Bucket="acme.docs", Key="a!b(c)")
    head = head_of(request)
    assert head.raw_path == b"/acme.docs/a%21b%28c%29"
    raw = replace(head, raw_path=b"/acme.docs/a!b(c)")
    assert (await _authenticator().verify(raw)).key_id == KEY_ID


@pytest.mark.parametrize("date", ["20261399T120000Z", "20261207T250000Z", "2026-12-07T12:00"])
async def test_an_impossible_or_malformed_date_is_refused(date: str) -> None:
    authorization = (
        "AWS4-HMAC-SHA256 Credential=AKTEST/20261207/us-east-1/s3/aws4_request,"
        " SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    )
    head = head_of_url(
        "GET", "http://h:1/b/k", [("Authorization", authorization), ("x-amz-date", date)]
    )
    refused = await _refused(head, FakeClock(datetime(2026, 12, 7, 12, tzinfo=UTC)))
    assert refused.code == "AuthorizationHeaderMalformed"
