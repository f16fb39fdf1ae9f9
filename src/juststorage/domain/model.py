"""Value objects of the store: names, keys, content hashes, object versions.

Every constructor validates, so a value that exists is a valid one.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Self
from uuid import UUID

from juststorage.domain.errors import BadRequest

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
MAX_KEY_BYTES = 1024


class StorageClass(enum.StrEnum):
    """Where a blob's bytes live: `hot` (fast root, default) or `cold`."""

    HOT = "hot"
    COLD = "cold"

    @classmethod
    def parse(cls, raw: str) -> StorageClass:
        try:
            return cls(raw)
        except ValueError:
            raise BadRequest(f"storage class must be 'hot' or 'cold', not {raw!r}") from None


class ObjectState(enum.StrEnum):
    """Life cycle of one object version: WRITING → COMMITTED → DELETING → DELETED."""

    WRITING = "WRITING"
    COMMITTED = "COMMITTED"
    DELETING = "DELETING"
    DELETED = "DELETED"

    def can_become(self, target: ObjectState) -> bool:
        return target in _TRANSITIONS[self]


_TRANSITIONS: dict[ObjectState, frozenset[ObjectState]] = {
    # A WRITING row that never commits is removed outright, so DELETED is reachable too.
    ObjectState.WRITING: frozenset({ObjectState.COMMITTED, ObjectState.DELETED}),
    ObjectState.COMMITTED: frozenset({ObjectState.DELETING}),
    ObjectState.DELETING: frozenset({ObjectState.DELETED}),
    ObjectState.DELETED: frozenset(),
}


class _Name(str):
    """A tenant or namespace name: `[a-z0-9][a-z0-9_-]{0,62}`."""

    __slots__ = ()
    _what = "name"

    def __new__(cls, raw: str) -> _Name:
        if not isinstance(raw, str) or not _NAME_RE.fullmatch(raw):
            raise BadRequest(
                f"invalid {cls._what} {raw!r}: use 1-63 of a-z 0-9 _ -, starting with a-z or 0-9"
            )
        return super().__new__(cls, raw)

    @classmethod
    def trusted(cls, raw: str) -> Self:
        """Wrap a value that was validated before it was stored (skips the checks)."""
        return str.__new__(cls, raw)


class TenantId(_Name):
    """The isolation boundary every object belongs to."""

    __slots__ = ()
    _what = "tenant"


class Namespace(_Name):
    """A product area inside a tenant."""

    __slots__ = ()
    _what = "namespace"


class ObjectKey(str):
    """An opaque UTF-8 key of 1-1024 bytes without control characters."""

    __slots__ = ()

    def __new__(cls, raw: str) -> ObjectKey:
        try:
            size = len(raw.encode("utf-8"))
        except UnicodeEncodeError:
            raise BadRequest("key must be valid UTF-8") from None
        if not 1 <= size <= MAX_KEY_BYTES:
            raise BadRequest(f"key must be 1-{MAX_KEY_BYTES} bytes of UTF-8, got {size}")
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
            raise BadRequest("key must not contain control characters")
        return super().__new__(cls, raw)

    @classmethod
    def trusted(cls, raw: str) -> ObjectKey:
        """Wrap a key that was validated before it was stored (skips the checks)."""
        return str.__new__(cls, raw)

    @classmethod
    def from_header_bytes(cls, raw: bytes) -> ObjectKey:
        """Decode a raw header value (SPEC: header values carrying names are UTF-8)."""
        try:
            return cls(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadRequest("key must be valid UTF-8") from None


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string that starts with `prefix`.

    UTF-8 byte order equals code point order, so incrementing the last code point
    gives the exclusive upper bound of a key range. None means "no upper bound".
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            nxt = last + 1
            if 0xD800 <= nxt <= 0xDFFF:  # surrogates are not valid in UTF-8
                nxt = 0xE000
            return "".join(chars) + chr(nxt)
    return None


# Keys hold at most 1024 bytes, so fewer than 256 four-byte characters follow any
# non-empty prefix: a prefix followed by 256 U+10FFFF sorts after every key it starts.
_PAST_ANY_TAIL = "\U0010ffff" * (MAX_KEY_BYTES // 4)


def skip_past(prefix: str) -> str:
    """An inclusive lower bound past every key that starts with non-empty `prefix` and
    at or below every greater key: where a listing resumes after rolling it up.

    The exclusive upper bound of the prefix's range where there is one; else (a prefix
    of U+10FFFF only) the prefix followed by more U+10FFFF than any key can hold.
    """
    upper = prefix_upper_bound(prefix)
    return upper if upper is not None else prefix + _PAST_ANY_TAIL


MAX_DELIMITER_BYTES = 16


def delimiter(raw: str) -> str:
    """A listing delimiter (SPEC §8.4): 1-16 bytes of UTF-8 without control characters
    (no key holds one, so it could never match)."""
    try:
        size = len(raw.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadRequest("delimiter must be valid UTF-8") from None
    if not 1 <= size <= MAX_DELIMITER_BYTES:
        raise BadRequest(f"delimiter must be 1-{MAX_DELIMITER_BYTES} bytes of UTF-8, got {size}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise BadRequest("delimiter must not contain control characters")
    return raw


def rolled_up(key: str, prefix: str, delimiter: str) -> str | None:
    """The common prefix `key` rolls up into when listed under `prefix` with
    `delimiter` (up to and including the first delimiter after the prefix), or None."""
    found = key.find(delimiter, len(prefix))
    return None if found < 0 else key[: found + len(delimiter)]


@dataclass(frozen=True, slots=True)
class ContentHash:
    """A SHA-256 digest, the address of a blob."""

    hex: str

    def __post_init__(self) -> None:
        if not _HEX64_RE.fullmatch(self.hex):
            raise BadRequest("a SHA-256 digest is 64 lowercase hex characters")

    @classmethod
    def trusted(cls, hex_digest: str) -> ContentHash:
        """Wrap a digest that was validated before it was stored (skips the checks)."""
        digest = object.__new__(cls)
        object.__setattr__(digest, "hex", hex_digest)
        return digest

    @classmethod
    def parse(cls, raw: str) -> ContentHash:
        """Accept `<hex>` or `sha256:<hex>`, any case."""
        text = raw.strip().lower()
        text = text.removeprefix("sha256:")
        return cls(text)

    @property
    def prefixed(self) -> str:
        return f"sha256:{self.hex}"

    @property
    def etag(self) -> str:
        return f'"sha256:{self.hex}"'


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    """One immutable stored version of a key."""

    id: UUID
    tenant_id: TenantId
    namespace: Namespace
    key: ObjectKey
    content_hash: ContentHash
    size_bytes: int
    storage_class: StorageClass
    content_type: str
    created_at: datetime
    state: ObjectState = ObjectState.COMMITTED
    commit_seq: int = 0
    # Written through the S3 gateway (SPEC §8.8): the ETag S3 clients see (an MD5 hex,
    # or `<sha256 hex>-<parts>`), and the `x-amz-meta-*` pairs as a JSON object.
    s3_etag: str | None = None
    user_metadata: str | None = None


@dataclass(frozen=True, slots=True)
class NewUpload:
    """What a client asked to store, before the bytes arrive."""

    id: UUID
    tenant_id: TenantId
    namespace: Namespace
    key: ObjectKey
    storage_class: StorageClass
    content_type: str
    created_at: datetime
    owner: str = ""  # the process streaming it (see application.ports.ProcessLiveness)
    s3_etag: str | None = None  # as ObjectVersion's
    user_metadata: str | None = None
