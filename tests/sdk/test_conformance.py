"""`sdks/conformance/scenario.json` against real servers, with `Client` and `AsyncClient`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import juststorage_client as js
import pytest

from juststorage.testing import Server, start
from sdk.conformance import Content, Driver, api_keys, check, execute, load, substitute
from sdk.proxy import CuttingProxy

pytestmark = pytest.mark.e2e

SCENARIO = load()
FLAVOURS = ["sync", "async"]


@pytest.fixture(scope="module")
def tokens_and_keys() -> tuple[str, dict[str, str]]:
    return api_keys(SCENARIO["credentials"])


@pytest.fixture(scope="module")
def contents() -> dict[str, Content]:
    return {name: Content.from_spec(name, spec) for name, spec in SCENARIO["contents"].items()}


@pytest.fixture(scope="module")
def server_for(
    tmp_path_factory: pytest.TempPathFactory, tokens_and_keys: tuple[str, dict[str, str]]
) -> Iterator[Callable[[str, str], Server]]:
    """One server per (scenario server name, flavour), so the flavours never share state."""
    servers: dict[tuple[str, str], Server] = {}
    root = tmp_path_factory.mktemp("sdk")
    keys, _ = tokens_and_keys

    def get(name: str, flavour: str) -> Server:
        if (name, flavour) not in servers:
            env = {"API_KEYS": keys, **SCENARIO["servers"][name]["env"]}
            servers[(name, flavour)] = start(root, env)
        return servers[(name, flavour)]

    yield get
    for server in servers.values():
        server.stop()


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("scenario", SCENARIO["scenarios"], ids=lambda s: s["name"])
def test_scenario(
    scenario: dict[str, Any],
    flavour: str,
    server_for: Callable[[str, str], Server],
    tokens_and_keys: tuple[str, dict[str, str]],
    contents: dict[str, Content],
    tmp_path: Path,
) -> None:
    server = server_for(scenario["server"], flavour)
    _, tokens = tokens_and_keys
    saved: dict[str, dict[str, Any]] = {}
    driver = Driver(flavour, tmp_path)
    try:
        for raw_step in scenario["steps"]:
            step = substitute(raw_step, saved)
            client_spec = step.get("client", scenario["client"])
            credential = client_spec.get("credential")
            token = tokens[credential] if credential else None
            if "via" in step:
                with CuttingProxy(server.port, step["via"]["cut_after_bytes"]) as proxy:
                    outcome = execute(driver, proxy.url, token, client_spec, step, contents)
                assert proxy.cuts == 1, "the proxy never cut the connection"
                if step["call"] == "download":
                    resumed = [r for r in proxy.requests[1:] if "\r\nrange: bytes=" in r.lower()]
                    assert resumed, proxy.requests
            else:
                outcome = execute(driver, server.url, token, client_spec, step, contents)
            check(step, outcome, contents, saved)
    finally:
        driver.close()


def _mock(case: dict[str, Any]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = dict(case.get("headers", {}))
        if "body" in case:
            headers["Content-Type"] = "application/json"
            return httpx.Response(case["status"], headers=headers, content=json.dumps(case["body"]))
        return httpx.Response(case["status"], headers=headers, content=case["text"].encode())

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "case", SCENARIO["error_mapping"], ids=lambda c: f"{c['status']}-{c['expect']['code']}"
)
def test_error_mapping(case: dict[str, Any]) -> None:
    want = case["expect"]
    with (
        js.Client("http://127.0.0.1:9", "t", retry=js.NO_RETRIES, transport=_mock(case)) as client,
        pytest.raises(js.ApiError) as raised,
    ):
        client.usage(tenant="acme")
    error = raised.value
    assert type(error).__name__ == want.get("class", want["code"])
    assert (error.code, error.status, error.request_id) == (
        want["code"],
        want["status"],
        want["request_id"],
    )
    if "message" in want:
        assert error.message == want["message"]
    if "retry_after" in want:
        assert error.retry_after == want["retry_after"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "case", SCENARIO["error_mapping"], ids=lambda c: f"{c['status']}-{c['expect']['code']}"
)
async def test_error_mapping_async(case: dict[str, Any]) -> None:
    want = case["expect"]
    transport = httpx.MockTransport(_mock(case).handler)  # the same handler, async side
    async with js.AsyncClient(
        "http://127.0.0.1:9", "t", retry=js.NO_RETRIES, transport=transport
    ) as client:
        with pytest.raises(js.ApiError) as raised:
            await client.usage(tenant="acme")
    assert (raised.value.code, raised.value.status) == (want["code"], want["status"])
    assert type(raised.value).__name__ == want.get("class", want["code"])
