"""Per-tenant token buckets (requests, upload bytes) and the per-process upload cap."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from juststorage.config import Settings
from juststorage.domain.errors import TooManyRequests


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """What the `X-RateLimit-*` headers tell a client about one limit.

    `resource` names the limit: `requests` (the tenant's request rate),
    `upload-bytes` (its upload bandwidth) or `concurrent-uploads` (the process cap).
    `reset_seconds` is how long until the bucket is full again (0: it is full).
    """

    resource: str
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
            "X-RateLimit-Resource": self.resource,
        }


class Throttled(TooManyRequests):
    """A 429 that says which limit refused the request."""

    def __init__(self, message: str, retry_after_seconds: int, status: RateLimitStatus) -> None:
        super().__init__(message, retry_after_seconds)
        self.status = status


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

    def status(self, resource: str) -> RateLimitStatus:
        """The bucket as `X-RateLimit-*` headers describe it (after a refill)."""
        self._refill()
        return RateLimitStatus(
            resource=resource,
            limit=math.floor(self.burst),
            remaining=max(0, math.floor(self._tokens)),
            reset_seconds=math.ceil((self.burst - self._tokens) / self.rate),
        )


class Throttle:
    """Admission control for one process (SPEC §4). Over a limit: TooManyRequests."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._requests: dict[str, TokenBucket] = {}
        self._upload_bytes: dict[str, TokenBucket] = {}
        self.uploads_in_flight = 0

    def admit_request(self, tenant: str) -> RateLimitStatus | None:
        """Take one request token; the bucket's state after it, or None when unlimited.

        Raises:
            Throttled: the tenant is over its request rate.
        """
        rate = self._settings.limits_for(tenant).rate_limit_rps
        if rate is None:
            return None
        bucket = self._requests.get(tenant)
        if bucket is None:
            bucket = self._requests[tenant] = TokenBucket(rate, max(1.0, rate), self._clock)
        wait = bucket.seconds_until(1)
        if wait > 0:
            raise Throttled(
                f"tenant {tenant!r} is over its request rate",
                math.ceil(wait),
                bucket.status("requests"),
            )
        bucket.take(1)
        return bucket.status("requests")

    def admit_upload(self, tenant: str) -> None:
        """Reserve an upload slot; pair with `upload_done()`.

        Raises:
            Throttled: the process has no free upload slot, or the tenant is in
                upload-bandwidth debt.
        """
        cap = self._settings.max_concurrent_uploads
        if self.uploads_in_flight >= cap:
            raise Throttled(
                "too many uploads in flight on this server",
                1,
                RateLimitStatus("concurrent-uploads", cap, 0, 1),
            )
        bandwidth = self._upload_bucket(tenant)
        if bandwidth is not None:
            wait = bandwidth.seconds_until(0)
            if wait > 0:
                raise Throttled(
                    f"tenant {tenant!r} is over its upload bandwidth",
                    math.ceil(wait),
                    bandwidth.status("upload-bytes"),
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
