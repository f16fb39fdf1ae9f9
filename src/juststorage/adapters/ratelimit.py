"""Per-tenant token buckets (requests, upload bytes) and the per-process upload cap."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from juststorage.config import Settings
from juststorage.domain.errors import TooManyRequests


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`. The balance may go negative
    (debt): a large upload is admitted, and the tenant waits it off afterwards."""

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def seconds_until(self, tokens: float) -> float:
        """0 if `tokens` are available now, else how long until they are."""
        self._refill()
        return 0.0 if self._tokens >= tokens else (tokens - self._tokens) / self.rate

    def take(self, tokens: float) -> None:
        self._refill()
        self._tokens -= tokens


class Throttle:
    """Admission control for one process (SPEC §4). Over a limit: TooManyRequests."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._requests: dict[str, TokenBucket] = {}
        self._upload_bytes: dict[str, TokenBucket] = {}
        self.uploads_in_flight = 0

    def admit_request(self, tenant: str) -> None:
        rate = self._settings.limits_for(tenant).rate_limit_rps
        if rate is None:
            return
        bucket = self._requests.get(tenant)
        if bucket is None:
            bucket = self._requests[tenant] = TokenBucket(rate, max(1.0, rate), self._clock)
        wait = bucket.seconds_until(1)
        if wait > 0:
            raise TooManyRequests(f"tenant {tenant!r} is over its request rate", math.ceil(wait))
        bucket.take(1)

    def admit_upload(self, tenant: str) -> None:
        """Reserve an upload slot; pair with `upload_done()`."""
        if self.uploads_in_flight >= self._settings.max_concurrent_uploads:
            raise TooManyRequests("too many uploads in flight on this server", 1)
        bandwidth = self._upload_bucket(tenant)
        if bandwidth is not None:
            wait = bandwidth.seconds_until(0)
            if wait > 0:
                raise TooManyRequests(
                    f"tenant {tenant!r} is over its upload bandwidth", math.ceil(wait)
                )
        self.uploads_in_flight += 1

    def upload_done(self) -> None:
        self.uploads_in_flight -= 1

    def count_upload_bytes(self, tenant: str, size: int) -> None:
        bucket = self._upload_bucket(tenant)
        if bucket is not None:
            bucket.take(size)

    def _upload_bucket(self, tenant: str) -> TokenBucket | None:
        rate = self._settings.limits_for(tenant).upload_bps
        if rate is None:
            return None
        bucket = self._upload_bytes.get(tenant)
        if bucket is None:
            bucket = self._upload_bytes[tenant] = TokenBucket(rate, rate, self._clock)
        return bucket
