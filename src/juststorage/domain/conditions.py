"""HTTP preconditions and ranges as pure value objects and decisions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from juststorage.domain.errors import BadRequest, PreconditionFailed, RangeNotSatisfiable
from juststorage.domain.model import ContentHash

_RANGE_RE = re.compile(r"bytes=([0-9]*)-([0-9]*)")  # ASCII digits only: \d takes any script's
_MAX_DIGITS = 19  # anything longer cannot be a valid offset of a stored file
_HUGE = 10**_MAX_DIGITS


@dataclass(frozen=True, slots=True)
class WritePrecondition:
    """`If-None-Match: *` (create only) and/or `If-Match: "sha256:<hex>"` (replace only)."""

    create_only: bool = False
    expected: ContentHash | None = None

    @classmethod
    def from_headers(cls, if_none_match: str | None, if_match: str | None) -> WritePrecondition:
        create_only = False
        if if_none_match is not None:
            if if_none_match.strip() != "*":
                raise BadRequest("If-None-Match on upload accepts only '*'")
            create_only = True
        expected = None
        if if_match is not None:
            tag = if_match.strip()
            if tag.startswith("W/"):
                raise BadRequest("If-Match needs a strong ETag")
            if not (len(tag) >= 2 and tag[0] == tag[-1] == '"'):
                raise BadRequest('If-Match must be a quoted ETag: "sha256:<hex>"')
            try:
                expected = ContentHash.parse(tag[1:-1])
            except BadRequest:
                raise BadRequest('If-Match must be a quoted ETag: "sha256:<hex>"') from None
        if create_only and expected is not None:
            raise BadRequest("If-None-Match: * and If-Match cannot be combined")
        return cls(create_only, expected)

    @property
    def is_conditional(self) -> bool:
        """True when the write depends on the key's current version (a check is due)."""
        return self.create_only or self.expected is not None

    def check(self, current: ContentHash | None) -> None:
        """Raise PreconditionFailed unless the key's current version allows the write."""
        if self.create_only and current is not None:
            raise PreconditionFailed("the key already has a committed version")
        if self.expected is not None and current != self.expected:
            raise PreconditionFailed("the key's current version does not match If-Match")


def etag_matches(if_none_match: str | None, current: ContentHash) -> bool:
    """True when an `If-None-Match` header names the current ETag (so: 304)."""
    if if_none_match is None:
        return False
    for raw in if_none_match.split(","):
        tag = raw.strip().removeprefix("W/")
        if tag == "*" or tag == current.etag:
            return True
    return False


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive byte range `first`..`last` of an object of known size."""

    first: int
    last: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self, size_bytes: int) -> str:
        return f"bytes {self.first}-{self.last}/{size_bytes}"


def parse_range(header: str | None, size_bytes: int) -> ByteRange | None:
    """Parse a single-range `Range` header against an object's size.

    Returns None when there is no header, or when it is not a byte range this
    server understands (RFC 9110 lets a server ignore such a header and send 200).

    Raises:
        RangeNotSatisfiable: a well-formed range that does not overlap the object,
            or more than one range.
    """
    if header is None:
        return None
    text = header.strip()
    if not text.startswith("bytes="):
        return None
    if "," in text:
        raise RangeNotSatisfiable("only one range per request is supported", size_bytes)
    match = _RANGE_RE.fullmatch(text.replace(" ", ""))
    if match is None:
        return None
    start_text, end_text = match.groups()
    if not start_text and not end_text:
        return None
    if not start_text:  # suffix range: the last N bytes (all of them if N is larger)
        suffix = _offset(end_text)
        if suffix == 0 or size_bytes == 0:
            raise RangeNotSatisfiable("empty suffix range", size_bytes)
        return ByteRange(max(0, size_bytes - suffix), size_bytes - 1)
    first = _offset(start_text)
    # A last-pos past the end means "to the end" (RFC 9110 §14.1.2), however large.
    last = _offset(end_text) if end_text else size_bytes - 1
    if end_text and last < first:
        return None  # syntactically invalid: ignored, full content is sent
    if first >= size_bytes:
        raise RangeNotSatisfiable(f"range starts past the end ({size_bytes} bytes)", size_bytes)
    return ByteRange(first, min(last, size_bytes - 1))


def _offset(digits: str) -> int:
    """The number, or a stand-in larger than any file for one too long to parse cheaply."""
    significant = digits.lstrip("0")
    return _HUGE if len(significant) > _MAX_DIGITS else int(significant or "0")
