"""Request → validated domain values. Every failure is BadRequest with a clear message."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote, unquote_to_bytes
from uuid import UUID

from starlette.requests import Request

from juststorage.application.listing import MAX_PAGE
from juststorage.application.records import ListQuery
from juststorage.domain.cursor import ListCursor
from juststorage.domain.errors import BadRequest, NotFound
from juststorage.domain.model import (
    MAX_KEY_BYTES,
    ContentHash,
    Namespace,
    ObjectKey,
    StorageClass,
    TenantId,
    delimiter,
)

BY_KEY_PREFIX = "/v1/objects/by-key/"
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_MAX_CONTENT_TYPE = 255
_MAX_DIGITS = 19  # past this, a number is larger than any size or limit we accept
_HUGE = 10**_MAX_DIGITS
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def required_header(request: Request, name: str) -> str:
    value = request.headers.get(name)
    if value is None or not value.strip():
        raise BadRequest(f"missing header {name}")
    return value.strip()


def header_bytes(request: Request, name: str) -> bytes | None:
    """A header's raw bytes (Starlette decodes headers as latin-1, which round-trips)."""
    value = request.headers.get(name)
    return None if value is None else value.encode("latin-1")


def tenant_header(request: Request) -> TenantId:
    return TenantId(required_header(request, "x-tenant"))


def key_header(request: Request) -> ObjectKey:
    raw = header_bytes(request, "x-key")
    if raw is None or raw == b"":
        raise BadRequest("missing header x-key")
    encoding = (request.headers.get("x-key-encoding") or "").strip().lower()
    if encoding == "percent":
        return _percent_decoded_key(raw)
    if encoding:
        raise BadRequest("X-Key-Encoding accepts only 'percent'")
    return ObjectKey.from_header_bytes(raw)


def _percent_decoded_key(raw: bytes) -> ObjectKey:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest("a percent-encoded key must be ASCII") from None
    return ObjectKey.from_header_bytes(strict_unquote_to_bytes(text))


def strict_unquote_to_bytes(text: str) -> bytes:
    """Percent-decode `text` (RFC 3986), refusing a `%` not followed by two hex digits.

    `urllib.parse.unquote_to_bytes` keeps a malformed escape as literal text, which
    would store or look up a key the client never meant (SPEC §2: `400`).

    Raises:
        BadRequest: a malformed escape.
    """
    if _BAD_ESCAPE.search(text):
        raise BadRequest("'%' must be followed by two hex digits")
    return unquote_to_bytes(text)


def content_type_header(request: Request) -> str:
    value = request.headers.get("content-type", "").strip()
    if not value:
        return _DEFAULT_CONTENT_TYPE
    if len(value) > _MAX_CONTENT_TYPE or not value.isprintable() or not value.isascii():
        raise BadRequest("Content-Type must be printable ASCII of at most 255 characters")
    return value


