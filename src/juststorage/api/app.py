"""create_app(services): routes, the error table, the request layer and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from juststorage.api import credentials, namespaces, objects, operations, presign, uploads
from juststorage.api.console_page import console_file, console_index, to_console
from juststorage.api.cors import CorsPolicy, cors_policy
from juststorage.api.errors import EXCEPTION_HANDLERS
from juststorage.api.metrics_listener import metrics_listener
from juststorage.api.middleware import RequestLayer, RequestObserver
from juststorage.api.openapi import openapi_json
from juststorage.api.openapi_page import ASSETS_PATH, api_page, assets
from juststorage.api.routing import RouteTable
from juststorage.api.state import ApiState, LifespanState, api_state
from juststorage.bootstrap import Services, start
from juststorage.domain.auth import Principal
from juststorage.domain.errors import Forbidden, Unauthorized
from juststorage.worker.gc import run_gc_loop
from juststorage.worker.scrub import run_scrub_loop

log = logging.getLogger("juststorage")

Handler = Callable[[Request, Principal], Awaitable[Any]]


def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Any]]:
    """Every /v1 route goes through here: no credential, no call."""

    async def endpoint(request: Request) -> Any:
        services: Services = request.app.state.services
        # A client address that failed too often is refused before its credential is
        # looked at: a brute force learns nothing more until the bucket refills.
        failures = api_state(request).failed_authentications
        address = request.client.host if request.client else ""
        failures.check(address)
        try:
            principal = await services.authenticator.authenticate(
                request.headers.get("authorization")
            )
        except Unauthorized:
            failures.failed(address)
            raise
        request.scope["state"]["principal"] = principal.subject  # for the request log
        return await handler(request, principal)

    endpoint.__name__ = handler.__name__
    return endpoint


def authenticated_or_presigned(handler: Handler) -> Callable[[Request], Awaitable[Any]]:
    """A route a presigned URL may call (SPEC §8.5): a request with a signature in its
    query is checked as one (its `Authorization`, if any, is not looked at)."""
    with_credential = authenticated(handler)

    async def endpoint(request: Request) -> Any:
        if not presign.is_presigned(request):
            return await with_credential(request)
        failures = api_state(request).failed_authentications
        address = request.client.host if request.client else ""
        failures.check(address)
        try:
            principal = await presign.presigned_principal(request)
        except Forbidden:
            failures.failed(address)
            raise
        request.scope["state"]["principal"] = principal.subject  # for the request log
        return await handler(request, principal)

    endpoint.__name__ = handler.__name__
    return endpoint


class _AnyPath(Convertor[str]):
    """`path` that also takes line breaks: an upload's key with `%0A` must reach the
    handler, whose parsing refuses control characters (400), not miss the route."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", _AnyPath())


def _console_routes() -> list[BaseRoute]:
    return [
        Route("/", to_console, methods=["GET", "HEAD"]),
        Route("/console", to_console, methods=["GET", "HEAD"]),
        Route("/console/", console_index, methods=["GET", "HEAD"]),
        Route("/console/{name}", console_file, methods=["GET", "HEAD"]),
    ]


