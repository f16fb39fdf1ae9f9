"""Hand-made S3 requests for the hostile-input tests: signed by botocore's own SigV4
signer (at a chosen time, over a chosen payload hash), sent with httpx, and the
`aws-chunked` bodies (chunk-signed, or unsigned with a trailing checksum) that
botocore itself does not build."""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
from botocore.auth import SIGV4_TIMESTAMP, S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .clients_support import REGION, Gateway, S3Key

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


class _Signer(S3SigV4Auth):
    """botocore's S3 SigV4 signer at a fixed time and, when given, a fixed
    x-amz-content-sha256 (UNSIGNED-PAYLOAD, a STREAMING-* form, or a lie)."""

    def __init__(self, creds: Credentials, when: datetime.datetime, payload: str | None) -> None:
        super().__init__(creds, "s3", REGION)
        self._when = when
        self._payload = payload

    def payload(self, request: AWSRequest) -> str:
        return self._payload if self._payload is not None else str(super().payload(request))

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical)
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


@dataclass(frozen=True)
class Signed:
    method: str
    url: str
    headers: dict[str, str]
    signature: str  # the seed signature of a chunked body
    when: datetime.datetime


def object_url(gw: Gateway, bucket: str, key: str, query: str = "") -> str:
    url = f"{gw.s3_url}/{bucket}/{quote(key, safe='/')}"
    return f"{url}?{query}" if query else url


def sign(
    method: str,
    url: str,
    key: S3Key,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    payload: str | None = None,
    when: datetime.datetime | None = None,
    secret: str | None = None,
) -> Signed:
    """Headers of a SigV4-signed request (botocore's signer), signing `body` unless
    `payload` names another x-amz-content-sha256."""
    when = when or datetime.datetime.now(datetime.UTC)
    creds = Credentials(key.key_id, secret if secret is not None else key.secret)
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    _Signer(creds, when, payload).add_auth(request)
    prepared = request.prepare()
    out = {k: v for k, v in prepared.headers.items()}
    auth = out["Authorization"]
    return Signed(method, url, out, auth.rsplit("Signature=", 1)[1], when)


def send(gw: Gateway, signed: Signed, content: bytes | Iterable[bytes] = b"") -> httpx.Response:
    with httpx.Client(timeout=60.0, trust_env=False, verify=gw.verify()) as client:
        return client.request(signed.method, signed.url, headers=signed.headers, content=content)


def error_of(response: httpx.Response) -> dict[str, str]:
    """The fields of an S3 XML error body."""
    root = ElementTree.fromstring(response.content)
    assert root.tag == "Error", response.text
    return {child.tag: child.text or "" for child in root}


# ------------------------------------------------------------------ aws-chunked bodies
def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signing_key(secret: str, day: str) -> bytes:
    k = _hmac(f"AWS4{secret}".encode(), day)
    for part in (REGION, "s3", "aws4_request"):
        k = _hmac(k, part)
    return k


def chunk_signed_body(
    key: S3Key, signed: Signed, chunks: list[bytes], *, break_at: int | None = None
) -> bytes:
    """The STREAMING-AWS4-HMAC-SHA256-PAYLOAD body of `chunks` (then the empty final
    chunk), each chunk signature chained from the seed; the one at index `break_at`
    is signed wrongly (its predecessor's chain, but other bytes)."""
    stamp = signed.when.strftime(SIGV4_TIMESTAMP)
    day = stamp[:8]
    scope = f"{day}/{REGION}/s3/aws4_request"
    sk = signing_key(key.secret, day)
    previous = signed.signature
    out = bytearray()
    for i, data in enumerate([*chunks, b""]):
        signed_over = data if i != break_at else data + b"tampered"
        to_sign = "\n".join(
            (
                "AWS4-HMAC-SHA256-PAYLOAD",
                stamp,
                scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(signed_over).hexdigest(),
            )
        )
        signature = hmac.new(sk, to_sign.encode(), hashlib.sha256).hexdigest()
        out += f"{len(data):x};chunk-signature={signature}\r\n".encode() + data + b"\r\n"
        previous = signature
    return bytes(out)


def chunked_headers(decoded_length: int, encoded_length: int, **extra: str) -> dict[str, str]:
    return {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(decoded_length),
        "Content-Length": str(encoded_length),
        **extra,
    }


def crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def trailer_body(chunks: list[bytes], checksum_b64: str) -> bytes:
    """A STREAMING-UNSIGNED-PAYLOAD-TRAILER body: unsigned chunks, then the trailer
    `x-amz-checksum-crc32: <checksum_b64>`."""
    out = bytearray()
    for data in chunks:
        out += f"{len(data):x}\r\n".encode() + data + b"\r\n"
    out += f"0\r\nx-amz-checksum-crc32:{checksum_b64}\r\n\r\n".encode()
    return bytes(out)
