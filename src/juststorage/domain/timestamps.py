"""Timestamps as text: UTC in RFC 3339 with a `Z`, one format for every place that
writes one (the SPEC's JSON, SQLite's columns, the log lines)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

_TIMESPEC = {0: "seconds", 3: "milliseconds", 6: "microseconds"}


def utc_text(moment: datetime, *, fraction_digits: Literal[0, 3, 6] = 0) -> str:
    """`2026-01-02T03:04:05Z` (the SPEC's form), or with 3 or 6 digits of a second.

    With a fixed number of digits, texts sort as their moments do.
    """
    text = moment.astimezone(UTC).isoformat(timespec=_TIMESPEC[fraction_digits])
    return text.removesuffix("+00:00") + "Z"


def parse_utc_text(text: str) -> datetime:
    """The aware datetime of a text `utc_text` wrote."""
    return datetime.fromisoformat(text)
