"""S3's conditional requests on reads and copy sources: If-Match, If-None-Match,
If-Modified-Since, If-Unmodified-Since, in S3's (RFC 9110's) order."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class Outcome(enum.Enum):
    PROCEED = "proceed"
    NOT_MODIFIED = "not-modified"  # 304 (GET/HEAD)
    FAILED = "failed"  # 412


def etag_listed(header: str, etags: tuple[str, ...]) -> bool:
    """Whether an If-Match / If-None-Match list names one of `etags` (quoted), or `*`."""
    for raw in header.split(","):
        tag = raw.strip().removeprefix("W/")
        if tag == "*":
            return True
        if not tag.startswith('"'):
            tag = f'"{tag}"'  # some clients send the ETag unquoted
        if tag in etags:
            return True
    return False


def _date(header: str | None) -> datetime | None:
    if not header:
        return None
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError, IndexError):
        return None  # an invalid date is ignored, as S3 and RFC 9110 do
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def evaluate(
    if_match: str | None,
    if_none_match: str | None,
    if_modified_since: str | None,
    if_unmodified_since: str | None,
    etags: tuple[str, ...],
    modified: datetime,
) -> Outcome:
    """If-Match (else If-Unmodified-Since) first: 412 when it fails; then
    If-None-Match (else If-Modified-Since): 304 when the client's copy is current.

    `etags` are the quoted ETags that name the object; `modified` its Last-Modified
    (compared in whole seconds, as the header carries it).
    """
    last = modified.astimezone(UTC).replace(microsecond=0)
    if if_match is not None:
        if not etag_listed(if_match, etags):
            return Outcome.FAILED
    else:
        since = _date(if_unmodified_since)
        if since is not None and last > since:
            return Outcome.FAILED
    if if_none_match is not None:
        if etag_listed(if_none_match, etags):
            return Outcome.NOT_MODIFIED
    else:
        since = _date(if_modified_since)
        if since is not None and last <= since:
            return Outcome.NOT_MODIFIED
    return Outcome.PROCEED
