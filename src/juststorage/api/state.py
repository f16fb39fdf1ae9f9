"""What the API keeps between requests in one process: the app's lifespan state,
not the composition root's `Services` (which the CLI and the workers share)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TypedDict

from starlette.requests import Request

from juststorage.application.ratelimit import Throttle
from juststorage.config import Settings


@dataclass
class ApiState:
    """The process's admission control, and the /ready checks still running."""

    throttle: Throttle
    # /ready's checks still running, by dependency (api/operations.py): a hung
    # dependency costs one check in flight, not one per call.
    running_checks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # The refresh of /metrics' gauges under way (api/operations.py): scrapes that
    # arrive meanwhile share it, so many scrapers cost one refresh at a time.
    scrape_refresh: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiState:
        """Fresh state: full token buckets, no upload in flight, no check running."""
        return cls(Throttle(settings.limits_for, settings.max_concurrent_uploads))


class LifespanState(TypedDict):
    """What the app's lifespan yields; the server copies it into every request."""

    api: ApiState


def api_state(request: Request) -> ApiState:
    """The state of the app serving `request`.

    Raises:
        RuntimeError: the server did not run the app's ASGI lifespan, which makes
            this state (granian and uvicorn run it unless told not to).
    """
    state: ApiState | None = getattr(request.state, "api", None)
    if state is None:
        raise RuntimeError("the app needs the ASGI lifespan (its state holds the rate limiter)")
    return state
