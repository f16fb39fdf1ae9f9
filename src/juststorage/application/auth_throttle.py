"""Failed authentications per client address (a brute-force brake): after
`per_minute` failures from one address, every request from it is refused with 429
until its bucket refills, whatever credential it sends; other addresses are not
affected. Per process: with N workers an address gets up to N times as many tries.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from juststorage.domain.errors import TooManyRequests
from juststorage.domain.limits import RateLimitStatus

MAX_TRACKED_ADDRESSES = 10_000  # memory bound under a flood from many addresses


class FailedAuthentications:
    """A token bucket of `per_minute` failures (refilling at that rate) per address;
    `per_minute` 0 turns it off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._burst = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, stamp)

    def _tokens(self, address: str, now: float) -> float:
        tokens, stamp = self._buckets.get(address, (self._burst, now))
        return min(self._burst, tokens + (now - stamp) * self._rate)

    def check(self, address: str) -> None:
        """Raises TooManyRequests when `address` used up its failures."""
        if not self._burst or address not in self._buckets:
            return
        tokens = self._tokens(address, self._clock())
        if tokens < 1:
            raise TooManyRequests(
                "too many failed authentications from this address",
                math.ceil((1 - tokens) / self._rate),
                RateLimitStatus(
                    "failed-authentications",
                    int(self._burst),
                    0,
                    math.ceil((self._burst - tokens) / self._rate),
                ),
            )

    def failed(self, address: str) -> None:
        """Count one failed authentication from `address`."""
        if not self._burst:
            return
        now = self._clock()
        tokens = self._tokens(address, now) - 1
        if address not in self._buckets and len(self._buckets) >= MAX_TRACKED_ADDRESSES:
            self._forget_refilled(now)
        self._buckets[address] = (tokens, now)

    def _forget_refilled(self, now: float) -> None:
        """Drop the addresses whose bucket is full again (they hold no failure)."""
        for address in [a for a in self._buckets if self._tokens(a, now) >= self._burst]:
            del self._buckets[address]
        if len(self._buckets) >= MAX_TRACKED_ADDRESSES:
            # Still full: the oldest entry goes (insertion order); a flood of many
            # addresses then limits each a little less, never anyone else more.
            del self._buckets[next(iter(self._buckets))]
