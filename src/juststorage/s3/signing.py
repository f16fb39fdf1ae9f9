"""S3 request authentication: AWS Signature V4 (Authorization header and presigned
query), presigned SigV2, and the verified request body (SPEC §8.8).

The access key id is a JustStorage API key id; its secret is derived
(`s3.secrets`). Every signature is compared in constant time. The credential
scope's region is not checked beyond being the one the signature was made with;
its service must be `s3`.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass

from juststorage.application.ports import Clock
from juststorage.bootstrap import Services, s3_master_key
from juststorage.domain.auth import ANONYMOUS_ADMIN, Principal
from juststorage.s3 import canonical, sigv2, sigv4
from juststorage.s3.auth_errors import S3AuthError
from juststorage.s3.body import VerifiedBody
from juststorage.s3.chunked import ChunkChain
from juststorage.s3.request import (
    PayloadKind,
    PayloadMode,
    RequestHead,
    parse_payload,
    stored_content_encoding,
)
from juststorage.s3.secrets import S3Key, S3Keys, S3KeyStore

__all__ = [
    "PayloadKind",
    "PayloadMode",
    "RequestHead",
    "S3AuthError",
    "S3Authenticator",
    "Verified",
    "VerifiedBody",
    "build_s3_authenticator",
    "stored_content_encoding",
    "verified_body",
]

_SIGNING_KEYS_CACHED = 256
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided."
    " Check your key and signing method."
)


@dataclass(frozen=True, slots=True)
class Verified:
    """An authenticated S3 request: who, with which key, and how its body is signed."""

    principal: Principal
    key_id: str
    payload: PayloadMode
    presigned: bool


class S3Authenticator:
    """Checks the signature of every S3 request (see `verify`)."""

    def __init__(self, keys: S3Keys, clock: Clock, *, enabled: bool = True) -> None:
        self._keys = keys
        self._clock = clock
        self.enabled = enabled
        self._signing_keys: dict[tuple[str, str, str, str], bytes] = {}

    async def verify(self, head: RequestHead) -> Verified:
        """Authenticate a request from its head.

        Header SigV4 (any payload mode), presigned SigV4 and presigned SigV2. The
        body is verified later, as it streams (`verified_body`). With authentication
        disabled, every request is the anonymous admin's, unsigned.

        Raises:
            S3AuthError: AccessDenied (anonymous, expired, unsigned x-amz-* headers),
                InvalidAccessKeyId (unknown or revoked key), SignatureDoesNotMatch,
                RequestTimeTooSkewed (beyond 15 minutes), AuthorizationHeaderMalformed,
                AuthorizationQueryParametersError, InvalidArgument, InvalidRequest,
                NotImplemented (SigV4a).
        """
        values = canonical.header_values(head.headers)
        pairs = canonical.query_pairs(head.query_string)
        names = {name for name, _ in pairs}
        authorization = values.get("authorization")
        presigned_v4 = "X-Amz-Algorithm" in names or "X-Amz-Signature" in names
        presigned_v2 = "AWSAccessKeyId" in names or "Signature" in names
        if not self.enabled:
            return Verified(ANONYMOUS_ADMIN, "", _payload(values, None), presigned_v4)
        if (authorization is not None) + presigned_v4 + presigned_v2 > 1:
            raise S3AuthError(
                "InvalidArgument",
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter,"
                " Signature query string parameter or the Authorization header should be"
                " specified",
            )
        if authorization is not None:
            return await self._header(head, values, pairs, authorization)
        if presigned_v4:
            claim = sigv4.parse_presigned(pairs, self._clock.now())
            return await self._check_v4(head, values, claim)
        if presigned_v2:
            return await self._check_v2(head, values, pairs)
        raise S3AuthError("AccessDenied", "Anonymous access is forbidden: sign the request")

    async def _header(
        self,
        head: RequestHead,
        values: dict[str, list[str]],
        pairs: list[tuple[str, str]],
        authorization: list[str],
    ) -> Verified:
        if len(authorization) != 1:
            raise S3AuthError("InvalidArgument", "more than one Authorization header")
        text = authorization[0].strip()
        if text.startswith("AWS "):
            raise S3AuthError(
                "InvalidRequest",
                "The authorization mechanism you have provided is not supported."
                " Please use AWS4-HMAC-SHA256.",
            )
        if text.startswith("AWS4-ECDSA-P256-SHA256"):
            raise S3AuthError("NotImplemented", "SigV4a (ECDSA) signatures are not supported")
        if not text.startswith("AWS4-HMAC-SHA256"):
            raise S3AuthError("InvalidArgument", "Unsupported Authorization Type")
        x_amz_date = _one(values, "x-amz-date")
        claim, when = sigv4.parse_authorization(
            text, x_amz_date, _one(values, "date"), canonical.canonical_query(pairs)
        )
        if (x_amz_date is not None and "x-amz-date" not in claim.signed_headers) or (
            x_amz_date is None and "date" not in claim.signed_headers
        ):
            raise S3AuthError("AccessDenied", "the header with the request's date must be signed")
        sigv4.check_skew(when, self._clock.now())
        if "x-amz-content-sha256" not in values:
            raise S3AuthError(
                "InvalidRequest", "Missing required header for this request: x-amz-content-sha256"
            )
        return await self._check_v4(head, values, claim)

    async def _check_v4(
        self, head: RequestHead, values: dict[str, list[str]], claim: sigv4.V4Claim
    ) -> Verified:
        unsigned = sorted(
            name
            for name in values
            if name.startswith("x-amz-") and name not in claim.signed_headers
        )
        if unsigned:
            raise S3AuthError(
                "AccessDenied",
                "There were headers present in the request which were not signed: "
                + ", ".join(unsigned),
            )
        payload_header = _one(values, "x-amz-content-sha256")
        if payload_header is not None:
            payload_text = payload_header
        elif claim.presigned:
            payload_text = PayloadKind.UNSIGNED.value
        else:  # the caller checked it is there
            raise AssertionError("x-amz-content-sha256 missing")
        kind, sha256_hex = parse_payload(payload_text)
        key = await self._key(claim.key_id)
        signing_key = self._signing_key(key, claim.date, claim.region)
        headers = canonical.canonical_headers(values, claim.signed_headers, head.host)
        matched = False
        for uri in canonical.canonical_uris(head.raw_path):
            request = canonical.canonical_request(
                head.method, uri, claim.canonical_query, headers, claim.signed_headers, payload_text
            )
            expected = canonical.sign(
                signing_key, canonical.string_to_sign(claim.timestamp, claim.scope, request)
            )
            # Every candidate is compared (no early exit on the first match).
            matched |= canonical.same_signature(expected, claim.signature)
        if not matched:
            raise S3AuthError("SignatureDoesNotMatch", _MISMATCH)
        chain = None
        if kind.signed_chunks:
            chain = ChunkChain(signing_key, claim.timestamp, claim.scope, claim.signature)
        return Verified(
            key.principal, key.key_id, PayloadMode(kind, sha256_hex, chain), claim.presigned
        )

    async def _check_v2(
        self, head: RequestHead, values: dict[str, list[str]], pairs: list[tuple[str, str]]
    ) -> Verified:
        claim = sigv2.parse_presigned_v2(pairs, self._clock.now())
        payload = _payload(values, None)
        if payload.kind.aws_chunked:
            raise S3AuthError("InvalidRequest", "aws-chunked bodies need SigV4")
        key = await self._key(claim.key_id)
        resource = head.raw_path if head.signed_resource is None else head.signed_resource
        items = canonical.query_items(head.query_string)
        matched = False
        for path in canonical.canonical_uris(resource):
            text = sigv2.string_to_sign_v2(head.method, values, claim.expires, path, items)
            expected = sigv2.sign_v2(key.secret, text)
            matched |= hmac.compare_digest(
                expected.encode("ascii"), claim.signature.encode("ascii", "replace")
            )
        if not matched:
            raise S3AuthError("SignatureDoesNotMatch", _MISMATCH)
        return Verified(key.principal, key.key_id, payload, True)

    async def _key(self, key_id: str) -> S3Key:
        key = await self._keys.find(key_id)
        if key is None:
            raise S3AuthError(
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        return key

    def _signing_key(self, key: S3Key, date: str, region: str) -> bytes:
        cache_key = (key.key_id, key.secret, date, region)
        signing_key = self._signing_keys.get(cache_key)
        if signing_key is None:
            signing_key = canonical.signing_key(key.secret, date, region)
            if len(self._signing_keys) >= _SIGNING_KEYS_CACHED:
                self._signing_keys.clear()
            self._signing_keys[cache_key] = signing_key
        return signing_key


def _one(values: dict[str, list[str]], name: str) -> str | None:
    sent = values.get(name)
    if not sent:
        return None
    if len(sent) > 1:
        raise S3AuthError("InvalidArgument", f"the header {name} was sent more than once")
    return sent[0].strip()


def _payload(values: dict[str, list[str]], chain: ChunkChain | None) -> PayloadMode:
    """The payload mode a request declares, for the forms that sign no chunks."""
    text = _one(values, "x-amz-content-sha256")
    if text is None:
        return PayloadMode(PayloadKind.UNSIGNED)
    kind, sha256_hex = parse_payload(text)
    return PayloadMode(kind, sha256_hex, chain)


def verified_body(
    verified: Verified,
    head: RequestHead,
    chunks: AsyncIterator[bytes],
    *,
    check_checksum_headers: bool = True,
    defer_sha256: bool = False,
) -> VerifiedBody:
    """The request body, decoded and verified as it streams (see `VerifiedBody`).

    `check_checksum_headers=False` where the `x-amz-checksum-*` headers describe an
    object rather than this body (CompleteMultipartUpload). `defer_sha256=True`
    where the consumer computes the body's SHA-256 itself and refuses to commit
    unless it equals `VerifiedBody.sha256_to_check` (an upload given it as its
    expected content hash): the bytes are then hashed once, not twice.

    Raises:
        S3AuthError: at once for headers that cannot be used (a malformed
            Content-MD5 is InvalidDigest; an unsupported checksum algorithm, a
            malformed checksum or x-amz-decoded-content-length is InvalidRequest or
            InvalidArgument); the iterator raises for everything else.
    """
    return VerifiedBody(
        verified.payload,
        head,
        chunks,
        check_checksum_headers=check_checksum_headers,
        defer_sha256=defer_sha256,
    )


def build_s3_authenticator(services: Services) -> S3Authenticator:
    """The S3 authenticator of a process, over its metadata store and clock.

    Raises:
        OSError: the master key file cannot be read or created.
    """
    keys = S3KeyStore(services.metadata, s3_master_key(services.settings))
    return S3Authenticator(keys, services.clock, enabled=services.authenticator.enabled)
