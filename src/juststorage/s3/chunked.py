"""Decoding of `aws-chunked` request bodies, with their chunk and trailer signatures.

    <hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n ... 0[;chunk-signature=<sig>]\\r\\n
    [<trailer name>:<value>\\r\\n ... [x-amz-trailer-signature:<sig>\\r\\n]]\\r\\n

A signed chunk's bytes are held until its signature checked out, so nothing of a
chunk that does not verify ever reaches the consumer; memory is bounded by
`max_chunk_bytes`. Unsigned chunks pass through as they arrive.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from juststorage.s3.auth_errors import S3AuthError
from juststorage.s3.canonical import EMPTY_SHA256, same_signature

# S3 clients send chunks of 8 KiB to a few MiB; a larger one is refused before it
# is read. An unsigned chunk streams through; a signed one is held until its
# signature checks out, so its bound is what a request can make a worker hold:
# the SDKs sign chunks of 64 KiB (minio-go), 80 KiB (.NET) or 128 KiB (Java), and
# send unsigned ones of 1 MiB (botocore); 8 MiB leaves room for a client that
# signs a whole default-sized part as one chunk.
MAX_CHUNK_BYTES = 16 * 1024 * 1024
MAX_SIGNED_CHUNK_BYTES = 8 * 1024 * 1024
_MAX_LINE_BYTES = 512  # a chunk header is `<hex>;chunk-signature=<64 hex>`, about 90 bytes
_MAX_TRAILER_LINES = 8
_SIGNATURE_EXTENSION = b"chunk-signature="
_TRAILER_SIGNATURE = "x-amz-trailer-signature"
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class ChunkChain:
    """What chains the chunk signatures to the request's (seed) signature."""

    signing_key: bytes = field(repr=False)
    timestamp: str
    scope: str
    seed_signature: str


def chunk_signature(chain: ChunkChain, previous: str, data_sha256: str) -> str:
    """The signature of one chunk given the previous one (the seed for the first)."""
    text = (
        f"AWS4-HMAC-SHA256-PAYLOAD\n{chain.timestamp}\n{chain.scope}\n"
        f"{previous}\n{EMPTY_SHA256}\n{data_sha256}"
    )
    return hmac.new(chain.signing_key, text.encode("ascii"), hashlib.sha256).hexdigest()


def trailer_signature(chain: ChunkChain, previous: str, trailers: list[tuple[str, str]]) -> str:
    """The signature of the trailing headers, chained to the final chunk's."""
    canonical = "".join(f"{name}:{value}\n" for name, value in trailers)
    digest = hashlib.sha256(canonical.encode("latin-1")).hexdigest()
    text = f"AWS4-HMAC-SHA256-TRAILER\n{chain.timestamp}\n{chain.scope}\n{previous}\n{digest}"
    return hmac.new(chain.signing_key, text.encode("ascii"), hashlib.sha256).hexdigest()


def _incomplete() -> S3AuthError:
    return S3AuthError("IncompleteBody", "the aws-chunked body ended before its final chunk")


def _malformed(what: str) -> S3AuthError:
    return S3AuthError("InvalidRequest", f"malformed aws-chunked body: {what}")


