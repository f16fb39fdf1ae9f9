"""The one pure-ASGI layer around the router: request ids, the error answers, the
access log and the request metrics, for every response."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from juststorage.api import request_log
from juststorage.api.cors import CorsPolicy

_REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_EXTRA_HEADERS = "response_headers"
_METRICS_NAMESPACE = "metrics_namespace"
# (method, status, namespace, seconds, seconds to the start of the answer or None if
# none started) of each answered request: `Metrics.observe_request`
RequestObserver = Callable[[str, int, str, float, float | None], None]
ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_CLOSE = (b"connection", b"close")


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


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode("ascii") if _REQUEST_ID_RE.fullmatch(value) else None
    return None


class RequestLayer:
    """Around every HTTP request, in one layer with one `send` wrapper:

    - sets `state.request_id` (echoed or generated) and adds `X-Request-Id` and
      `X-Content-Type-Options: nosniff` to the response, and the headers of
      `add_response_headers`;
    - a response sent before the request body was read to its end (an upload refused
      early: 401, 412, 413, 429, ...) carries `Connection: close`: the unread rest of
      the body makes the connection unusable, and a client must not send its next
      request on it;
    - with a CORS policy (`api.cors`): answers an allowed origin's preflight `OPTIONS`
      with 204, and adds the CORS headers to every other answer; without one, adds
      nothing and costs nothing;
    - turns an exception into the answer of its handler in `handlers` (looked up along
      the exception's classes, as Starlette does). A handler registered for
      `Exception` is the last resort: its answer (a 500) is sent, then the exception
      is raised again for the server to log. An exception after the response started
      can only be logged (by that last resort) and raised: the connection breaks;
    - once the request is answered (or has failed), writes its access log line
      (`api.request_log`) and then counts it in the request metrics (`observe`): its
      duration, and its time to first byte (from its arrival to `http.response.start`,
      which does not grow with the size of a download).
    """

    def __init__(
        self,
        app: ASGIApp,
        observe: RequestObserver,
        handlers: Mapping[type[Exception], ExceptionHandler],
        cors: CorsPolicy | None = None,
    ) -> None:
        self.app = app
        self.cors = cors
        self.observe = observe
        self.handlers = {cls: h for cls, h in handlers.items() if cls is not Exception}
        self.last_resort = handlers.get(Exception)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False
        first_byte: float | None = None
        body_pending = _has_body(scope)
        bytes_in = 0
        bytes_out = 0
        start_headers: list[tuple[bytes, bytes]] = []
        cors = self.cors
        cors_headers: list[tuple[bytes, bytes]] = []
        preflight: list[tuple[bytes, bytes]] | None = None
        if cors is not None:
            origin = _header(scope, b"origin")
            cors_headers = cors.response_headers(origin)
            if (
                origin is not None
                and scope["method"] == "OPTIONS"
                and _header(scope, b"access-control-request-method") is not None
                and cors.allows(origin)
            ):
                preflight = cors.preflight_headers(origin)

        async def receive_tracked() -> Message:
            nonlocal body_pending, bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_pending = False
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal status, response_started, first_byte, bytes_out, start_headers
            kind = message["type"]
            if kind == "http.response.body":
                bytes_out += len(message.get("body", b""))
            elif kind == "http.response.start":
                first_byte = time.perf_counter() - started
                response_started = True
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                # Every answer, errors included: no browser guesses a type for them.
                for name, _ in headers:
                    if name == b"x-content-type-options":
                        break
                else:
                    headers.append(_NOSNIFF)
                for name, value in state.get(_EXTRA_HEADERS, {}).items():
                    headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                headers.extend(cors_headers)
                if body_pending:
                    headers.append(_CLOSE)
                start_headers = headers
                message = {**message, "headers": headers}
            elif kind == "http.response.pathsend":
                bytes_out += request_log.content_length(start_headers)  # the server sends it
            await send(message)

        try:
            if preflight is not None:
                cors_headers = []  # the preflight's own headers carry them
                await send_tracked(
                    {"type": "http.response.start", "status": 204, "headers": preflight}
                )
                await send_tracked({"type": "http.response.body", "body": b""})
            else:
                await self.app(scope, receive_tracked, send_tracked)
        except Exception as exc:
            handler = None if response_started else self._handler_for(exc)
            request = Request(scope, receive_tracked)
            if handler is not None:
                response = await handler(request, exc)
                await response(scope, receive_tracked, send_tracked)
                exc.__traceback__ = None  # a reused exception would pile up tracebacks
            else:
                if self.last_resort is not None:
                    response = await self.last_resort(request, exc)
                    if not response_started:
                        await response(scope, receive_tracked, send_tracked)
                raise
        finally:
            elapsed = time.perf_counter() - started
            if request_log.enabled():
                request_log.log_request(scope, status, bytes_in, bytes_out, elapsed)
            namespace = _namespace_label(state, status)
            self.observe(scope["method"], status, namespace, elapsed, first_byte)

    def _handler_for(self, exc: Exception) -> ExceptionHandler | None:
        for cls in type(exc).__mro__:
            handler = self.handlers.get(cls)
            if handler is not None:
                return handler
        return None
