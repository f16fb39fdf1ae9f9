"""What the API keeps between requests in one process: the app's lifespan state,
not the composition root's `Services` (which the CLI and the workers share)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TypedDict

from starlette.requests import Request

from juststorage.application.auth_throttle import FailedAuthentications
from juststorage.application.ports import MetadataStore
from juststorage.application.ratelimit import SharedBuckets, Throttle
from juststorage.config import Settings


@dataclass
class ApiState:
    """The process's admission control, and the /ready checks still running."""

    throttle: Throttle
    failed_authentications: FailedAuthentications
    # /ready's checks still running, by dependency (api/operations.py): a hung
    # dependency costs one check in flight, not one per call.
    running_checks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    # The refresh of /metrics' gauges under way (api/operations.py): scrapes that
    # arrive meanwhile share it, so many scrapers cost one refresh at a time.
    scrape_refresh: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, metadata: MetadataStore) -> ApiState:
        """Fresh state: no lease of shared tokens, no upload in flight, no check running."""
        throttle = Throttle(
            settings.limits_for,
            SharedBuckets(metadata),
            max_concurrent_uploads=settings.max_concurrent_uploads,
            max_uploads_per_tenant=settings.uploads_per_tenant,
        )
        return cls(throttle, FailedAuthentications(settings.auth_failures_per_minute))


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
