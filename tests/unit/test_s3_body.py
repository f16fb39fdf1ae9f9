"""Request bodies verified as they stream: aws-chunked framing and chunk signatures,
trailers, checksums, Content-MD5, lengths. A body that does not verify raises
instead of ending, and nothing of a chunk that fails is given out."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fakes.clock import FakeClock
from juststorage.domain.auth import ANONYMOUS_ADMIN
from juststorage.s3 import canonical
from juststorage.s3.chunked import MAX_CHUNK_BYTES, MAX_SIGNED_CHUNK_BYTES, ChunkChain
from juststorage.s3.request import PayloadKind, PayloadMode, RequestHead
from juststorage.s3.signing import (
    S3Authenticator,
    S3AuthError,
    Verified,
    stored_content_encoding,
    verified_body,
)
from support.s3_requests import Chain, StaticKeys, head_of, pieces, read_all, signed_chunks

pytestmark = pytest.mark.anyio

KEY_ID, SECRET = "AKTEST", "test-secret"
DATA = bytes(range(256)) * 700  # 179200 bytes: three 64 KiB chunks, the last short


class _StreamingAuth(S3SigV4Auth):
    """botocore's S3 signer, declaring a streaming payload (botocore sends none)."""

    def __init__(self, mode: str) -> None:
        super().__init__(Credentials(KEY_ID, SECRET), "s3", "us-east-1")
        self.mode = mode

    def payload(self, request: AWSRequest) -> str:
        return self.mode


async def _streaming(
    mode: str,
    data: bytes,
    trailer: tuple[str, str] | None = None,
    *,
    path: str = "/acme.docs/big",
    **chunking: int,
) -> tuple[Verified, RequestHead, bytes, list[str]]:
    headers = {
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": str(len(data)),
    }
    if trailer is not None:
        headers["x-amz-trailer"] = trailer[0]
    request = AWSRequest("PUT", "http://127.0.0.1:9000" + path, headers=headers)
    _StreamingAuth(mode).add_auth(request)
    head = head_of(request)
    auth = S3Authenticator(StaticKeys({KEY_ID: SECRET}), FakeClock(datetime.now(UTC)))
    verified = await auth.verify(head)
    assert verified.payload.chain is not None
    chain = Chain(
        verified.payload.chain.signing_key,
        verified.payload.chain.timestamp,
        verified.payload.chain.scope,
        verified.payload.chain.seed_signature,
    )
    # The seed is the Authorization header's signature, chained with botocore's key.
    authorization = dict(request.headers)["Authorization"]
    assert authorization.endswith("Signature=" + chain.seed_signature)
    expected_key = canonical.signing_key(SECRET, chain.timestamp[:8], "us-east-1")
    assert chain.signing_key == expected_key
    body, signatures = signed_chunks(
        data, chain, trailers=[trailer] if trailer else None, **chunking
    )
    return verified, head, body, signatures


async def _collect(body: AsyncIterator[bytes] | object) -> tuple[bytes, S3AuthError | None]:
    received = []
    try:
        async for piece in body:  # type: ignore[attr-defined]
            received.append(piece)
    except S3AuthError as exc:
        return b"".join(received), exc
    return b"".join(received), None


@pytest.mark.parametrize("piece_size", [1, 7, 4096, 65536, 100_000, 1 << 20])
async def test_signed_chunks_decode_whatever_pieces_the_server_hands_over(piece_size: int) -> None:
    verified, head, body, _ = await _streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", DATA)
    decoded = verified_body(verified, head, pieces(body, piece_size))
    assert await read_all(decoded) == DATA
    assert decoded.md5_hex == hashlib.md5(DATA).hexdigest()
    assert decoded.decoded_length == len(DATA)


async def test_a_signed_chunk_over_8_mib_is_refused_before_it_is_held() -> None:
    verified, head, body, _ = await _streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", b"")
    assert MAX_SIGNED_CHUNK_BYTES == 8 * 1024 * 1024
    header = b"%x;chunk-signature=%s\r\n" % (MAX_SIGNED_CHUNK_BYTES + 1, b"0" * 64)
    received, error = await _collect(verified_body(verified, head, pieces(header + b"x" * 100)))
    assert error is not None and error.code == "InvalidRequest" and received == b""


