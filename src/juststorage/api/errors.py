"""THE mapping from SPEC error codes to HTTP statuses, and the JSON error body."""

from __future__ import annotations

import logging
from typing import Literal

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from juststorage.api.middleware import add_response_headers
from juststorage.application.session_records import DamagedPart
from juststorage.bootstrap import Services
from juststorage.domain.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Forbidden,
    InsufficientStorage,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RangeNotSatisfiable,
    StorageError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    details_of,
)
from juststorage.domain.limits import RateLimitStatus
from juststorage.logs import FIELDS_ATTR

log = logging.getLogger("juststorage.api")

STATUS_OF_ERROR: dict[type[StorageError], int] = {
    BadRequest: 400,
    ChecksumMismatch: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    MethodNotAllowed: 405,
    Conflict: 409,
    PreconditionFailed: 412,
    PayloadTooLarge: 413,
    RangeNotSatisfiable: 416,
    TooManyRequests: 429,
    StorageError: 500,
    Unavailable: 503,
    InsufficientStorage: 507,
}
STATUS_OF_CODE: dict[str, int] = {cls.code: status for cls, status in STATUS_OF_ERROR.items()}


def rate_limit_headers(limit: RateLimitStatus) -> dict[str, str]:
    """What the `X-RateLimit-*` headers tell a client about one limit."""
    return {
        "X-RateLimit-Limit": str(limit.limit),
        "X-RateLimit-Remaining": str(limit.remaining),
        "X-RateLimit-Reset": str(limit.reset_seconds),
        "X-RateLimit-Resource": limit.resource,
    }


def request_id_of(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def error_response(
    request: Request, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    request_id = request_id_of(request)
    return JSONResponse(
        {"error": {"code": code, "message": message, "request_id": request_id}},
        status_code=STATUS_OF_CODE[code],
        headers=headers,
    )


async def on_storage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorageError)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="juststorage"'
    elif isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after_seconds)
        if exc.limit is not None:
            # Through the middleware: they replace the headers of a limit that admitted
            # the request earlier (a request rate, before an upload cap refused it).
            add_response_headers(request.scope, rate_limit_headers(exc.limit))
    elif isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size_bytes}"
    elif isinstance(exc, Unavailable):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if exc.code == "Internal":
        log.error("storage failure: %s", exc.message, exc_info=exc, extra=_fields(request))
        return error_response(request, "Internal", "internal error")
    if isinstance(exc, DamagedPart):
        # Damage on the server's side: which bytes, and what they hash to, in the log.
        log.warning("%s: %s", exc.message, exc.details, extra=_fields(request))
        _count_mismatch(request, "stored")
    elif isinstance(exc, ChecksumMismatch):
        _count_mismatch(request, "upload")
    if isinstance(exc, Unavailable | InsufficientStorage):
        # The client gets the short message; what failed and why, in the log.
        log.warning("%s: %s", exc.message, details_of(exc), extra=_fields(request))
    return error_response(request, exc.code, exc.message, headers)


def _count_mismatch(request: Request, source: Literal["upload", "stored"]) -> None:
    services: Services = request.app.state.services
    services.metrics.observe_checksum_mismatch(source)


def _fields(request: Request) -> dict[str, object]:
    return {FIELDS_ATTR: {"request_id": request_id_of(request)}}


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), in the SPEC's shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(
            request, MethodNotAllowed.code, "method not allowed", dict(exc.headers or {})
        )
    if exc.status_code == 404:
        return error_response(request, "NotFound", "no such resource")
    return error_response(request, "BadRequest", str(exc.detail))


async def on_client_disconnect(request: Request, exc: Exception) -> Response:
    # The client is gone; this answer is never read, the upload was already undone.
    return error_response(request, "BadRequest", "client disconnected")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc, extra=_fields(request))
    return error_response(request, "Internal", "internal error")


EXCEPTION_HANDLERS = {
    StorageError: on_storage_error,
    HTTPException: on_http_exception,
    ClientDisconnect: on_client_disconnect,
    Exception: on_unexpected,
}
