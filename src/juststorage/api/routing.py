"""Route lookup by method and path shape, before Starlette's scan of every route.

Starlette's router tries each route's regular expression in turn, and calls the
handler through two more wrappers (`request_response` with its own `send` wrapper).
`RouteTable` answers the common case from a dict and a short list:

- a route without parameters (`/v1/usage`) is one dict entry per method;
- a route with parameters is tried only for its methods and only on paths that start
  with its literal prefix (`/v1/objects/`), in the order of the route list.

Anything else, and whatever matches nothing here (an unknown path: 404, a known path
with another method: 405 with `Allow`, a trailing-slash redirect, a mount such as the
API page's assets), goes to Starlette's router unchanged, so those answers stay
Starlette's. A route reached here gets the same scope (`route`, `endpoint`,
`path_params`) as from Starlette's scan; an async function endpoint is called
directly (the exceptions it raises reach `api.middleware.RequestLayer` either way).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Entry:
    route: Route
    endpoint: Endpoint | None  # called directly when set, else through `route.app`

    async def handle(
        self, scope: Scope, receive: Receive, send: Send, params: dict[str, Any]
    ) -> None:
        route = self.route
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {**scope.get("path_params", {}), **params}
        if self.endpoint is None:
            await route.app(scope, receive, send)
            return
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


@dataclass(frozen=True, slots=True)
class _Shape:
    """A route with parameters: its literal prefix and its regular expression; or
    (`entry` None) a route this table does not answer for, e.g. a mount, which
    sends every path under its prefix to Starlette's router."""

    prefix: str
    regex: re.Pattern[str] | None
    entry: _Entry | None


def _direct_endpoint(route: Route) -> Endpoint | None:
    """The route's async function, when Starlette would only wrap it in
    `request_response` (no route middleware, no body limit)."""
    endpoint = route.endpoint
    plain = getattr(route.app, "__qualname__", "") == "request_response.<locals>.app"
    if plain and inspect.isfunction(endpoint) and inspect.iscoroutinefunction(endpoint):
        return endpoint
    return None


def _prefix(route: BaseRoute) -> str:
    path = str(getattr(route, "path", ""))
    return path.split("{", 1)[0]


class RouteTable:
    """Dispatches `router`'s HTTP requests; built from its routes as they are now."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.exact: dict[tuple[str, str], _Entry] = {}
        self.shapes: dict[str, list[_Shape]] = {}
        methods = {m for r in router.routes if isinstance(r, Route) for m in r.methods or ()}
        others: list[tuple[int, _Shape]] = []  # routes for any method: mounts, ...
        per_method: dict[str, list[tuple[int, _Shape]]] = {m: [] for m in methods}
        for index, route in enumerate(router.routes):
            if not isinstance(route, Route) or route.methods is None:
                others.append((index, _Shape(_prefix(route), None, None)))
                continue
            entry = _Entry(route, _direct_endpoint(route))
            for method in route.methods:
                if route.param_convertors:
                    shape = _Shape(_prefix(route), route.path_regex, entry)
                    per_method[method].append((index, shape))
                elif not self._shadowed(router.routes[:index], method, route.path):
                    self.exact.setdefault((method, route.path), entry)
        for method, shapes in per_method.items():
            in_order = sorted(shapes + others, key=lambda indexed: indexed[0])
            self.shapes[method] = [shape for _, shape in in_order]

    @staticmethod
    def _shadowed(earlier: list[BaseRoute], method: str, path: str) -> bool:
        """Whether a route before this one takes (`method`, `path`) in Starlette's scan."""
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        return any(route.matches(scope)[0] is Match.FULL for route in earlier)

    def lookup(self, method: str, path: str) -> tuple[_Entry, dict[str, Any]] | None:
        """The route Starlette's scan would choose, and its path parameters; None when
        only that scan can tell (no match, a partial match, a mount)."""
        entry = self.exact.get((method, path))
        if entry is not None:
            return entry, {}
        for shape in self.shapes.get(method, ()):
            if not path.startswith(shape.prefix):
                continue
            if shape.entry is None or shape.regex is None:
                return None
            match = shape.regex.match(path)
            if match is not None:
                convertors = shape.entry.route.param_convertors
                params = {k: convertors[k].convert(v) for k, v in match.groupdict().items()}
                return shape.entry, params
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            found = self.lookup(scope["method"], scope["path"])
            if found is not None:
                scope.setdefault("router", self.router)
                entry, params = found
                await entry.handle(scope, receive, send, params)
                return
        await self.router(scope, receive, send)