async def test_a_signed_chunk_of_8_mib_verifies() -> None:
    data = bytes(range(256)) * (MAX_SIGNED_CHUNK_BYTES // 256)
    verified, head, body, _ = await _streaming(
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", data, chunk_bytes=MAX_SIGNED_CHUNK_BYTES
    )
    assert await read_all(verified_body(verified, head, pieces(body, 1 << 20))) == data


async def test_signed_chunks_with_a_signed_crc32c_trailer_verify() -> None:
    crc = base64.b64encode(_crc32c(DATA)).decode()
    verified, head, body, _ = await _streaming(
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", DATA, ("x-amz-checksum-crc32c", crc)
    )
    decoded = verified_body(verified, head, pieces(body, 5000))
    assert await read_all(decoded) == DATA
    assert decoded.checksums == {"crc32c": crc}


async def test_a_wrong_chunk_signature_mid_stream_raises_at_that_chunk() -> None:
    verified, head, body, signatures = await _streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", DATA)
    forged = body.replace(signatures[1].encode(), b"0" * 64)
    received, error = await _collect(verified_body(verified, head, pieces(forged, 4096)))
    assert error is not None and error.code == "SignatureDoesNotMatch"
    assert received == DATA[:65536]  # the first chunk, nothing of the second


async def test_changed_bytes_in_a_chunk_raise_at_that_chunk() -> None:
    verified, head, body, _ = await _streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", DATA)
    start = body.index(b"\r\n", 70_000) - 10  # inside the second chunk's data
    tampered = body[:start] + bytes([body[start] ^ 1]) + body[start + 1 :]
    received, error = await _collect(verified_body(verified, head, pieces(tampered)))
    assert error is not None and error.code == "SignatureDoesNotMatch"
    assert received == DATA[:65536]


async def test_chunks_signed_for_another_request_do_not_chain() -> None:
    verified, head, body, _ = await _streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", DATA)
    _, _, other, _ = await _streaming(
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", DATA[::-1], path="/acme.docs/other"
    )
    received, error = await _collect(verified_body(verified, head, pieces(other)))
    assert error is not None and error.code == "SignatureDoesNotMatch"
    assert received == b""


async def test_a_wrong_trailer_signature_is_refused() -> None:
    crc = base64.b64encode(_crc32c(DATA)).decode()
    verified, head, body, _ = await _streaming(
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", DATA, ("x-amz-checksum-crc32c", crc)
    )
    # A trailer value swapped by someone without the key: its signature no longer holds.
    other = base64.b64encode(_crc32c(b"x")).decode()
    received, error = await _collect(
        verified_body(verified, head, pieces(body.replace(crc.encode(), other.encode())))
    )
    assert error is not None and error.code == "SignatureDoesNotMatch"


async def test_a_truncated_chunked_body_is_incomplete() -> None:
    verified, head, body, _ = await _streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", DATA)
    for cut in (10, 65536 + 200, len(body) - 90):
        _, error = await _collect(verified_body(verified, head, pieces(body[:cut])))
        assert error is not None and error.code == "IncompleteBody", cut


async def test_bytes_after_the_final_chunk_are_refused() -> None:
    verified, head, body, _ = await _streaming("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", DATA)
    _, error = await _collect(verified_body(verified, head, pieces(body + b"more")))
    assert error is not None and error.code == "InvalidRequest"


def _unsigned_trailer_head(extra: dict[str, str] | None = None) -> tuple[Verified, RequestHead]:
    headers = {
        "content-encoding": "aws-chunked",
        "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
        "x-amz-trailer": "x-amz-checksum-crc32",
        **(extra or {}),
    }
    head = RequestHead(
        "PUT", b"/b/k", b"", [(n.encode(), v.encode()) for n, v in headers.items()], "h"
    )
    verified = Verified(
        ANONYMOUS_ADMIN, "k", PayloadMode(PayloadKind.STREAMING_UNSIGNED_TRAILER), False
    )
    return verified, head


def _crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _crc32c(data: bytes) -> bytes:
    import google_crc32c

    return int(google_crc32c.value(data)).to_bytes(4, "big")


@pytest.mark.parametrize(
    "header",
    [
        b"2000000\r\n",  # 32 MiB: over the chunk limit, refused before it is buffered
        b"1" * 600,  # a chunk header line with no end
        b"zz\r\n",
        b"-5\r\n",
        b"\r\n",
    ],
)
async def test_malformed_or_oversized_chunk_headers_are_refused(header: bytes) -> None:
    verified, head = _unsigned_trailer_head()
    _, error = await _collect(verified_body(verified, head, pieces(header + b"x" * 100)))
    assert error is not None and error.code == "InvalidRequest"
    assert MAX_CHUNK_BYTES == 16 * 1024 * 1024


async def test_an_unsigned_trailer_body_verifies_its_checksum() -> None:
    verified, head = _unsigned_trailer_head()
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + _crc32_b64(b"hello").encode() + b"\r\n\r\n"
    decoded = verified_body(verified, head, pieces(body, 3))
    assert await read_all(decoded) == b"hello"
    assert decoded.checksums == {"crc32": _crc32_b64(b"hello")}


async def test_a_trailer_checksum_mismatch_is_bad_digest() -> None:
    verified, head = _unsigned_trailer_head()
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + _crc32_b64(b"hellO").encode() + b"\r\n\r\n"
    received, error = await _collect(verified_body(verified, head, pieces(body)))
    assert error is not None and error.code == "BadDigest"


@pytest.mark.parametrize(
    "trailer",
    [b"", b"x-amz-checksum-sha256:" + base64.b64encode(hashlib.sha256(b"hello").digest())],
)
async def test_a_declared_trailer_must_be_the_one_sent(trailer: bytes) -> None:
    verified, head = _unsigned_trailer_head()
    body = b"5\r\nhello\r\n0\r\n" + (trailer + b"\r\n" if trailer else b"") + b"\r\n"
    _, error = await _collect(verified_body(verified, head, pieces(body)))
    assert error is not None and error.code == "InvalidRequest"


async def test_the_decoded_length_must_be_what_was_declared() -> None:
    for declared in ("4", "6"):
        verified, head = _unsigned_trailer_head({"x-amz-decoded-content-length": declared})
        body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + _crc32_b64(b"hello").encode()
        _, error = await _collect(verified_body(verified, head, pieces(body + b"\r\n\r\n")))
        assert error is not None
        assert error.code == ("InvalidRequest" if declared == "4" else "IncompleteBody")


def _plain(
    headers: dict[str, str], kind: PayloadKind = PayloadKind.UNSIGNED
) -> tuple[Verified, RequestHead]:
    head = RequestHead(
        "PUT", b"/b/k", b"", [(n.encode(), v.encode()) for n, v in headers.items()], "h"
    )
    return Verified(ANONYMOUS_ADMIN, "k", PayloadMode(kind), False), head


async def test_content_md5_is_checked() -> None:
    good = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    verified, head = _plain({"content-md5": good, "content-length": "5"})
    assert await read_all(verified_body(verified, head, pieces(b"hello"))) == b"hello"
    _, error = await _collect(verified_body(verified, head, pieces(b"hellO")))
    assert error is not None and error.code == "BadDigest"


async def test_a_malformed_content_md5_is_invalid_digest_at_once() -> None:
    verified, head = _plain({"content-md5": "not-base64!"})
    with pytest.raises(S3AuthError) as caught:
        verified_body(verified, head, pieces(b"hello"))
    assert caught.value.code == "InvalidDigest"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("x-amz-checksum-crc32", _crc32_b64(b"123456789")),
        ("x-amz-checksum-crc32c", "4waSgw=="),  # CRC32C("123456789") = 0xE3069283
        ("x-amz-checksum-sha1", base64.b64encode(hashlib.sha1(b"123456789").digest()).decode()),
        (
            "x-amz-checksum-sha256",
            base64.b64encode(hashlib.sha256(b"123456789").digest()).decode(),
        ),
    ],
)
async def test_checksum_headers_are_checked(name: str, value: str) -> None:
    verified, head = _plain({name: value})
    body = verified_body(verified, head, pieces(b"123456789", 4))
    assert await read_all(body) == b"123456789"
    assert body.checksums == {name.removeprefix("x-amz-checksum-"): value}
    _, error = await _collect(verified_body(verified, head, pieces(b"123456780")))
    assert error is not None and error.code == "BadDigest"