def _routes(serve_metrics: bool, serve_console: bool) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        Route("/health", operations.health, methods=["GET"]),
        Route("/ready", operations.ready, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", api_page, methods=["GET"]),
        Mount(ASSETS_PATH, assets()),
        Route("/v1/objects", authenticated(objects.upload), methods=["POST"]),
        Route("/v1/objects/by-hash", authenticated(objects.upload_by_hash), methods=["POST"]),
        Route("/v1/objects", authenticated(objects.list_), methods=["GET"]),
        Route("/v1/usage", authenticated(objects.usage), methods=["GET"]),
        Route("/v1/whoami", authenticated(credentials.whoami), methods=["GET"]),
        Route("/v1/namespaces", authenticated(namespaces.list_namespaces), methods=["GET"]),
        Route("/v1/presign", authenticated(presign.create), methods=["POST"]),
        Route(
            "/v1/objects/by-key/{rest:anypath}",
            authenticated_or_presigned(objects.get_by_key),
            methods=["GET", "HEAD"],
        ),
        Route(
            "/v1/objects/by-key/{rest:anypath}",
            authenticated_or_presigned(objects.put_by_key),
            methods=["PUT"],
        ),
        Route(
            "/v1/objects/by-key/{rest:anypath}",
            authenticated(objects.delete_by_key),
            methods=["DELETE"],
        ),
        Route(
            "/v1/objects/{object_id}",
            authenticated_or_presigned(objects.get_by_id),
            methods=["GET", "HEAD"],
        ),
        Route("/v1/objects/{object_id}", authenticated(objects.delete_by_id), methods=["DELETE"]),
        Route("/v1/uploads", authenticated(uploads.create), methods=["POST"]),
        Route("/v1/uploads", authenticated(uploads.list_), methods=["GET"]),
        Route("/v1/uploads/{upload_id}", authenticated(uploads.get), methods=["GET"]),
        Route("/v1/uploads/{upload_id}", authenticated(uploads.abort), methods=["DELETE"]),
        Route(
            "/v1/uploads/{upload_id}/parts/{n}",
            authenticated(uploads.put_part),
            methods=["PUT"],
        ),
        Route(
            "/v1/uploads/{upload_id}/complete",
            authenticated(uploads.complete),
            methods=["POST"],
        ),
    ]
    if serve_metrics:
        routes.append(Route("/metrics", operations.metrics, methods=["GET"]))
    if serve_console:
        routes += _console_routes()
    return routes


class StorageApp(Starlette):
    """Starlette with one layer around its router instead of Starlette's middleware
    stack (`ServerErrorMiddleware`, the user middleware, `ExceptionMiddleware`): one
    coroutine frame and one `send` wrapper per request instead of four of each; and
    the route looked up by `api.routing.RouteTable` before Starlette's scan."""

    def __init__(
        self, *, observe: RequestObserver, cors: CorsPolicy | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._observe = observe
        self._cors = cors

    def build_middleware_stack(self) -> ASGIApp:
        return RequestLayer(
            RouteTable(self.router), self._observe, EXCEPTION_HANDLERS, cors=self._cors
        )


def create_app(
    services: Services, *, run_startup: bool = True, run_background: bool = True
) -> Starlette:
    """The ASGI app. With `run_startup`, the lifespan migrates and prepares storage;
    with `run_background`, it runs the GC and scrub loops. Each run of the lifespan starts a
    fresh `ApiState` and hands it to the requests as lifespan state."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[LifespanState]:
        state = ApiState.from_settings(services.settings, services.metadata)
        if run_startup:
            created = await start(services)
            if created is not None:
                announce_admin_key(services, created.key)
        if services.settings.auth == "disabled":
            log.warning("authentication is DISABLED (JUSTSTORAGE_AUTH=disabled): local use only")
        tasks = (
            [
                asyncio.create_task(run_gc_loop(services)),
                asyncio.create_task(run_scrub_loop(services)),
            ]
            if run_background
            else []
        )
        try:
            async with metrics_listener(services, state), _s3_gateway(services, state):
                yield {"api": state}
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await services.metadata.close()

    app = StorageApp(
        routes=_routes(
            serve_metrics=services.settings.metrics_addr is None,
            serve_console=services.settings.console,
        ),
        observe=services.metrics.observe_request,
        cors=cors_policy(services.settings.cors_origin_set),
        lifespan=lifespan,
    )
    app.state.services = services
    return app


def _s3_gateway(
    services: Services, state: ApiState
) -> contextlib.AbstractAsyncContextManager[None]:
    """The S3 listener of this worker (SPEC §8.8) when `JUSTSTORAGE_S3_ADDR` is set;
    its package is imported only then."""
    if services.settings.s3_addr is None:
        return contextlib.nullcontext()
    from juststorage.s3.listener import s3_listener

    return s3_listener(services, state)


def announce_admin_key(services: Services, key: str) -> None:
    """SPEC §3: print the first admin key once. Only to a terminal, never into logs."""
    path = services.settings.admin_key_path
    if sys.stdout.isatty():
        print(f"Created the first admin API key (shown once): {key}", flush=True)
    log.warning("created the first admin API key; it is in %s (mode 0600)", path)
