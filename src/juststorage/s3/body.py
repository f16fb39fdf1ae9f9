"""A request body verified as it streams: decoded, hashed, checked before it ends."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import AsyncIterator

from juststorage.s3 import checksums
from juststorage.s3.auth_errors import S3AuthError
from juststorage.s3.canonical import header_values
from juststorage.s3.chunked import MAX_CHUNK_BYTES, AwsChunkedDecoder
from juststorage.s3.request import PayloadKind, PayloadMode, RequestHead

# x-amz-checksum-* headers that name an algorithm or a mode, not a checksum.
_NOT_CHECKSUMS = frozenset({"algorithm", "type", "mode"})


def _single(values: dict[str, list[str]], name: str) -> str | None:
    sent = values.get(name)
    if not sent:
        return None
    if len(sent) > 1:
        raise S3AuthError("InvalidArgument", f"the header {name} was sent more than once")
    return sent[0].strip()


def _length(values: dict[str, list[str]], name: str) -> int | None:
    text = _single(values, name)
    if text is None:
        return None
    if not text.isdigit() or not text.isascii():
        raise S3AuthError("InvalidArgument", f"{name} must be a non-negative integer")
    return int(text)


def _content_md5(values: dict[str, list[str]]) -> bytes | None:
    text = _single(values, "content-md5")
    if text is None:
        return None
    try:
        digest = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise S3AuthError("InvalidDigest", "The Content-MD5 you specified was invalid.")
    return digest


def _header_checksums(values: dict[str, list[str]]) -> dict[str, str]:
    found = {}
    for name in values:
        if name.startswith(checksums.HEADER_PREFIX):
            if name.removeprefix(checksums.HEADER_PREFIX) in _NOT_CHECKSUMS:
                continue
            algorithm = checksums.algorithm_of(name)
            value = _single(values, name) or ""
            found[algorithm] = checksums.check_value(algorithm, value)
    if len(found) > 1:
        raise S3AuthError(
            "InvalidRequest",
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.",
        )
    return found


def _declared_trailers(values: dict[str, list[str]]) -> list[str]:
    names = []
    for sent in values.get("x-amz-trailer", ()):
        for name in sent.split(","):
            if name.strip():
                checksums.algorithm_of(name)
                names.append(name.strip().lower())
    if len(names) > 1:
        raise S3AuthError("InvalidRequest", "x-amz-trailer may name one checksum only")
    return names


class VerifiedBody:
    """The decoded bytes of a request body, which raise S3AuthError instead of ending
    when the body does not verify.

    Checked as the bytes stream: chunk framing and chunk signatures (each before
    its chunk is given out), at most `decoded_length` bytes. Checked before the end
    is signalled: the length, the trailer checksum, an `x-amz-checksum-*` header,
    Content-MD5 (BadDigest) and a signed SHA-256 (XAmzContentSHA256Mismatch). So a
    consumer that commits only after the iterator ended never commits a bad body.
    After the end: `md5_hex` (of the decoded bytes, always) and `checksums`
    (algorithm -> base64 of each checksum verified, to echo).

    With `defer_sha256`, a signed SHA-256 (PayloadKind.SIGNED) is not computed
    here: `sha256_to_check` holds it, and the consumer, which hashes the bytes
    anyway, must refuse to commit unless they hash to it (XAmzContentSHA256Mismatch).
    """

    def __init__(
        self,
        payload: PayloadMode,
        head: RequestHead,
        chunks: AsyncIterator[bytes],
        *,
        check_checksum_headers: bool = True,
        defer_sha256: bool = False,
        max_chunk_bytes: int = MAX_CHUNK_BYTES,
    ) -> None:
        values = header_values(head.headers)
        self._payload = payload
        signed = payload.kind is PayloadKind.SIGNED
        self.sha256_to_check = payload.sha256_hex if signed and defer_sha256 else None
        self._check_sha256 = signed and not defer_sha256
        self._content_md5 = _content_md5(values)
        self._header_checksums = _header_checksums(values) if check_checksum_headers else {}
        kind = payload.kind
        self._trailer_names = _declared_trailers(values) if kind.has_trailer else []
        content_length = _length(values, "content-length")
        if kind.aws_chunked:
            self.decoded_length = _length(values, "x-amz-decoded-content-length")
            self._decoder: AwsChunkedDecoder | None = AwsChunkedDecoder(
                chunks,
                chain=payload.chain if kind.signed_chunks else None,
                trailer_expected=bool(self._trailer_names),
                signed_trailer=kind is PayloadKind.STREAMING_SIGNED_TRAILER,
                max_chunk_bytes=max_chunk_bytes,
            )
            self._source: AsyncIterator[bytes] = aiter(self._decoder)
        else:
            self.decoded_length = content_length
            self._decoder = None
            self._source = chunks
        self.md5_hex: str | None = None
        self.checksums: dict[str, str] = {}
        self._started = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._started:
            raise RuntimeError("a request body can be read once")
        self._started = True
        return self._verify()

    async def _verify(self) -> AsyncIterator[bytes]:
        md5 = hashlib.md5()
        sha256 = hashlib.sha256() if self._check_sha256 else None
        wanted = set(self._header_checksums) | {
            checksums.algorithm_of(name) for name in self._trailer_names
        }
        running = {algorithm: checksums.new_checksum(algorithm) for algorithm in wanted}
        updates = [md5.update, *(c.update for c in running.values())]
        if sha256 is not None:
            updates.append(sha256.update)
        limit = self.decoded_length
        count = 0
        async for piece in self._source:
            if not piece:
                continue
            count += len(piece)
            if limit is not None and count > limit:
                raise S3AuthError(
                    "InvalidRequest", f"the body holds more than the {limit} bytes declared"
                )
            for update in updates:
                update(piece)
            yield piece
        if limit is not None and count < limit:
            raise S3AuthError(
                "IncompleteBody",
                f"You did not provide the number of bytes declared ({count} of {limit}).",
            )
        computed = {algorithm: c.b64digest() for algorithm, c in running.items()}
        self._check_trailers(computed)
        for algorithm, value in self._header_checksums.items():
            _same_checksum(algorithm, computed[algorithm], value)
        if self._content_md5 is not None and not hmac.compare_digest(
            md5.digest(), self._content_md5
        ):
            raise S3AuthError(
                "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        if sha256 is not None and not hmac.compare_digest(
            sha256.hexdigest(), self._payload.sha256_hex or ""
        ):
            raise S3AuthError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        self.md5_hex = md5.hexdigest()
        self.checksums = computed

    def _check_trailers(self, computed: dict[str, str]) -> None:
        sent = dict(self._decoder.trailers) if self._decoder is not None else {}
        for name in self._trailer_names:
            if name not in sent:
                raise S3AuthError(
                    "InvalidRequest", f"the trailer {name} named in x-amz-trailer was not sent"
                )
            algorithm = checksums.algorithm_of(name)
            _same_checksum(algorithm, computed[algorithm], sent.pop(name))
        if sent:
            raise S3AuthError(
                "InvalidRequest", f"trailing headers not named in x-amz-trailer: {sorted(sent)}"
            )


def _same_checksum(algorithm: str, computed: str, sent: str) -> None:
    value = checksums.check_value(algorithm, sent)
    if not hmac.compare_digest(computed.encode("ascii"), value.encode("ascii")):
        raise S3AuthError(
            "BadDigest",
            f"The {algorithm.upper()} you specified did not match the calculated checksum.",
        )
