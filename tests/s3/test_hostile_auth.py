"""Hostile requests to the gateway's authentication and addressing: forged and
replayed signatures, old dates, revoked keys, expired presigned URLs, another
tenant's buckets, and names that are not valid here. Requests are built by hand
(botocore's signer, httpx) so nothing a client library does hides the answer."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .clients_support import (
    Gateway,
    S3Key,
    boto3_client,
    fresh_name,
    gateway_of,
    v1_status,
    v1_write,
)
from .raw_requests import error_of, object_url, send, sign

pytestmark = pytest.mark.e2e

TENANT, OTHER, NOBODY, NS = "echo", "foxtrot", "ghost", "files"
BUCKET = f"{TENANT}.{NS}"


@pytest.fixture(scope="module")
def gw(s3_start: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_of(s3_start, tmp_path_factory) as g:
        yield g


@pytest.fixture(scope="module")
def key(gw: Gateway) -> S3Key:
    return gw.s3_key((TENANT,))


def put(gw: Gateway, key: S3Key, name: str, body: bytes = b"body", **kw: object) -> httpx.Response:
    url = object_url(gw, BUCKET, name)
    return send(gw, sign("PUT", url, key, body=body, **kw), body)  # type: ignore[arg-type]


def test_signed_request_is_accepted(gw: Gateway, key: S3Key) -> None:
    """The control for everything below: the hand-made request itself is fine."""
    name = fresh_name()
    assert put(gw, key, name).status_code == 200
    assert v1_status(gw, TENANT, NS, name) == 200


def test_forged_signature_stores_nothing(gw: Gateway, key: S3Key) -> None:
    name = fresh_name()
    response = put(gw, key, name, secret=key.secret[:-2] + "xx")
    assert response.status_code == 403
    assert error_of(response)["Code"] == "SignatureDoesNotMatch"
    assert v1_status(gw, TENANT, NS, name) == 404


def test_signature_replayed_on_another_key_or_method(gw: Gateway, key: S3Key) -> None:
    name, other = fresh_name(), fresh_name()
    signed = sign("PUT", object_url(gw, BUCKET, name), key, body=b"original")
    on_other_key = dataclasses.replace(signed, url=object_url(gw, BUCKET, other))
    response = send(gw, on_other_key, b"original")
    assert response.status_code == 403 and error_of(response)["Code"] == "SignatureDoesNotMatch"
    for method in ("GET", "DELETE", "POST"):
        as_other = dataclasses.replace(signed, method=method)
        response = send(gw, as_other, b"original")
        assert response.status_code == 403, method
        assert error_of(response)["Code"] == "SignatureDoesNotMatch", method
    assert v1_status(gw, TENANT, NS, other) == 404
    assert v1_status(gw, TENANT, NS, name) == 404
    assert send(gw, signed, b"original").status_code == 200  # the untouched original works


def test_requests_dated_beyond_fifteen_minutes_are_refused(gw: Gateway, key: S3Key) -> None:
    now = datetime.datetime.now(datetime.UTC)
    for skew in (datetime.timedelta(minutes=-16), datetime.timedelta(minutes=16)):
        name = fresh_name()
        response = put(gw, key, name, when=now + skew)
        assert response.status_code == 403, skew
        assert error_of(response)["Code"] == "RequestTimeTooSkewed", skew
        assert v1_status(gw, TENANT, NS, name) == 404
    assert put(gw, key, fresh_name(), when=now - datetime.timedelta(minutes=14)).status_code == 200


def test_revoked_key_is_refused_at_once(gw: Gateway) -> None:
    doomed = gw.s3_key((TENANT,))
    assert put(gw, doomed, fresh_name()).status_code == 200
    gw.revoke(doomed)
    name = fresh_name()
    response = put(gw, doomed, name)
    assert response.status_code == 403
    assert error_of(response)["Code"] == "InvalidAccessKeyId"
    assert v1_status(gw, TENANT, NS, name) == 404
    listing = send(gw, sign("GET", f"{gw.s3_url}/{BUCKET}?list-type=2", doomed))
    assert listing.status_code == 403


def test_expired_presigned_urls_are_refused(gw: Gateway, key: S3Key) -> None:
    name = fresh_name()
    assert put(gw, key, name, body=b"secret").status_code == 200
    urls = []
    for config in ({}, {"signature_version": "s3v4"}):  # SigV2 (boto3's default), SigV4
        with contextlib.closing(boto3_client(gw, key, **config)) as client:
            urls.append(
                client.generate_presigned_url(
                    "get_object", Params={"Bucket": BUCKET, "Key": name}, ExpiresIn=3
                )
            )
    with httpx.Client(verify=gw.verify(), trust_env=False) as http:
        assert [http.get(url).content for url in urls] == [b"secret", b"secret"]
        time.sleep(4.1)
        for url in urls:
            response = http.get(url)
            assert response.status_code == 403, url
            assert error_of(response)["Code"] == "AccessDenied", url
        # A tampered expiry is a broken signature, not a longer life.
        tampered = urls[1].replace("X-Amz-Expires=3", "X-Amz-Expires=3600")
        assert http.get(tampered).status_code == 403


def _shape(response: httpx.Response) -> tuple[int, str, str, list[str]]:
    """What may be compared between two answers: status, code, message, fields."""
    if not response.content:
        return response.status_code, "", "", []
    error = error_of(response)
    return response.status_code, error["Code"], error["Message"], sorted(error)


def test_another_tenants_bucket_is_access_denied_without_leaking(gw: Gateway, key: S3Key) -> None:
    """A bucket of a tenant the key does not hold answers the same whether that tenant
    exists and stores the key or not: AccessDenied, same status, same body shape."""
    stored = fresh_name("private")
    admin = gw.admin()
    v1_write(gw, OTHER, NS, stored, gw.server.admin_key, b"theirs")
    requests = [
        ("GET", f"/{OTHER}.{NS}/{stored}", "/{b}/" + stored),
        ("HEAD", f"/{OTHER}.{NS}/{stored}", "/{b}/" + stored),
        ("GET", f"/{OTHER}.{NS}/missing", "/{b}/missing"),
        ("PUT", f"/{OTHER}.{NS}/{stored}", "/{b}/" + stored),
        ("DELETE", f"/{OTHER}.{NS}/{stored}", "/{b}/" + stored),
        ("GET", f"/{OTHER}.{NS}?list-type=2", "/{b}?list-type=2"),
        ("HEAD", f"/{OTHER}.{NS}", "/{b}"),
    ]
    for method, path, template in requests:
        answers = []
        for bucket in (f"{OTHER}.{NS}", f"{NOBODY}.{NS}", f"{OTHER}.elsewhere"):
            url = gw.s3_url + template.replace("{b}", bucket)
            answers.append(_shape(send(gw, sign(method, url, key), b"")))
        assert answers[0][:2] == (403, "AccessDenied" if method != "HEAD" else ""), (path, answers)
        assert answers[0] == answers[1] == answers[2], (method, path, answers)
    # Nothing changed on their side.
    got = gw.v1.get(f"/v1/objects/by-key/{NS}/{OTHER}/{stored}", headers=admin)
    assert got.status_code == 200 and got.content == b"theirs"


def test_names_invalid_here_are_refused(gw: Gateway, key: S3Key) -> None:
    for bucket in ("Bad_Bucket", "echo.Files", "echo.fi!les", "echo.-files", "echo." + "n" * 64):
        url = f"{gw.s3_url}/{bucket}/k"
        response = send(gw, sign("PUT", url, key, body=b"x"), b"x")
        assert response.status_code == 400, bucket
        assert error_of(response)["Code"] == "InvalidBucketName", bucket
    for name, code in (
        ("ctl\x01char", "InvalidArgument"),
        ("del\x7fchar", "InvalidArgument"),
        ("k" * 1025, "KeyTooLongError"),
    ):
        response = put(gw, key, name)
        assert response.status_code == 400, name[:20]
        assert error_of(response)["Code"] == code, name[:20]
    # Bytes that are not UTF-8 in the path.
    url = f"{gw.s3_url}/{BUCKET}/bad%FFutf8"
    response = send(gw, sign("PUT", url, key, body=b"x"), b"x")
    assert response.status_code == 400
    listed = gw.v1.get(f"/v1/objects?tenant={TENANT}&namespace={NS}&prefix=ctl", headers=gw.admin())
    assert listed.status_code == 200 and listed.json()["items"] == []
