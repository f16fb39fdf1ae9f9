"""SigV4 against the examples AWS publishes: the signature test suite's canonical
requests, S3's header and presigned examples, and S3's chunked upload example."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from fakes.clock import FakeClock
from juststorage.s3 import canonical
from juststorage.s3.chunked import ChunkChain, chunk_signature
from juststorage.s3.request import PayloadKind, RequestHead
from juststorage.s3.signing import S3Authenticator, S3AuthError, Verified, verified_body
from support.s3_requests import EXAMPLE_KEY_ID, EXAMPLE_SECRET, StaticKeys, pieces, read_all

pytestmark = pytest.mark.anyio

SCOPE = "20130524/us-east-1/s3/aws4_request"
EMPTY = canonical.EMPTY_SHA256


def _authenticator(moment: datetime = datetime(2013, 5, 24, 0, 5, tzinfo=UTC)) -> S3Authenticator:
    return S3Authenticator(StaticKeys({EXAMPLE_KEY_ID: EXAMPLE_SECRET}), FakeClock(moment))


def _head(method: str, target: str, headers: dict[str, str]) -> RequestHead:
    path, _, query = target.partition("?")
    raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    return RequestHead(method, path.encode(), query.encode(), raw, headers["Host"])


def _auth(signed: str, signature: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential={EXAMPLE_KEY_ID}/{SCOPE},"
        f"SignedHeaders={signed},Signature={signature}"
    )


@pytest.mark.parametrize(
    ("target", "signature"),
    [
        ("/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        (
            "/?Param2=value2&Param1=value1",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
    ],
)
def test_the_signature_suite_get_vanilla_requests(target: str, signature: str) -> None:
    """aws-sig-v4-test-suite get-vanilla and get-vanilla-query-order-key-case."""
    path, _, query = target.partition("?")
    values = {"host": ["example.amazonaws.com"], "x-amz-date": ["20150830T123600Z"]}
    signed = ("host", "x-amz-date")
    request = canonical.canonical_request(
        "GET",
        canonical.canonical_uris(path.encode())[0],
        canonical.canonical_query(canonical.query_pairs(query.encode())),
        canonical.canonical_headers(values, signed, "example.amazonaws.com"),
        signed,
        EMPTY,
    )
    key = canonical.signing_key(
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830", "us-east-1", "service"
    )
    text = canonical.string_to_sign(
        "20150830T123600Z", "20150830/us-east-1/service/aws4_request", request
    )
    assert canonical.sign(key, text) == signature


async def test_s3_get_object_example_verifies() -> None:
    head = _head(
        "GET",
        "/test.txt",
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "Range": "bytes=0-9",
            "x-amz-content-sha256": EMPTY,
            "x-amz-date": "20130524T000000Z",
            "Authorization": _auth(
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        },
    )
    verified = await _authenticator().verify(head)
    assert verified.key_id == EXAMPLE_KEY_ID
    assert verified.payload.kind is PayloadKind.SIGNED
    assert not verified.presigned


async def test_s3_put_object_example_verifies_with_its_body() -> None:
    head = _head(
        "PUT",
        "/test%24file.text",
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "Date": "Fri, 24 May 2013 00:00:00 GMT",
            "x-amz-date": "20130524T000000Z",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": (
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
            ),
            "Authorization": _auth(
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
        },
    )
    verified = await _authenticator().verify(head)
    body = verified_body(verified, head, pieces(b"Welcome to Amazon S3."))
    assert await read_all(body) == b"Welcome to Amazon S3."
    with pytest.raises(S3AuthError) as caught:
        await read_all(verified_body(verified, head, pieces(b"Welcome to Amazon S3!")))
    assert caught.value.code == "XAmzContentSHA256Mismatch"


@pytest.mark.parametrize(
    ("target", "signature"),
    [
        ("/?lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        (
            "/?max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
)
async def test_s3_bucket_examples_verify(target: str, signature: str) -> None:
    head = _head(
        "GET",
        target,
        {
            "Host": "examplebucket.s3.amazonaws.com",
            "x-amz-date": "20130524T000000Z",
            "x-amz-content-sha256": EMPTY,
            "Authorization": _auth("host;x-amz-content-sha256;x-amz-date", signature),
        },
    )
    assert (await _authenticator().verify(head)).key_id == EXAMPLE_KEY_ID


PRESIGNED = (
    "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


async def test_s3_presigned_example_verifies_until_it_expires() -> None:
    head = _head("GET", PRESIGNED, {"Host": "examplebucket.s3.amazonaws.com"})
    verified = await _authenticator(datetime(2013, 5, 24, 23, 59, tzinfo=UTC)).verify(head)
    assert verified.presigned
    assert verified.payload.kind is PayloadKind.UNSIGNED
    with pytest.raises(S3AuthError) as caught:
        await _authenticator(datetime(2013, 5, 25, 0, 0, 1, tzinfo=UTC)).verify(head)
    assert (caught.value.code, caught.value.message) == ("AccessDenied", "Request has expired")


SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = (
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
)


def _chunked_example() -> tuple[RequestHead, bytes]:
    a, b, final = CHUNK_SIGNATURES
    body = (
        b"10000;chunk-signature=" + a.encode() + b"\r\n" + b"a" * 65536 + b"\r\n"
        b"400;chunk-signature=" + b.encode() + b"\r\n" + b"a" * 1024 + b"\r\n"
        b"0;chunk-signature=" + final.encode() + b"\r\n\r\n"
    )
    head = _head(
        "PUT",
        "/examplebucket/chunkObject.txt",
        {
            "Host": "s3.amazonaws.com",
            "x-amz-date": "20130524T000000Z",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            "Content-Encoding": "aws-chunked",
            "x-amz-decoded-content-length": "66560",
            "Content-Length": str(len(body)),
            "Authorization": _auth(
                "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
                "x-amz-decoded-content-length;x-amz-storage-class",
                SEED,
            ),
        },
    )
    assert len(body) == 66824  # the example's Content-Length
    return head, body


async def test_s3_chunked_upload_example_verifies_seed_and_every_chunk() -> None:
    head, body = _chunked_example()
    verified = await _authenticator().verify(head)
    assert verified.payload.kind is PayloadKind.STREAMING_SIGNED
    decoded = verified_body(verified, head, pieces(body, 4096))
    assert await read_all(decoded) == b"a" * 66560
    assert decoded.decoded_length == 66560
    assert decoded.md5_hex is not None


async def test_s3_chunked_upload_example_refuses_a_changed_second_chunk() -> None:
    head, body = _chunked_example()
    verified = await _authenticator().verify(head)
    tampered = body.replace(b"a" * 1024 + b"\r\n0;", b"a" * 1023 + b"b\r\n0;")
    received = []
    with pytest.raises(S3AuthError) as caught:
        async for piece in verified_body(verified, head, pieces(tampered, 4096)):
            received.append(piece)
    assert caught.value.code == "SignatureDoesNotMatch"
    assert b"".join(received) == b"a" * 65536  # the first chunk only: nothing of the bad one


def test_chunk_chain_of_the_example_is_the_published_one() -> None:
    key = canonical.signing_key(EXAMPLE_SECRET, "20130524", "us-east-1")
    chain = ChunkChain(key, "20130524T000000Z", SCOPE, SEED)
    first = chunk_signature(chain, SEED, hashlib.sha256(b"a" * 65536).hexdigest())
    second = chunk_signature(chain, first, hashlib.sha256(b"a" * 1024).hexdigest())
    final = chunk_signature(chain, second, EMPTY)
    assert (first, second, final) == CHUNK_SIGNATURES


def test_verified_is_what_the_gateway_reads() -> None:
    assert set(Verified.__slots__) == {"principal", "key_id", "payload", "presigned"}
