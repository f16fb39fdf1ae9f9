"""What a client is told about one rate limit (the facts behind `X-RateLimit-*`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimitStatus:
    """The state of one limit after a request was admitted or refused.

    `resource` names the limit: `requests` (the tenant's request rate),
    `upload-bytes` (its upload bandwidth) or `concurrent-uploads` (the process cap).
    `reset_seconds` is how long until the bucket is full again (0: it is full).
    """

    resource: str
    limit: int
    remaining: int
    reset_seconds: int
