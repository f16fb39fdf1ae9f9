"""S3 requests for the authentication tests: signed by botocore (the client the SDKs
are built on), turned into the gateway's `RequestHead`; and an encoder of
`STREAMING-AWS4-HMAC-SHA256-PAYLOAD` bodies, which botocore does not send."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSRequest

from juststorage.domain.auth import Principal, Scope
from juststorage.s3.canonical import EMPTY_SHA256
from juststorage.s3.request import RequestHead
from juststorage.s3.secrets import S3Key

# AWS's documentation examples.
EXAMPLE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class StaticKeys:
    """`S3Keys` over a fixed table (unit tests; integration tests use real API keys)."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.principal = Principal("key:test", frozenset({"acme"}), frozenset({Scope.ADMIN}))

    async def find(self, key_id: str) -> S3Key | None:
        secret = self.secrets.get(key_id)
        return None if secret is None else S3Key(key_id, self.principal, secret)


def _v2_resource(path: str, virtual_bucket: str | None) -> bytes | None:
    """SigV2's resource of a virtual-host style request to `virtual_bucket`."""
    if virtual_bucket is None:
        return None
    return f"/{virtual_bucket}{path or '/'}".encode()


def head_of(
    request: AWSRequest | AWSPreparedRequest, *, virtual_bucket: str | None = None
) -> RequestHead:
    """The head the gateway would build from what botocore sends (its Host as urllib3's)."""
    prepared = request.prepare() if isinstance(request, AWSRequest) else request
    url = urlsplit(prepared.url)
    headers = [
        (name.lower().encode("latin-1"), value if isinstance(value, bytes) else value.encode())
        for name, value in prepared.headers.items()
    ]
    if not any(name == b"host" for name, _ in headers):
        headers.append((b"host", url.netloc.encode()))
    return RequestHead(
        prepared.method,
        url.path.encode() or b"/",
        url.query.encode(),
        headers,
        url.netloc,
        signed_resource=_v2_resource(url.path, virtual_bucket),
    )


def body_bytes(body: object) -> bytes:
    """A prepared request's body as bytes (botocore's aws-chunked wrapper included)."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    read = getattr(body, "read")  # noqa: B009 - file-like bodies
    data: bytes = read()
    return data


async def pieces(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    """`data` as an ASGI server hands a body over: pieces of `size` bytes."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(body: AsyncIterator[bytes] | object) -> bytes:
    out = []
    async for piece in body:  # type: ignore[attr-defined]
        out.append(piece)
    return b"".join(out)


@dataclass(frozen=True)
class Chain:
    signing_key: bytes
    timestamp: str
    scope: str
    seed_signature: str


def signed_chunks(
    data: bytes,
    chain: Chain,
    *,
    chunk_bytes: int = 65536,
    trailers: Iterable[tuple[str, str]] | None = None,
) -> tuple[bytes, list[str]]:
    """An aws-chunked body with chained chunk signatures (and a signed trailer when
    `trailers` is given); also the chunk signatures, in order."""
    out = []
    signatures = []
    previous = chain.seed_signature
    chunks = [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)] + [b""]
    for chunk in chunks:
        text = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{chain.timestamp}\n{chain.scope}\n{previous}\n"
            f"{EMPTY_SHA256}\n{hashlib.sha256(chunk).hexdigest()}"
        )
        previous = hmac.new(chain.signing_key, text.encode(), hashlib.sha256).hexdigest()
        signatures.append(previous)
        out.append(b"%x;chunk-signature=%s\r\n" % (len(chunk), previous.encode()))
        if chunk:
            out.append(chunk + b"\r\n")
    if trailers is not None:
        trailer_list = list(trailers)
        canonical = "".join(f"{name}:{value}\n" for name, value in trailer_list)
        text = (
            f"AWS4-HMAC-SHA256-TRAILER\n{chain.timestamp}\n{chain.scope}\n{previous}\n"
            f"{hashlib.sha256(canonical.encode()).hexdigest()}"
        )
        signature = hmac.new(chain.signing_key, text.encode(), hashlib.sha256).hexdigest()
        for name, value in trailer_list:
            out.append(f"{name}:{value}\r\n".encode())
        out.append(f"x-amz-trailer-signature:{signature}\r\n".encode())
    out.append(b"\r\n")
    return b"".join(out), signatures


class _Captured(Exception):
    """Raised by the send hook: the request was captured, nothing goes on the wire."""


@functools.cache
def _session(key_id: str, secret: str, region: str) -> Any:
    """One boto3 session per credential: it loads the service models once."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region
    )


def boto3_request(
    operation: str,
    *,
    endpoint: str = "http://127.0.0.1:9000",
    key_id: str = "AKTEST",
    secret: str = "test-secret",
    region: str = "us-east-1",
    config: object | None = None,
    **params: object,
) -> AWSPreparedRequest:
    """The request a boto3 S3 client (default configuration unless `config`) would
    send for `operation(**params)`, captured just before it is sent."""
    from botocore.config import Config

    client = _session(key_id, secret, region).client(
        "s3",
        endpoint_url=endpoint,
        config=config or Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}),
    )
    sent: list[AWSPreparedRequest] = []

    def capture(request: AWSPreparedRequest, **_: object) -> None:
        sent.append(request)
        raise _Captured

    client.meta.events.register("before-send.s3", capture)
    with contextlib.suppress(_Captured):
        getattr(client, operation)(**params)
    assert len(sent) == 1
    return sent[0]


def boto3_presigned_url(
    operation: str,
    *,
    signature_version: str,
    addressing_style: str = "path",
    endpoint: str = "http://127.0.0.1:9000",
    key_id: str = "AKTEST",
    secret: str = "test-secret",
    expires_in: int = 3600,
    **params: object,
) -> str:
    """boto3's `generate_presigned_url` with SigV4 (`s3v4`) or SigV2 (`s3`)."""
    from botocore.config import Config

    client = _session(key_id, secret, "us-east-1").client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            signature_version=signature_version, s3={"addressing_style": addressing_style}
        ),
    )
    url: str = client.generate_presigned_url(operation, Params=params, ExpiresIn=expires_in)
    return url


def head_of_url(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]] = (),
    *,
    virtual_bucket: str | None = None,
) -> RequestHead:
    """The head of a plain HTTP client's request to `url` (as curl sends a presigned URL)."""
    parts = urlsplit(url)
    raw = [(b"host", parts.netloc.encode())]
    raw += [(name.lower().encode(), value.encode()) for name, value in headers]
    return RequestHead(
        method,
        parts.path.encode() or b"/",
        parts.query.encode(),
        raw,
        parts.netloc,
        signed_resource=_v2_resource(parts.path, virtual_bucket),
    )
