"""Requests and answers without I/O: what the sync and async clients share."""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional
from urllib.parse import quote

import httpx

from juststorage_client._errors import ApiError, IntegrityError, error_class

CHUNK_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=30.0)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received."""
# typing.Optional: this alias is evaluated at run time, where `int | None`
# needs Python 3.10.
ByteRange = tuple[int, Optional[int]]
"""(first, last) inclusive, as in `Range: bytes=first-last`; last None = to the end."""


def user_agent() -> str:
    return "juststorage-client-python/0.1.0"


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True)
class Target:
    """Which object a call addresses: by id (with its tenant) or by key (newest version)."""

    tenant: str
    id: str | None = None
    namespace: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        by_key = self.namespace is not None or self.key is not None
        if (self.id is None) == (not by_key) or (by_key and None in (self.namespace, self.key)):
            raise ValueError("name the object by id=…, or by namespace=… and key=…")

    def path(self) -> str:
        if self.id is not None:
            return f"/v1/objects/{quote(self.id, safe='')}"
        assert self.namespace is not None and self.key is not None
        return by_key_path(self.namespace, self.tenant, self.key)

    def headers(self) -> dict[str, str]:
        return {"X-Tenant": self.tenant} if self.id is not None else {}

    def pinned(self, object_id: str) -> Target:
        """The same object by id, so a resumed download cannot switch versions."""
        return Target(tenant=self.tenant, id=object_id)


def by_key_path(namespace: str, tenant: str, key: str) -> str:
    # `/` in the key is sent as %2F (the same to the server) so that no client-side
    # path normalisation can touch "." or ".." segments.
    encoded = quote(key, safe="")
    if set(encoded) == {"."}:
        encoded = encoded.replace(".", "%2E")
    return f"/v1/objects/by-key/{quote(namespace, safe='')}/{quote(tenant, safe='')}/{encoded}"


def range_header(byte_range: ByteRange | None) -> dict[str, str]:
    if byte_range is None:
        return {}
    first, last = byte_range
    if first < 0 or (last is not None and last < first):
        raise ValueError(f"invalid byte range {byte_range!r}")
    return {"Range": f"bytes={first}-{'' if last is None else last}"}


def upload_headers(
    *,
    tenant: str,
    namespace: str,
    key: str,
    storage_class: str | None,
    content_type: str | None,
    sha256: str | None,
    if_none_match: Literal["*"] | None,
    if_match: str | None,
    size: int | None,
) -> dict[str, str]:
    headers = {"X-Tenant": tenant, "X-Namespace": namespace}
    if key.isascii() and key.isprintable():
        headers["X-Key"] = key
    else:  # raw UTF-8 is allowed too; percent-encoding keeps every header ASCII
        headers["X-Key"] = quote(key, safe="")
        headers["X-Key-Encoding"] = "percent"
    if storage_class is not None:
        headers["X-Storage-Class"] = storage_class
    headers["Content-Type"] = content_type or "application/octet-stream"
    if sha256 is not None:
        headers["X-Content-SHA256"] = sha256
    if if_none_match is not None:
        if if_none_match != "*":
            raise ValueError("if_none_match accepts only '*'")
        headers["If-None-Match"] = "*"
    if if_match is not None:
        headers["If-Match"] = normalize_etag(if_match)
    if size is not None:
        headers["Content-Length"] = str(size)
    return headers


def by_hash_digest(sha256: str) -> str:
    """The 64 lower-case hex digits of a digest given bare or as `sha256:<hex>`."""
    bare = sha256.strip().removeprefix("sha256:").lower()
    if not _HEX64.match(bare):
        raise ValueError(f"not a SHA-256 digest: {sha256!r}")
    return bare


def normalize_etag(value: str) -> str:
    """`"sha256:<hex>"` from a quoted ETag, `sha256:<hex>` or a bare hex digest."""
    bare = value.strip().strip('"').removeprefix("sha256:").lower()
    if not _HEX64.match(bare):
        raise ValueError(f"not a SHA-256 ETag: {value!r}")
    return f'"sha256:{bare}"'


def upload_is_idempotent(
    if_none_match: str | None, if_match: str | None, sha256: str | None
) -> bool:
    """True when sending the upload twice cannot create a second object.

    With `If-None-Match: *` a repeat finds the key taken (412). With `If-Match`
    on a digest other than the new content's, a repeat finds the ETag changed
    (412); with the same digest it could add a second, identical version.
    """
    if if_none_match == "*":
        return True
    if if_match is not None and sha256 is not None:
        return normalize_etag(if_match) != f'"sha256:{sha256}"'
    return False


def sha256_of_file(path: Path, chunk_bytes: int = CHUNK_BYTES) -> tuple[str, int]:
    """Hex digest and size of a file, read in one streaming pass."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def seekable_position(stream: object) -> int | None:
    """Where a rewindable file object starts, or None when it cannot be read twice."""
    try:
        if getattr(stream, "seekable")():  # noqa: B009 (any file-like object)
            position: int = getattr(stream, "tell")()  # noqa: B009
            return position
    except (AttributeError, OSError, ValueError):
        pass
    return None


def remaining_size(stream: object) -> int | None:
    """Bytes left in a file object backed by a regular file, else None."""
    try:
        fileno = getattr(stream, "fileno")()  # noqa: B009
        position = getattr(stream, "tell")()  # noqa: B009
        if not stat.S_ISREG(os.fstat(fileno).st_mode):
            return None
        return int(os.fstat(fileno).st_size - position)
    except (AttributeError, OSError, ValueError):
        return None


def error_from(response: httpx.Response, body: bytes | None = None) -> ApiError:
    """The typed error for an error answer (its body already read, or `body`)."""
    payload: Any = None
    raw = body if body is not None else response.content
    if raw:
        try:
            payload = httpx.Response(200, content=raw).json()
        except ValueError:
            payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    code = message = request_id = None
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message")
        request_id = error.get("request_id")
    status = response.status_code
    cls = error_class(code if isinstance(code, str) else None, status)
    retry_after = response.headers.get("retry-after")
    try:
        retry_after_s = float(retry_after) if retry_after is not None else None
    except ValueError:
        retry_after_s = None
    return cls(
        str(message) if message else (response.reason_phrase or f"HTTP {status}"),
        status=status,
        request_id=str(request_id or response.headers.get("x-request-id", "")),
        code=code if isinstance(code, str) else None,
        retry_after=retry_after_s,
    )


class Verifier:
    """Hashes a whole-object download as it arrives; checks it against the ETag."""

    def __init__(self, content_hash: str | None) -> None:
        self.expected = content_hash.removeprefix("sha256:") if content_hash else None
        self._digest = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._digest.update(chunk)

    def check(self) -> None:
        actual = self._digest.hexdigest()
        if self.expected is not None and actual != self.expected:
            raise IntegrityError(
                f"downloaded bytes hash to sha256:{actual}, the object is sha256:{self.expected}",
                expected=self.expected,
                actual=actual,
            )
