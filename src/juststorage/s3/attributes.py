"""What S3 requests say about an object besides its bytes: user metadata
(`x-amz-meta-*`), storage class, content type, and the headers GET/HEAD answer
with them."""

from __future__ import annotations

import json

from juststorage.domain.model import ObjectVersion, StorageClass
from juststorage.s3.errors import S3Error, invalid_argument
from juststorage.s3.header_values import header_name, header_value

META_PREFIX = "x-amz-meta-"
MAX_METADATA_BYTES = 2048  # the stored JSON object of names and values (SPEC §8.8)
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Headers of a PUT that S3 keeps with the object and answers GET/HEAD with.
KEPT_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)
SYSTEM_PREFIX = ":"
# S3 classes kept on the cold root; STANDARD and the other non-archival ones on hot.
_COLD = frozenset(
    {
        "STANDARD_IA",
        "ONEZONE_IA",
        "INTELLIGENT_TIERING",
        "GLACIER",
        "GLACIER_IR",
        "DEEP_ARCHIVE",
        "SNOW",
        "OUTPOSTS",
    }
)
_HOT = frozenset({"STANDARD", "REDUCED_REDUNDANCY", "EXPRESS_ONEZONE"})
STORAGE_CLASS_OUT = {StorageClass.HOT: "STANDARD", StorageClass.COLD: "STANDARD_IA"}


def user_metadata(headers: dict[str, str]) -> str:
    """The request's `x-amz-meta-*` pairs as a JSON object (names without the prefix,
    lower-case as HTTP/1.1 servers hand them over), with the headers S3 keeps with
    an object and returns on GET (`Content-Encoding` without `aws-chunked`,
    `Cache-Control`, ...) under `:<name>` (no header name holds a colon).

    Raises:
        S3Error: MetadataTooLarge over 2 KiB of JSON.
    """
    pairs = {
        name[len(META_PREFIX) :]: value
        for name, value in sorted(headers.items())
        if name.startswith(META_PREFIX) and len(name) > len(META_PREFIX)
    }
    for name in KEPT_HEADERS:
        value = headers.get(name)
        if name == "content-encoding" and value is not None:
            codings = [c.strip() for c in value.split(",")]
            value = ", ".join(c for c in codings if c and c.lower() != "aws-chunked")
        if value:
            pairs[SYSTEM_PREFIX + name] = value
    text = json.dumps(pairs, ensure_ascii=False, separators=(",", ":"))
    if len(text.encode("utf-8")) > MAX_METADATA_BYTES:
        raise S3Error(
            "MetadataTooLarge",
            f"Your metadata headers exceed the maximum allowed metadata size"
            f" ({MAX_METADATA_BYTES} bytes of names and values as JSON).",
            400,
        )
    return text


def metadata_headers(version: ObjectVersion) -> list[tuple[bytes, bytes]]:
    """`x-amz-meta-*` response headers of the stored user metadata."""
    if not version.user_metadata:
        return []
    try:
        pairs = json.loads(version.user_metadata)
    except ValueError:
        return []
    headers = []
    for name, value in pairs.items():
        # Stored from request headers, so valid; a value that could not be sent is
        # left out rather than breaking the answer.
        raw_name = header_name(name[1:] if name.startswith(SYSTEM_PREFIX) else META_PREFIX + name)
        raw_value = header_value(str(value))
        if raw_name is not None and raw_value is not None:
            headers.append((raw_name, raw_value))
    return headers


def storage_class_of(
    headers: dict[str, str], default: StorageClass = StorageClass.HOT
) -> StorageClass:
    """Our `X-Storage-Class` (hot|cold), else `x-amz-storage-class` mapped: STANDARD
    (and the other non-archival classes) to hot, STANDARD_IA, GLACIER* and the other
    infrequent-access classes to cold.

    Raises:
        S3Error: InvalidStorageClass, InvalidArgument.
    """
    ours = headers.get("x-storage-class")
    if ours is not None:
        try:
            return StorageClass(ours.strip().lower())
        except ValueError:
            raise invalid_argument("X-Storage-Class must be hot or cold") from None
    theirs = headers.get("x-amz-storage-class")
    if theirs is None:
        return default
    name = theirs.strip().upper()
    if name in _HOT:
        return StorageClass.HOT
    if name in _COLD:
        return StorageClass.COLD
    raise S3Error("InvalidStorageClass", "The storage class you specified is not valid", 400)


def content_type_of(headers: dict[str, str]) -> str:
    value = headers.get("content-type", "").strip()
    if not value:
        return DEFAULT_CONTENT_TYPE
    if len(value) > 1024 or not value.isprintable():
        raise invalid_argument("Content-Type is not valid")
    return value
