"""The console's files: served from the package by name, on or off by a setting."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.api.app import create_app
from juststorage.api.console_page import console_files
from juststorage.application.authentication import Authenticator
from juststorage.bootstrap import Services
from juststorage.config import Settings

pytestmark = pytest.mark.anyio


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    metadata = FakeMetadataStore(FakeClock())
    authenticator = Authenticator(metadata, jwt=None, bootstrap_keys=[])
    services = Services(settings, FakeClock(), metadata, FakeBlobStore(), authenticator)
    app = create_app(services, run_startup=False, run_background=False)
    async with app.router.lifespan_context(app) as state:

        async def served(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=served, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.fixture
async def on() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(Settings()):
        yield client


@pytest.fixture
async def off() -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(Settings(console=False)):
        yield client


def test_the_package_ships_every_file_the_page_loads() -> None:
    files = console_files()
    assert {"index.html", "app.js", "api.js", "upload.js", "chart.js", "console.css"} <= set(files)
    page = files["index.html"][0].decode()
    for name in ("console.css", "app.js"):
        assert f'"{name}"' in page
    for name, (body, _) in files.items():
        if name.endswith(".js"):
            text = body.decode()
            assert "innerHTML" not in text and "eval(" not in text, name
            assert "localStorage" not in text, name  # the credential stays in sessionStorage


async def test_root_redirects_and_files_carry_the_policy(on: httpx.AsyncClient) -> None:
    for path in ("/", "/console"):
        response = await on.get(path)
        assert response.status_code == 307 and response.headers["location"] == "/console/"
    page = await on.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    script = await on.get("/console/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    cached = await on.get("/console/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert cached.status_code == 304
    for response in (page, script, cached):
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    for path in ("/console/nothing.js", "/console/index.htm", "/console/..%2fconfig.py"):
        missing = await on.get(path)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "NotFound"


async def test_the_setting_turns_the_console_off(off: httpx.AsyncClient) -> None:
    for path in ("/", "/console", "/console/", "/console/app.js"):
        response = await off.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "NotFound"
    assert (await off.get("/health")).status_code == 200
