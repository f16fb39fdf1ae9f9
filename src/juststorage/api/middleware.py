"""Pure ASGI middleware: request ids and request metrics, for every response."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_EXTRA_HEADERS = "response_headers"
_METRICS_NAMESPACE = "metrics_namespace"
# (method, status, namespace, seconds) of each answered request: `Metrics.observe_request`
RequestObserver = Callable[[str, int, str, float], None]


def add_response_headers(scope: Scope, headers: dict[str, str]) -> None:
    """Headers this middleware adds to the response, error or not (e.g. `X-RateLimit-*`).

    A later call replaces a header of the same name.
    """
    scope.setdefault("state", {}).setdefault(_EXTRA_HEADERS, {}).update(headers)


def label_namespace(scope: Scope, namespace: str) -> None:
    """Name the request's namespace in its metrics: call it only with the namespace of
    a committed object the authenticated caller just read, wrote, listed or deleted.

    Every other request (refused, failed, or naming an empty namespace) is counted
    under `namespace=""`, so no client can add label values by naming namespaces:
    there are at most as many as namespaces that held objects.
    """
    scope.setdefault("state", {})[_METRICS_NAMESPACE] = namespace


def _namespace_label(state: dict[str, object], status: int) -> str:
    """The label set by `label_namespace`, for a successful answer only."""
    if 200 <= status < 300 or status == 304:
        return str(state.get(_METRICS_NAMESPACE, ""))
    return ""


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode("ascii") if _REQUEST_ID_RE.fullmatch(value) else None
    return None


class RequestContextMiddleware:
    """Sets `state.request_id` (echoed or generated), adds `X-Request-Id` and
    `X-Content-Type-Options: nosniff` to the response, and counts the request once
    it is answered.

    A response sent before the request body was read to its end (an upload refused
    early: 401, 412, 413, 429, ...) carries `Connection: close`: the unread rest of
    the body makes the connection unusable, and a client must not send its next
    request on it.
    """

    def __init__(self, app: ASGIApp, observe: RequestObserver) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        body_pending = _has_body(scope)

        async def receive_tracked() -> Message:
            nonlocal body_pending
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_pending = False
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("ascii")))
                # Every answer, errors included: no browser guesses a type for them.
                if not any(name == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                for name, value in state.get(_EXTRA_HEADERS, {}).items():
                    headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                if body_pending:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive_tracked, send_with_id)
        finally:
            namespace = _namespace_label(state, status)
            self.observe(scope["method"], status, namespace, time.perf_counter() - started)
