"""Presigned SigV2 query strings (`AWSAccessKeyId`, `Expires`, `Signature`).

    Signature = base64(HMAC-SHA1(secret, VERB \\n Content-MD5 \\n Content-Type \\n
                Expires \\n CanonicalizedAmzHeaders CanonicalizedResource))

The resource is `/<bucket>/<key as sent>` of the bucket and key the gateway serves
(whichever addressing the request used) and the sub-resources S3 signs, by their
decoded names; other query parameters are not signed in SigV2.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from juststorage.s3.auth_errors import S3AuthError

# The query parameters SigV2 signs (S3's sub-resources and response overrides).
SUBRESOURCES = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "cors",
        "defaultObjectAcl",
        "delete",
        "inventory",
        "lifecycle",
        "location",
        "logging",
        "metrics",
        "notification",
        "object-lock",
        "partNumber",
        "policy",
        "replication",
        "requestPayment",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "select",
        "select-type",
        "storageClass",
        "tagging",
        "torrent",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "website",
    }
)
# A SigV2 URL names its own expiry; one further away than SigV4 allows (7 days, and
# the clock skew) is refused.
MAX_V2_SECONDS = 604800 + 900
_FIELDS = ("AWSAccessKeyId", "Expires", "Signature")


@dataclass(frozen=True, slots=True)
class V2Claim:
    key_id: str
    expires: str
    signature: str


def parse_presigned_v2(pairs: list[tuple[str, str]], now: datetime) -> V2Claim:
    """The SigV2 query parameters, checked against the time `now`.

    Raises:
        S3AuthError: AccessDenied for missing parameters and expired URLs,
            AuthorizationQueryParametersError for an expiry too far away.
    """
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in _FIELDS:
            if name in fields:
                raise S3AuthError("InvalidArgument", f"{name} was given more than once")
            fields[name] = value
    if len(fields) != len(_FIELDS) or not all(fields.values()):
        raise S3AuthError(
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and"
            " AWSAccessKeyId parameters",
        )
    expires = fields["Expires"]
    if not (expires.isascii() and expires.isdigit()):
        raise S3AuthError("AccessDenied", "Expires must be a number of seconds since the epoch")
    moment = int(expires)
    if now.timestamp() > moment:
        raise S3AuthError("AccessDenied", "Request has expired")
    if moment - now.timestamp() > MAX_V2_SECONDS:
        raise S3AuthError(
            "AuthorizationQueryParametersError",
            "Expires is more than 7 days away; presign for at most 604800 seconds",
        )
    # A `+` sent unencoded arrives as itself (the query is decoded with unquote).
    return V2Claim(fields["AWSAccessKeyId"], expires, fields["Signature"].replace(" ", "+"))


def _resource(path: str, items: list[tuple[str, str | None]]) -> str:
    """The path and the sub-resources, by their decoded names (the names the
    operations read), so no spelling of a sub-resource escapes the signature.

    Raises:
        S3AuthError: InvalidArgument for a sub-resource given twice.
    """
    signed: list[tuple[str, str]] = []
    for name, value in items:
        if name in SUBRESOURCES:
            if any(name == seen for seen, _ in signed):
                raise S3AuthError("InvalidArgument", f"{name} was given more than once")
            signed.append((name, name if value is None else f"{name}={value}"))
    signed.sort(key=lambda item: item[0])
    return path + ("?" + "&".join(item for _, item in signed) if signed else "")


def string_to_sign_v2(
    method: str,
    values: dict[str, list[str]],
    expires: str,
    path: str,
    items: list[tuple[str, str | None]],
) -> str:
    """The SigV2 string to sign of a presigned request (`path` as signed, see module)."""
    standard = [
        ",".join(v.strip() for v in values.get(n, ())) for n in ("content-md5", "content-type")
    ]
    amz = "".join(
        f"{name}:{','.join(v.strip() for v in values[name])}\n"
        for name in sorted(values)
        if name.startswith("x-amz-")
    )
    return f"{method}\n{standard[0]}\n{standard[1]}\n{expires}\n{amz}" + _resource(path, items)


def sign_v2(secret: str, text: str) -> str:
    digest = hmac.digest(
        secret.encode("utf-8"), text.encode("utf-8", "surrogateescape"), hashlib.sha1
    )
    return base64.b64encode(digest).decode("ascii")
