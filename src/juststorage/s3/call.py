"""One S3 request as the operations see it: method, target, headers, query,
the verified caller and its body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from juststorage.api.state import ApiState
from juststorage.bootstrap import Services
from juststorage.domain.auth import Principal
from juststorage.s3.addressing import Target
from juststorage.s3.canonical import query_pairs
from juststorage.s3.errors import S3Error
from juststorage.s3.signing import RequestHead, Verified, VerifiedBody, verified_body


def header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names to values (latin-1, as HTTP carries them); repeated headers
    are joined with commas."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]},{text}" if key in headers else text
    return headers


def query_map(raw: bytes) -> dict[str, str]:
    """The query's parameters (the first of each name), decoded exactly as the
    signatures decode them (`canonical.query_pairs`: `+` is a space).

    Raises:
        S3Error: InvalidArgument for a name or value that is not UTF-8.
    """
    query: dict[str, str] = {}
    for name, value in query_pairs(raw):
        try:
            name.encode("utf-8")
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise S3Error("InvalidArgument", "The query string is not valid.", 400) from None
        query.setdefault(name, value)
    return query


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


@dataclass
class S3Call:
    """An authenticated request: what the operation handlers read."""

    scope: Scope
    receive: Receive
    services: Services
    api: ApiState
    head: RequestHead
    target: Target
    headers: dict[str, str]
    query: dict[str, str]
    verified: Verified
    state: dict[str, Any] = field(default_factory=dict)
    _body_taken: bool = False

    @property
    def method(self) -> str:
        return self.head.method

    @property
    def principal(self) -> Principal:
        return self.verified.principal

    def body(
        self, *, check_checksum_headers: bool = True, defer_sha256: bool = False
    ) -> VerifiedBody:
        """The request body as the client signed it (decoded from aws-chunked, every
        signature and checksum checked before the stream ends). Once per request;
        `check_checksum_headers=False` where `x-amz-checksum-*` describe the object,
        not this body (CompleteMultipartUpload); `defer_sha256=True` where the
        consumer hashes the bytes anyway and checks `sha256_to_check` itself."""
        if self._body_taken:
            raise RuntimeError("the request body was taken already")
        self._body_taken = True
        return verified_body(
            self.verified,
            self.head,
            _chunks(self.receive),
            check_checksum_headers=check_checksum_headers,
            defer_sha256=defer_sha256,
        )

    async def read_body(self, limit: int, *, check_checksum_headers: bool = True) -> bytes:
        """The whole (small) body. Raises S3Error past `limit` bytes."""
        data = bytearray()
        async for chunk in self.body(check_checksum_headers=check_checksum_headers):
            data += chunk
            if len(data) > limit:
                raise S3Error("MaxMessageLengthExceeded", "Your request was too big.", 400)
        return bytes(data)

    async def drain(self) -> None:
        """Read (and verify) a body the operation does not use."""
        if not self._body_taken and _may_have_body(self.headers):
            async for _ in self.body():
                pass


def _may_have_body(headers: dict[str, str]) -> bool:
    length = headers.get("content-length", "0").strip()
    return "transfer-encoding" in headers or length not in ("", "0")