def content_length_header(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    return _ascii_integer(value.strip(), "Content-Length must be a non-negative integer")


def required_checksum_header(request: Request) -> ContentHash:
    found = checksum_header(request)
    if found is None:
        raise BadRequest("missing header x-content-sha256")
    return found


def content_length_claim(request: Request) -> int:
    """`X-Content-Length` of an upload by hash: the size of the content it names."""
    value = required_header(request, "x-content-length")
    return _ascii_integer(value, "X-Content-Length must be a non-negative integer")


def _ascii_integer(text: str, problem: str) -> int:
    """A non-negative decimal of ASCII digits; one too long to be a size is capped.

    `str.isdigit` alone also takes `²` or Arabic-Indic digits, and `int()` refuses
    more than 4300 digits: both would otherwise escape as a 500.
    """
    if not text or not text.isascii() or not text.isdigit():
        raise BadRequest(problem)
    significant = text.lstrip("0")
    return _HUGE if len(significant) > _MAX_DIGITS else int(significant or "0")


def checksum_header(request: Request) -> ContentHash | None:
    value = request.headers.get("x-content-sha256")
    if value is None:
        return None
    try:
        return ContentHash.parse(value)
    except BadRequest:
        raise BadRequest("X-Content-SHA256 must be 64 hex characters") from None


def storage_class_header(request: Request) -> StorageClass:
    return StorageClass.parse(request.headers.get("x-storage-class", "hot").strip().lower())


def object_id_param(request: Request) -> UUID:
    raw = request.path_params["object_id"]
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound("no such object") from None


def by_key_params(request: Request) -> tuple[Namespace, TenantId, ObjectKey]:
    """Namespace, tenant and key from `/v1/objects/by-key/{namespace}/{tenant}/{key}`.

    Read from the raw path, so the key's percent-decoding is ours and happens once:
    `%2F` and `/` mean the same, and a malformed escape or bytes that are not UTF-8
    are refused, not guessed at.
    """
    raw_path = request.scope.get("raw_path")
    if raw_path:
        path = raw_path.decode("latin-1")
    else:  # a server without raw_path: re-escape its decoded path so it is decoded once
        path = quote(request.scope["path"].encode("utf-8", "surrogateescape"), safe="/")
    path = path.split("?", 1)[0]
    rest = path[len(BY_KEY_PREFIX) :] if path.startswith(BY_KEY_PREFIX) else ""
    parts = rest.split("/", 2)
    if len(parts) != 3:
        raise BadRequest("use /v1/objects/by-key/{namespace}/{tenant}/{key}")
    namespace = Namespace(_unquote_name(parts[0]))
    tenant = TenantId(_unquote_name(parts[1]))
    if not parts[2]:
        raise BadRequest("the key is empty")
    return namespace, tenant, ObjectKey.from_header_bytes(strict_unquote_to_bytes(parts[2]))


def _unquote_name(part: str) -> str:
    try:
        return strict_unquote_to_bytes(part).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("tenant and namespace must be valid UTF-8") from None


def _query_value(request: Request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"query parameter {name!r} given more than once")
    return values[0] if values else None


def _strict_query_value(request: Request, name: str) -> str | None:
    """A query value decoded strictly: a malformed escape or bytes that are not UTF-8
    are `400` (Starlette would turn them into U+FFFD, another value than was sent)."""
    if _query_value(request, name) is None:  # also refuses a parameter given twice
        return None
    query = request.scope.get("query_string", b"").decode("latin-1")
    for pair in query.split("&"):
        raw_name, _, raw_value = pair.partition("=")
        if unquote(raw_name.replace("+", " ")) == name:
            try:
                return strict_unquote_to_bytes(raw_value.replace("+", " ")).decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"query parameter {name!r} must be valid UTF-8") from None
    raise BadRequest(f"query parameter {name!r} is malformed")  # not found as parsed


def required_query(request: Request, name: str) -> str:
    value = _query_value(request, name)
    if not value:
        raise BadRequest(f"missing query parameter {name!r}")
    return value


def list_query(request: Request) -> ListQuery:
    tenant = TenantId(required_query(request, "tenant"))
    namespace = Namespace(required_query(request, "namespace"))
    raw_limit = _query_value(request, "limit")
    limit = 100
    if raw_limit is not None:
        problem = f"limit must be an integer from 1 to {MAX_PAGE}"
        limit = _ascii_integer(raw_limit, problem)
        if not 1 <= limit <= MAX_PAGE:
            raise BadRequest(problem)
    raw_cursor = _query_value(request, "cursor")
    prefix = _query_value(request, "prefix") or ""
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise BadRequest(f"prefix must be at most {MAX_KEY_BYTES} bytes")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in prefix):
        raise BadRequest("prefix must not contain control characters")
    versions = (_query_value(request, "versions") or "false").lower()
    if versions not in ("true", "false"):
        raise BadRequest("versions must be true or false")
    raw_class = _query_value(request, "storage_class")
    raw_delimiter = _strict_query_value(request, "delimiter")
    return ListQuery(
        tenant_id=tenant,
        namespace=namespace,
        limit=limit,
        after=ListCursor.decode(raw_cursor) if raw_cursor else None,
        prefix=prefix,
        all_versions=versions == "true",
        storage_class=StorageClass.parse(raw_class) if raw_class else None,
        delimiter=delimiter(raw_delimiter) if raw_delimiter is not None else None,
    )
