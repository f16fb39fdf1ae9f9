"""FakeClock: the `Clock` port, settable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """A settable clock; always timezone-aware UTC."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = datetime(2025, 12, 11, 10, 30, tzinfo=UTC)
        if start is not None:
            self.set(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")
        self._now = moment.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
