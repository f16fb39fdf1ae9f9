"""One structured log line per request (logger `juststorage.access`).

Fields: request id, client address, principal, tenant, method, route template,
status, bytes in and out, duration. The principal is who the credential says the
caller is (`key:<id>`, `bootstrap-key-<n>` or a JWT's `sub`), never the
credential. Never the path, the query, a key or any header: keys are customer
data and `Authorization` is a secret. The route template (`/v1/objects/{object_id}`)
says what was called without saying on what.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from juststorage.logs import FIELDS_ATTR

log = logging.getLogger("juststorage.access")
_MAX_PRINCIPAL_CHARS = 200


def _client(scope: Scope) -> str:
    """The peer's address (behind a proxy: the proxy's)."""
    client = scope.get("client")
    return str(client[0]) if client else ""


def _printable(value: object) -> str:
    """A JWT `sub` is the issuer's text: no control character reaches a log line."""
    text = str(value)[:_MAX_PRINCIPAL_CHARS]
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(no route)"


def _content_length(message: Message) -> int:
    for name, value in message.get("headers", []):
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return 0


class RequestLogMiddleware:
    """Logs each HTTP request once it is answered (or has failed), at INFO."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        bytes_in = 0
        bytes_out = 0
        declared_out = 0

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, bytes_out, declared_out
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                declared_out = _content_length(message)
            elif kind == "http.response.body":
                bytes_out += len(message.get("body", b""))
            elif kind == "http.response.pathsend":
                bytes_out += declared_out  # the server sends the file itself
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            state: dict[str, Any] = scope.get("state", {})
            fields = {
                "request_id": str(state.get("request_id", "")),
                "client": _client(scope),
                "principal": _printable(state.get("principal", "")),
                "tenant": str(state.get("tenant", "")),
                "namespace": str(state.get("namespace", "")),
                "method": scope["method"],
                "route": _route_template(scope),
                "status": status,
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            log.info(
                "%s %s %d",
                fields["method"],
                fields["route"],
                status,
                extra={FIELDS_ATTR: fields},
            )
