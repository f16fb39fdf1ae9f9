"""One text form of a timestamp: UTC, RFC 3339, `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from juststorage.domain.timestamps import parse_utc_text, utc_text

MOMENT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))


def test_the_spec_form_has_whole_seconds_in_utc() -> None:
    assert utc_text(MOMENT) == "2026-01-02T01:04:05Z"


def test_fractions_have_a_fixed_number_of_digits() -> None:
    assert utc_text(MOMENT, fraction_digits=3) == "2026-01-02T01:04:05.678Z"
    assert utc_text(MOMENT, fraction_digits=6) == "2026-01-02T01:04:05.678901Z"
    whole = datetime(2026, 1, 2, tzinfo=UTC)
    assert utc_text(whole, fraction_digits=6) == "2026-01-02T00:00:00.000000Z"


def test_parsing_gives_back_the_moment() -> None:
    assert parse_utc_text(utc_text(MOMENT, fraction_digits=6)) == MOMENT
