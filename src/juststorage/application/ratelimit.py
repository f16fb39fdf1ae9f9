"""Admission control: per-tenant token buckets (requests, upload bytes) and the
per-process upload cap. Pure: the API keeps one `Throttle` per process."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from juststorage.domain.errors import TooManyRequests
from juststorage.domain.limits import RateLimitStatus


class TenantRates(Protocol):
    """A tenant's rates (`config.TenantLimits` has them); None: unlimited."""

    @property
    def rate_limit_rps(self) -> float | None: ...

    @property
    def upload_bps(self) -> int | None: ...


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

    def require(self, tokens: float, resource: str, refusal: str) -> None:
        """Raises TooManyRequests (`refusal`, this bucket's status as `resource`) unless
        `tokens` are available now."""
        wait = self.seconds_until(tokens)
        if wait > 0:
            raise TooManyRequests(refusal, math.ceil(wait), self.status(resource))

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
    """Admission control for one process (SPEC §4). Over a limit: TooManyRequests,
    whose `limit` says which limit refused.

    `rates_of(tenant)` gives a tenant's rates; `max_concurrent_uploads` caps this
    process's uploads in flight.
    """

    def __init__(
        self,
        rates_of: Callable[[str], TenantRates],
        max_concurrent_uploads: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rates_of = rates_of
        self._max_concurrent_uploads = max_concurrent_uploads
        self._clock = clock
        self._requests: dict[str, TokenBucket] = {}
        self._upload_bytes: dict[str, TokenBucket] = {}
        self.uploads_in_flight = 0

    def admit_request(self, tenant: str) -> RateLimitStatus | None:
        """Take one request token; the bucket's state after it, or None when unlimited.

        Raises:
            TooManyRequests: the tenant is over its request rate.
        """
        rate = self._rates_of(tenant).rate_limit_rps
        if rate is None:
            return None
        bucket = self._requests.get(tenant)
        if bucket is None:
            bucket = self._requests[tenant] = TokenBucket(rate, max(1.0, rate), self._clock)
        bucket.require(1, "requests", f"tenant {tenant!r} is over its request rate")
        bucket.take(1)
        return bucket.status("requests")

    def admit_upload(self, tenant: str) -> None:
        """Reserve an upload slot; pair with `upload_done()`.

        Raises:
            TooManyRequests: the process has no free upload slot, or the tenant is in
                upload-bandwidth debt.
        """
        cap = self._max_concurrent_uploads
        if self.uploads_in_flight >= cap:
            raise TooManyRequests(
                "too many uploads in flight on this server",
                1,
                RateLimitStatus("concurrent-uploads", cap, 0, 1),
            )
        bandwidth = self._upload_bucket(tenant)
        if bandwidth is not None:
            # Zero tokens: admitted unless in debt (an upload's size is not known yet).
            bandwidth.require(0, "upload-bytes", f"tenant {tenant!r} is over its upload bandwidth")
        self.uploads_in_flight += 1

    def upload_done(self) -> None:
        self.uploads_in_flight -= 1

    def count_upload_bytes(self, tenant: str, size: int) -> None:
        bucket = self._upload_bucket(tenant)
        if bucket is not None:
            bucket.take(size)

    def _upload_bucket(self, tenant: str) -> TokenBucket | None:
        rate = self._rates_of(tenant).upload_bps
        if rate is None:
            return None
        bucket = self._upload_bytes.get(tenant)
        if bucket is None:
            bucket = self._upload_bytes[tenant] = TokenBucket(rate, rate, self._clock)
        return bucket