async def test_checksum_headers_may_describe_an_object_instead() -> None:
    verified, head = _plain({"x-amz-checksum-crc32": _crc32_b64(b"whole object")})
    body = verified_body(verified, head, pieces(b"<xml/>"), check_checksum_headers=False)
    assert await read_all(body) == b"<xml/>"


async def test_checksum_mode_and_algorithm_headers_are_not_checksums() -> None:
    verified, head = _plain(
        {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT"}
    )
    assert await read_all(verified_body(verified, head, pieces(b"x"))) == b"x"


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="},
        {"x-amz-checksum-crc32": "not base64"},
        {"x-amz-checksum-crc32": "AAAA"},  # 3 bytes
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": "A" * 27 + "="},
    ],
)
async def test_unusable_checksum_headers_are_refused_at_once(headers: dict[str, str]) -> None:
    verified, head = _plain(headers)
    with pytest.raises(S3AuthError) as caught:
        verified_body(verified, head, pieces(b"x"))
    assert caught.value.code == "InvalidRequest"


async def test_crc64nvme_is_refused_with_a_clear_message() -> None:
    verified, head = _plain({"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="})
    with pytest.raises(S3AuthError) as caught:
        verified_body(verified, head, pieces(b"x"))
    assert "CRC64NVME is not supported" in caught.value.message


