"""Bodies that must not be stored: a chunk signature that breaks mid-stream, a
trailing checksum that does not match, a signed payload hash that does not match,
a wrong Content-MD5. Each refused upload leaves no object, no blob and no temp file;
the same request with honest bytes is stored (the control that the body builder
itself is right)."""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .clients_support import (
    Gateway,
    S3Key,
    fresh_name,
    gateway_of,
    stored_files,
    v1_read,
    v1_status,
)
from .raw_requests import (
    STREAMING_SIGNED,
    STREAMING_UNSIGNED_TRAILER,
    Signed,
    chunk_signed_body,
    chunked_headers,
    crc32_b64,
    error_of,
    object_url,
    send,
    sign,
    trailer_body,
)

pytestmark = pytest.mark.e2e

TENANT, NS = "hotel", "files"
BUCKET = f"{TENANT}.{NS}"
# Larger than the inline threshold (64 KiB): a refused body would leave a file.
CHUNKS = [bytes([n]) * (96 * 1024) for n in (1, 2, 3)]
WHOLE = b"".join(CHUNKS)


@pytest.fixture(scope="module")
def gw(s3_start: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with gateway_of(s3_start, tmp_path_factory) as g:
        yield g


@pytest.fixture(scope="module")
def key(gw: Gateway) -> S3Key:
    return gw.s3_key((TENANT,))


def send_tolerant(gw: Gateway, signed: Signed, body: bytes) -> httpx.Response | None:
    """The answer, or None when the server closed the connection before the client
    finished sending (a refusal too, checked by what was stored)."""
    try:
        return send(gw, signed, body)
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return None


def assert_nothing_stored(gw: Gateway, key: S3Key, name: str, before: set[object]) -> None:
    assert v1_status(gw, TENANT, NS, name) == 404
    head = send(gw, sign("HEAD", object_url(gw, BUCKET, name), key))
    assert head.status_code == 404
    assert stored_files(gw) == before, "a blob or temp file was left behind"


def chunk_signed_put(
    gw: Gateway, key: S3Key, name: str, break_at: int | None
) -> tuple[httpx.Response | None, bytes]:
    signed_when = datetime.datetime.now(datetime.UTC)
    placeholder = Signed("PUT", "", {}, "0" * 64, signed_when)  # lengths only
    length = len(chunk_signed_body(key, placeholder, CHUNKS))
    headers = chunked_headers(len(WHOLE), length)
    signed = sign(
        "PUT",
        object_url(gw, BUCKET, name),
        key,
        headers=headers,
        payload=STREAMING_SIGNED,
        when=signed_when,
    )
    body = chunk_signed_body(key, signed, CHUNKS, break_at=break_at)
    assert len(body) == length
    return send_tolerant(gw, signed, body), body


def test_chunk_signed_body_is_stored_when_every_signature_holds(gw: Gateway, key: S3Key) -> None:
    name = fresh_name("chunked")
    response, _ = chunk_signed_put(gw, key, name, break_at=None)
    assert response is not None and response.status_code == 200, response and response.text
    assert response.headers["ETag"] == f'"{hashlib.md5(WHOLE).hexdigest()}"'
    assert v1_read(gw, TENANT, NS, name, key.bearer) == (
        hashlib.sha256(WHOLE).hexdigest(),
        len(WHOLE),
    )


@pytest.mark.parametrize("break_at", [1, 2, 3], ids=["second", "last-data", "final-empty"])
def test_chunk_signature_breaking_mid_stream_stores_nothing(
    gw: Gateway, key: S3Key, break_at: int
) -> None:
    name = fresh_name("broken")
    before = stored_files(gw)
    response, _ = chunk_signed_put(gw, key, name, break_at=break_at)
    if response is not None:
        assert response.status_code == 403, response.text
        assert error_of(response)["Code"] == "SignatureDoesNotMatch"
    assert_nothing_stored(gw, key, name, before)


def trailer_put(gw: Gateway, key: S3Key, name: str, checksum: str) -> httpx.Response | None:
    body = trailer_body(CHUNKS, checksum)
    headers = chunked_headers(
        len(WHOLE),
        len(body),
        **{"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32"},
    )
    signed = sign(
        "PUT",
        object_url(gw, BUCKET, name),
        key,
        headers=headers,
        payload=STREAMING_UNSIGNED_TRAILER,
    )
    return send_tolerant(gw, signed, body)


def test_trailing_checksum_that_matches_is_stored(gw: Gateway, key: S3Key) -> None:
    name = fresh_name("trailer")
    response = trailer_put(gw, key, name, crc32_b64(WHOLE))
    assert response is not None and response.status_code == 200, response and response.text
    assert v1_read(gw, TENANT, NS, name, key.bearer)[1] == len(WHOLE)


def test_trailing_checksum_mismatch_stores_nothing(gw: Gateway, key: S3Key) -> None:
    name = fresh_name("bad-trailer")
    before = stored_files(gw)
    response = trailer_put(gw, key, name, crc32_b64(WHOLE + b"!"))
    if response is not None:
        assert response.status_code == 400, response.text
        assert error_of(response)["Code"] == "BadDigest"
    assert_nothing_stored(gw, key, name, before)


def test_signed_payload_hash_mismatch_stores_nothing(gw: Gateway, key: S3Key) -> None:
    name = fresh_name("bad-sha")
    before = stored_files(gw)
    claimed = hashlib.sha256(WHOLE + b"!").hexdigest()
    signed = sign("PUT", object_url(gw, BUCKET, name), key, body=WHOLE, payload=claimed)
    response = send_tolerant(gw, signed, WHOLE)
    if response is not None:
        assert response.status_code == 400, response.text
        assert error_of(response)["Code"] == "XAmzContentSHA256Mismatch"
    assert_nothing_stored(gw, key, name, before)


def test_content_md5_mismatch_stores_nothing(gw: Gateway, key: S3Key) -> None:
    name = fresh_name("bad-md5")
    before = stored_files(gw)
    wrong = base64.b64encode(hashlib.md5(WHOLE + b"!").digest()).decode()
    signed = sign(
        "PUT", object_url(gw, BUCKET, name), key, body=WHOLE, headers={"Content-MD5": wrong}
    )
    response = send_tolerant(gw, signed, WHOLE)
    if response is not None:
        assert response.status_code == 400, response.text
        assert error_of(response)["Code"] == "BadDigest"
    assert_nothing_stored(gw, key, name, before)


def test_body_shorter_than_declared_stores_nothing(gw: Gateway, key: S3Key) -> None:
    """A chunked body that ends before its declared decoded length."""
    name = fresh_name("short")
    before = stored_files(gw)
    body = trailer_body(CHUNKS[:2], crc32_b64(b"".join(CHUNKS[:2])))
    headers = chunked_headers(
        len(WHOLE),
        len(body),
        **{"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm": "CRC32"},
    )
    signed = sign(
        "PUT",
        object_url(gw, BUCKET, name),
        key,
        headers=headers,
        payload=STREAMING_UNSIGNED_TRAILER,
    )
    response = send_tolerant(gw, signed, body)
    if response is not None:
        assert response.status_code == 400, response.text
    assert_nothing_stored(gw, key, name, before)
