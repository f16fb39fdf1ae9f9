"""When and how long to wait before trying a request again."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryEvent:
    """Passed to `on_retry` before each wait: what failed and how long we wait."""

    method: str
    url: str
    attempt: int  # the attempt that failed, from 1
    delay: float  # seconds we wait before the next one
    status: int | None  # the answer's status, None for a connection failure
    error: str


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries (`max_attempts` counts the first try).

    429 and 503 wait `Retry-After` when the server sends one (never longer than
    `max_retry_after`; a longer demand is not retried), else exponential backoff
    with full jitter between `backoff_initial` and `backoff_max`. A download
    resumes at most `max_resumes` times after its connection broke mid-body.
    """

    max_attempts: int = 4
    backoff_initial: float = 0.2
    backoff_max: float = 10.0
    max_retry_after: float = 60.0
    max_resumes: int = 5
    on_retry: Callable[[RetryEvent], None] | None = field(default=None, compare=False)

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def delay_for(self, response: httpx.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying `response`, or None when it is final."""
        if response.status_code not in RETRY_STATUSES or attempt >= self.max_attempts:
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.max_retry_after:
            return None
        return retry_after


NO_RETRIES = RetryPolicy(max_attempts=1, max_resumes=0)


def parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        return None  # an HTTP-date: fall back to backoff