class _Input:
    """The raw body as lines and runs of bytes, over the pieces the server received."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self._source = source
        self._buf = b""
        self._pos = 0

    async def _more(self) -> bool:
        piece = b""
        while not piece:  # servers hand over empty pieces (the last ASGI message)
            try:
                piece = await anext(self._source)
            except StopAsyncIteration:
                return False
        # Only a partial line is ever left over here: small.
        self._buf = self._buf[self._pos :] + piece if self._pos < len(self._buf) else piece
        self._pos = 0
        return True

    async def line(self, *, blank_at_end: bool = False) -> bytes:
        """The next line, without its CRLF; with `blank_at_end`, b"" at the end of the body.

        Raises:
            S3AuthError: IncompleteBody at the end of the body, InvalidRequest for a
                line longer than `_MAX_LINE_BYTES`.
        """
        while True:
            end = self._buf.find(b"\r\n", self._pos, self._pos + _MAX_LINE_BYTES + 2)
            if end >= 0:
                line = self._buf[self._pos : end]
                self._pos = end + 2
                return line
            if len(self._buf) - self._pos > _MAX_LINE_BYTES:
                raise _malformed(f"a line longer than {_MAX_LINE_BYTES} bytes")
            if not await self._more():
                if blank_at_end and self._pos >= len(self._buf):
                    return b""
                raise _incomplete()

    async def take(self, size: int) -> AsyncIterator[bytes]:
        """`size` bytes, in the pieces they arrived in (sliced where they straddle).

        Raises:
            S3AuthError: IncompleteBody when the body ends first.
        """
        while size:
            if self._pos >= len(self._buf) and not await self._more():
                raise _incomplete()
            available = len(self._buf) - self._pos
            if self._pos == 0 and available <= size:
                piece = self._buf  # the whole piece: no copy
            else:
                piece = self._buf[self._pos : self._pos + min(available, size)]
            self._pos += len(piece)
            size -= len(piece)
            yield piece

    async def at_end(self) -> bool:
        while self._pos >= len(self._buf):
            if not await self._more():
                return True
        return False


def _parse_chunk_header(line: bytes, *, signed: bool, max_chunk_bytes: int) -> tuple[int, str]:
    size_text, _, extension = line.partition(b";")
    size_text = size_text.strip()
    if not size_text or len(size_text) > 16 or not set(size_text) <= _HEX_DIGITS:
        raise _malformed("a chunk size that is not hexadecimal")
    size = int(size_text, 16)
    if size > max_chunk_bytes:
        raise S3AuthError(
            "InvalidRequest", f"a chunk of {size} bytes is over the limit of {max_chunk_bytes}"
        )
    if not signed:
        return size, ""
    extension = extension.strip()
    if not extension.startswith(_SIGNATURE_EXTENSION):
        raise S3AuthError("SignatureDoesNotMatch", "a chunk without chunk-signature")
    signature = extension[len(_SIGNATURE_EXTENSION) :].decode("latin-1")
    return size, signature


class AwsChunkedDecoder:
    """The decoded bytes of an aws-chunked body; `trailers` once it ended.

    With a `chain`, every chunk signature (and with `signed_trailer` the trailer
    signature) is checked, each chained to the one before; without one, the
    framing alone is decoded. The iterator raises S3AuthError instead of ending
    when anything is wrong: a chunk's signature before that chunk's bytes are
    given out, framing, a truncated body, bytes after the end.
    """

    def __init__(
        self,
        source: AsyncIterator[bytes],
        *,
        chain: ChunkChain | None,
        trailer_expected: bool,
        signed_trailer: bool = False,
        max_chunk_bytes: int = MAX_CHUNK_BYTES,
        max_signed_chunk_bytes: int = MAX_SIGNED_CHUNK_BYTES,
    ) -> None:
        self._input = _Input(source)
        self._chain = chain
        self._trailer_expected = trailer_expected
        self._signed_trailer = signed_trailer and chain is not None
        self._max_chunk_bytes = (
            min(max_chunk_bytes, max_signed_chunk_bytes) if chain is not None else max_chunk_bytes
        )
        self.trailers: list[tuple[str, str]] = []

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._decode()

    async def _decode(self) -> AsyncIterator[bytes]:
        chain = self._chain
        previous = chain.seed_signature if chain is not None else ""
        while True:
            line = await self._input.line()
            size, given = _parse_chunk_header(
                line, signed=chain is not None, max_chunk_bytes=self._max_chunk_bytes
            )
            if chain is None:
                async for piece in self._input.take(size):
                    yield piece
            else:
                pieces = []
                digest = hashlib.sha256()
                async for piece in self._input.take(size):
                    digest.update(piece)
                    pieces.append(piece)
                expected = chunk_signature(chain, previous, digest.hexdigest())
                if not same_signature(expected, given):
                    raise S3AuthError(
                        "SignatureDoesNotMatch",
                        "a chunk signature does not match (the body was changed or"
                        " signed with another key)",
                    )
                previous = expected
                for piece in pieces:
                    yield piece
            if size == 0:
                break
            if await self._input.line() != b"":
                raise _malformed("chunk data not followed by CRLF")
        await self._read_trailer(previous)
        if not await self._input.at_end():
            raise _malformed("bytes after the final chunk")

    async def _read_trailer(self, previous: str) -> None:
        # After the final chunk: trailing headers (if any) and a blank line. A body
        # that ends without that blank line is accepted: every byte that matters
        # was framed and checked already.
        signature = None
        for _ in range(_MAX_TRAILER_LINES + 1):
            line = await self._input.line(blank_at_end=True)
            if not line:
                break
            if not self._trailer_expected:
                raise S3AuthError(
                    "InvalidRequest", "a trailing header that x-amz-trailer did not name"
                )
            name, sep, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if not sep or not name:
                raise _malformed("a trailing header that is not name:value")
            if signature is not None:
                raise _malformed("a trailing header after x-amz-trailer-signature")
            if name == _TRAILER_SIGNATURE:
                signature = value.strip()
            else:
                self.trailers.append((name, value.strip()))
        else:
            raise _malformed(f"more than {_MAX_TRAILER_LINES} trailing headers")
        if self._signed_trailer:
            assert self._chain is not None
            if signature is None:
                raise S3AuthError("SignatureDoesNotMatch", "the trailer signature is missing")
            expected = trailer_signature(self._chain, previous, self.trailers)
            if not same_signature(expected, signature):
                raise S3AuthError("SignatureDoesNotMatch", "the trailer signature does not match")
