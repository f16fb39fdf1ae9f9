"""The one request layer (api.middleware.RequestLayer): an unexpected error is a JSON
500 with the request id, counted and logged like any answer; each request is timed
to the start of its answer and to its end."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.responses import StreamingResponse

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.api import operations
from juststorage.api.app import create_app
from juststorage.application.authentication import Authenticator
from juststorage.bootstrap import Services
from juststorage.config import Settings

pytestmark = pytest.mark.anyio


def _services() -> Services:
    metadata = FakeMetadataStore(FakeClock())
    authenticator = Authenticator(metadata, jwt=None, bootstrap_keys=[])
    return Services(Settings(), FakeClock(), metadata, FakeBlobStore(), authenticator)


async def test_an_unexpected_error_is_a_json_500_with_the_request_id(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: Any) -> Any:
        raise RuntimeError("a bug that names a secret: sk-12345")

    monkeypatch.setattr(operations, "health", broken)
    services = _services()
    observed: list[tuple[str, int, str]] = []
    monkeypatch.setattr(
        services.metrics,
        "observe_request",
        lambda method, status, namespace, seconds, first_byte: observed.append(
            (method, status, namespace)
        ),
    )
    app = create_app(services, run_startup=False, run_background=False)
    caplog.set_level(logging.INFO)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/health", headers={"X-Request-Id": "req-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.json()["error"] == {
        "code": "Internal",
        "message": "internal error",
        "request_id": "req-500",
    }
    assert response.headers["x-request-id"] == "req-500"
    assert "sk-12345" not in response.text
    assert observed == [("GET", 500, "")]
    access = [r for r in caplog.records if r.name == "juststorage.access"]
    assert [r.getMessage() for r in access] == ["GET /health 500"]
    logged = [r for r in caplog.records if r.name == "juststorage.api"]
    assert logged and logged[0].exc_info is not None  # the traceback goes to the log only


SLOW_BODY_S = 0.4


async def test_time_to_first_byte_ends_when_the_answer_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A body that takes its time to send (a large download) makes the request long,
    not its time to first byte: that ends at `http.response.start`."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(SLOW_BODY_S)
        yield b"last"

    async def slow_download(request: Any) -> Any:
        return StreamingResponse(chunks())

    monkeypatch.setattr(operations, "health", slow_download)
    services = _services()
    observed: list[tuple[str, int, float, float | None]] = []
    monkeypatch.setattr(
        services.metrics,
        "observe_request",
        lambda method, status, namespace, seconds, first_byte: observed.append(
            (method, status, seconds, first_byte)
        ),
    )
    app = create_app(services, run_startup=False, run_background=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/health")
    assert response.content == b"firstlast"
    ((method, status, seconds, first_byte),) = observed
    assert (method, status) == ("GET", 200)
    assert seconds >= SLOW_BODY_S
    assert first_byte is not None and first_byte < SLOW_BODY_S / 4
