"""What authentication reads of a request, and how its body is signed and framed."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from juststorage.s3.auth_errors import S3AuthError
from juststorage.s3.chunked import ChunkChain


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A request as received, before its body.

    `raw_path` and `query_string` are as on the wire (percent-encoded); `headers`
    are ASGI's (lower-case names, in order); `host` is the Host header as sent.
    `signed_resource` is the path SigV2 signs as its resource, `/<bucket>/<key
    as sent>` of the bucket and key the gateway serves, whichever addressing the
    request used (`addressing.signed_resource`); None signs `raw_path`.
    """

    method: str
    raw_path: bytes
    query_string: bytes
    headers: Sequence[tuple[bytes, bytes]]
    host: str
    signed_resource: bytes | None = None


class PayloadKind(enum.StrEnum):
    """How a body is signed and framed (`x-amz-content-sha256`)."""

    SIGNED = "sha256"  # the header holds the hex SHA-256 of the body
    UNSIGNED = "UNSIGNED-PAYLOAD"
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def aws_chunked(self) -> bool:
        return self.value.startswith("STREAMING-")

    @property
    def has_trailer(self) -> bool:
        return self.value.endswith("-TRAILER")

    @property
    def signed_chunks(self) -> bool:
        return self.value.startswith("STREAMING-AWS4-HMAC-SHA256-")


@dataclass(frozen=True, slots=True)
class PayloadMode:
    """The body's signing: its kind, the signed SHA-256 (SIGNED), and for signed
    chunks what chains them to the request's signature (None when auth is off)."""

    kind: PayloadKind
    sha256_hex: str | None = None
    chain: ChunkChain | None = None


_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def parse_payload(value: str) -> tuple[PayloadKind, str | None]:
    """`x-amz-content-sha256` -> (kind, hex SHA-256 for SIGNED).

    Raises:
        S3AuthError: NotImplemented for SigV4a (ECDSA) bodies, InvalidArgument for
            anything else that is not a payload mode.
    """
    value = value.strip()
    if _SHA256_HEX.fullmatch(value):
        return PayloadKind.SIGNED, value.lower()
    if value.startswith("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"):
        raise S3AuthError("NotImplemented", "SigV4a (ECDSA) signed bodies are not supported")
    try:
        kind = PayloadKind(value)
    except ValueError:
        kind = PayloadKind.SIGNED
    if kind is PayloadKind.SIGNED:
        raise S3AuthError(
            "InvalidArgument",
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD,"
            " STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
            " or a SHA-256 in hex",
        )
    return kind, None


def stored_content_encoding(head: RequestHead) -> str | None:
    """The Content-Encoding to keep with the object: the one sent, without
    `aws-chunked` (which frames this request's body only), or None if nothing is left."""
    codings = [
        coding.strip()
        for name, value in head.headers
        if name.lower() == b"content-encoding"
        for coding in value.decode("latin-1").split(",")
    ]
    kept = [coding for coding in codings if coding and coding.lower() != "aws-chunked"]
    return ", ".join(kept) or None
