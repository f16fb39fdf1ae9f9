"""What a client is told about one rate limit (the facts behind `X-RateLimit-*`), and
the arithmetic of a token bucket kept in memory."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The state of one limit after a request was admitted or refused.

    `resource` names the limit: `requests` (the tenant's request rate),
    `upload-bytes` (its upload bandwidth), `concurrent-uploads` (the process cap),
    `tenant-concurrent-uploads` (the tenant's share of it) or
    `failed-authentications` (the client address's failed logins).
    `reset_seconds` is how long until the bucket is full again (0: it is full).
    """

    resource: str
    limit: int
    remaining: int
    reset_seconds: int


@dataclass(frozen=True, slots=True)
class BucketAsk:
    """What one take asks of a token bucket of `rate` tokens a second, at most `burst`.

    Granted when the refilled balance is at least `minimum`: `amount` tokens, or with
    `partial` as many of them as the balance holds. The balance may go below zero
    (debt) when `amount` is more than it holds; a negative `amount` gives tokens back
    (never above `burst`).
    """

    rate: float
    burst: float
    amount: float
    minimum: float
    partial: bool = False


@dataclass(frozen=True, slots=True)
class BucketTake:
    """The bucket's balance after a take, and what the take granted (None: refused)."""

    tokens: float
    granted: float | None


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """The shape of a token bucket: `rate` tokens a second, at most `burst`."""

    rate: float
    burst: float

    def refilled(self, tokens: float, elapsed: float) -> float:
        """The balance `elapsed` seconds after the bucket held `tokens`."""
        return min(self.burst, tokens + elapsed * self.rate)

    def status(self, resource: str, tokens: float) -> RateLimitStatus:
        """What a client is told of the bucket holding `tokens` (below 0: in debt)."""
        return RateLimitStatus(
            resource=resource,
            limit=math.floor(self.burst),
            remaining=max(0, math.floor(tokens)),
            reset_seconds=max(0, math.ceil((self.burst - tokens) / self.rate)),
        )
