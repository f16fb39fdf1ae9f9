"""The route table (api.routing) chooses what Starlette's scan of the routes chooses,
and leaves 404, 405 and everything it does not know to that scan, whose answers
are the SPEC's JSON errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Receive, Scope, Send

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.api.app import StorageApp, create_app
from juststorage.api.routing import RouteTable
from juststorage.application.authentication import Authenticator
from juststorage.bootstrap import Services
from juststorage.config import Settings

pytestmark = pytest.mark.anyio

OBJECT_ID = str(uuid.UUID(int=7))
PATHS = [
    "/",
    "/health",
    "/health/",
    "/ready",
    "/openapi.json",
    "/docs",
    "/docs/",
    "/assets",
    "/assets/",
    "/assets/api.css",
    "/metrics",
    "/v1",
    "/v1/objects",
    "/v1/objects/",
    "/v1/usage",
    f"/v1/objects/{OBJECT_ID}",
    f"/v1/objects/{OBJECT_ID}/",
    f"/v1/objects/{OBJECT_ID}/more",
    "/v1/objects/by-key",
    "/v1/objects/by-key/",
    "/v1/objects/by-key/docs/acme/a/b.txt",
    "/v1/objects/by-key/docs/acme/{x}",
    "/v1/objects/by-key/docs/acme/line\nbreak",
    "/health\n",
    "/v1/objects/%2F",
    "/nothing",
]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def _services() -> Services:
    metadata = FakeMetadataStore(FakeClock())
    authenticator = Authenticator(metadata, jwt=None, bootstrap_keys=[])
    return Services(Settings(), FakeClock(), metadata, FakeBlobStore(), authenticator)


def _app() -> StorageApp:
    app = create_app(_services(), run_startup=False, run_background=False)
    assert isinstance(app, StorageApp)
    return app


def _scan(routes: list[BaseRoute], method: str, path: str) -> tuple[BaseRoute, Scope] | None:
    """Starlette's choice: the first full match (`Router.app`)."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route, child
    return None


def _sample_paths(route: Route) -> list[str]:
    values = {
        "object_id": OBJECT_ID,
        "rest": "docs/acme/a/b.txt",
        "upload_id": OBJECT_ID,
        "n": "7",
        "name": "app.js",
    }
    return [route.path_format.format(**{k: values[k] for k in route.param_convertors})]


def test_every_route_resolves_to_the_endpoint_starlette_chooses() -> None:
    app = _app()
    table = RouteTable(app.router)
    routes = [r for r in app.routes if isinstance(r, Route)]
    assert len(routes) >= 10
    looked_up = 0
    for route in routes:
        for method in route.methods or ():
            for path in _sample_paths(route):
                found = table.lookup(method, path)
                assert found is not None, (method, path)
                entry, params = found
                chosen = _scan(app.routes, method, path)
                assert chosen is not None
                assert entry.route is chosen[0] is route, (method, path)
                assert params == chosen[1]["path_params"]
                looked_up += 1
    assert looked_up >= 16


def test_the_table_answers_only_what_the_scan_would_answer_the_same() -> None:
    app = _app()
    table = RouteTable(app.router)
    answered = 0
    for method in METHODS:
        for path in PATHS:
            found = table.lookup(method, path)
            if found is None:
                continue  # Starlette's scan decides
            answered += 1
            chosen = _scan(app.routes, method, path)
            assert chosen is not None, (method, path)
            assert found[0].route is chosen[0], (method, path)
            assert found[1] == chosen[1]["path_params"], (method, path)
    assert answered >= 20


def test_a_route_shadowed_by_an_earlier_one_is_left_to_the_scan() -> None:
    async def first(request: Any) -> Any: ...
    async def second(request: Any) -> Any: ...

    class Routes:
        routes: list[BaseRoute] = [
            Route("/things/{name}", first, methods=["GET"]),
            Route("/things/special", second, methods=["GET", "DELETE"]),
        ]

    table = RouteTable(Routes())  # type: ignore[arg-type]
    found = table.lookup("GET", "/things/special")
    assert found is not None and found[0].route is Routes.routes[0]
    assert found[1] == {"name": "special"}
    found = table.lookup("DELETE", "/things/special")
    assert found is not None and found[0].route is Routes.routes[1]


def test_a_path_under_an_earlier_mount_is_left_to_the_scan() -> None:
    async def endpoint(request: Any) -> Any: ...

    class Routes:
        routes: list[BaseRoute] = [
            Route("/v1/usage", endpoint, methods=["GET"]),
            Mount("/files", routes=[]),
            Route("/files/{name}", endpoint, methods=["GET"]),
            Route("/other/{name}", endpoint, methods=["GET"]),
        ]

    table = RouteTable(Routes())  # type: ignore[arg-type]
    assert table.lookup("GET", "/files/a") is None  # the mount comes first
    found = table.lookup("GET", "/other/a")
    assert found is not None and found[0].route is Routes.routes[3]
    found = table.lookup("GET", "/v1/usage")
    assert found is not None and found[0].route is Routes.routes[0]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = _app()
    async with app.router.lifespan_context(app) as state:

        async def served(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})  # as a server hands the lifespan state over
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=served, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def _assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", ["/nothing", "/v1/objects/a/b", "/v1", "/assets/nothing.css"])
async def test_an_unknown_path_is_a_json_404(client: httpx.AsyncClient, path: str) -> None:
    _assert_error(await client.get(path), 404, "NotFound")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"/v1/objects/{OBJECT_ID}"),
        ("POST", f"/v1/objects/{OBJECT_ID}"),
        ("PUT", "/v1/objects"),
        ("DELETE", "/health"),
        ("POST", "/v1/objects/by-key/docs/acme/k"),
        ("PATCH", "/v1/usage"),
    ],
)
async def test_a_wrong_method_is_a_json_405_with_allow(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    app = _app()
    partial = next(
        r
        for r in app.routes
        if r.matches({"type": "http", "method": method, "path": path})[0] is Match.PARTIAL
    )
    assert isinstance(partial, Route) and partial.methods
    response = await client.request(method, path)
    _assert_error(response, 405, "MethodNotAllowed")
    assert set(response.headers["allow"].split(", ")) == partial.methods
    assert response.headers["allow"] == ", ".join(partial.methods)  # Starlette's own text


async def test_a_trailing_slash_is_still_starlettes_redirect(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/")
    assert response.status_code == 307
    assert response.headers["location"] == "http://test/health"
    assert response.headers["x-request-id"]