async def test_a_plain_body_shorter_than_its_content_length_is_incomplete() -> None:
    verified, head = _plain({"content-length": "10"})
    _, error = await _collect(verified_body(verified, head, pieces(b"hello")))
    assert error is not None and error.code == "IncompleteBody"


async def test_a_body_is_read_once() -> None:
    verified, head = _plain({})
    body = verified_body(verified, head, pieces(b"x"))
    await read_all(body)
    with pytest.raises(RuntimeError):
        aiter(body)


async def test_auth_disabled_still_decodes_signed_chunks_and_checks_checksums() -> None:
    chain = ChunkChain(b"k" * 32, "20260101T000000Z", "20260101/r/s3/aws4_request", "0" * 64)
    body, _ = signed_chunks(DATA, Chain(chain.signing_key, chain.timestamp, chain.scope, "0" * 64))
    verified, head = _plain({}, PayloadKind.STREAMING_SIGNED)
    assert await read_all(verified_body(verified, head, pieces(body))) == DATA


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ([], None),
        (["aws-chunked"], None),
        (["gzip,aws-chunked"], "gzip"),
        (["aws-chunked", "br"], "br"),
        (["gzip, AWS-Chunked, br"], "gzip, br"),
    ],
)
def test_the_stored_content_encoding_drops_aws_chunked(sent: list[str], kept: str | None) -> None:
    head = RequestHead("PUT", b"/b/k", b"", [(b"content-encoding", v.encode()) for v in sent], "h")
    assert stored_content_encoding(head) == kept


async def test_a_deferred_sha256_is_handed_to_the_consumer_not_checked_here() -> None:
    digest = hashlib.sha256(b"signed bytes").hexdigest()
    head = RequestHead("PUT", b"/b/k", b"", [(b"x-amz-content-sha256", digest.encode())], "h")
    verified = Verified(ANONYMOUS_ADMIN, "k", PayloadMode(PayloadKind.SIGNED, digest), False)
    deferred = verified_body(verified, head, pieces(b"other bytes!"), defer_sha256=True)
    assert deferred.sha256_to_check == digest
    assert await read_all(deferred) == b"other bytes!"  # the consumer's check refuses it
    checked = verified_body(verified, head, pieces(b"other bytes!"))
    assert checked.sha256_to_check is None
    _, error = await _collect(checked)
    assert error is not None and error.code == "XAmzContentSHA256Mismatch"


async def test_empty_pieces_from_the_server_are_not_given_out() -> None:
    verified, head = _unsigned_trailer_head()
    body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + _crc32_b64(b"hello").encode()

    async def with_empty_pieces() -> AsyncIterator[bytes]:
        for piece in (b"", body[:4], b"", body[4:9], b"", body[9:] + b"\r\n\r\n", b""):
            yield piece

    received = [piece async for piece in verified_body(verified, head, with_empty_pieces())]
    assert received and all(received) and b"".join(received) == b"hello"


async def test_empty_pieces_of_a_plain_body_are_not_given_out() -> None:
    verified, head = _plain({"content-length": "5"})

    async def with_empty_pieces() -> AsyncIterator[bytes]:
        for piece in (b"", b"he", b"", b"llo", b""):
            yield piece

    received = [piece async for piece in verified_body(verified, head, with_empty_pieces())]
    assert received == [b"he", b"llo"]
