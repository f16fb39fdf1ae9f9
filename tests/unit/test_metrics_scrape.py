"""/metrics on the main listener: many scrapers at once cost one refresh of the
gauges (one census read) per process, not one each."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from fakes.objects import FakeObjectRepository
from juststorage.api.app import create_app
from juststorage.application.authentication import Authenticator
from juststorage.application.records import Census
from juststorage.bootstrap import Services
from juststorage.config import Settings

pytestmark = pytest.mark.anyio

SCRAPERS = 8


async def test_concurrent_scrapes_share_one_census_read(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    original = FakeObjectRepository.census

    async def slow_census(self: FakeObjectRepository) -> list[Census]:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.3)  # long enough for every scraper to arrive meanwhile
        return await original(self)

    monkeypatch.setattr(FakeObjectRepository, "census", slow_census)
    metadata = FakeMetadataStore(FakeClock())
    authenticator = Authenticator(metadata, jwt=None, bootstrap_keys=[])
    services = Services(Settings(), FakeClock(), metadata, FakeBlobStore(), authenticator)
    app = create_app(services, run_startup=False, run_background=False)
    async with app.router.lifespan_context(app) as state:

        async def served(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)  # as a server hands the lifespan state over
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answers = await asyncio.gather(*(client.get("/metrics") for _ in range(SCRAPERS)))
            assert [a.status_code for a in answers] == [200] * SCRAPERS
            assert reads == 1
            await client.get("/metrics")  # a later scrape reads afresh
            assert reads == 2
