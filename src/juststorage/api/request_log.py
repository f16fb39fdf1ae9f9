"""One structured log line per request (logger `juststorage.access`), written by
`api.middleware.RequestLayer` once the request is answered.

Fields: request id, client address, principal, tenant, method, route template,
status, bytes in and out, duration. The principal is who the credential says the
caller is (`key:<id>`, `bootstrap-key-<n>` or a JWT's `sub`), never the
credential. Never the path, the query, a key or any header: keys are customer
data and `Authorization` is a secret. The route template (`/v1/objects/{object_id}`)
says what was called without saying on what.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from starlette.types import Scope

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
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _route_template(scope: Scope) -> str:
    operation = scope.get("state", {}).get("s3_operation")
    if operation:
        return f"S3 {operation}"  # the S3 gateway's requests: the operation's name
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "(no route)"


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """The Content-Length a response declares (0 if none): the bytes a server sends
    itself for a `http.response.pathsend`."""
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return 0


def enabled() -> bool:
    return log.isEnabledFor(logging.INFO)


def log_request(scope: Scope, status: int, bytes_in: int, bytes_out: int, seconds: float) -> None:
    """The request's line, once it is answered (or has failed)."""
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
        "duration_ms": round(seconds * 1000, 3),
    }
    log.info("%s %s %d", fields["method"], fields["route"], status, extra={FIELDS_ATTR: fields})
