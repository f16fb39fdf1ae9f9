"""S3's errors: the code, status and message of each answer, and the domain errors
they stand for."""

from __future__ import annotations

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
)


class S3Error(Exception):
    """An answer in S3's error shape: `code` (S3's), HTTP `status`, a message for
    the client, and extra response headers."""

    def __init__(
        self, code: str, message: str, status: int, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.headers = headers or {}


def no_such_key() -> S3Error:
    return S3Error("NoSuchKey", "The specified key does not exist.", 404)


def no_such_upload() -> S3Error:
    return S3Error(
        "NoSuchUpload",
        "The specified multipart upload does not exist. The upload ID may be invalid,"
        " or the upload may have been aborted or completed.",
        404,
    )


def access_denied(message: str = "Access Denied") -> S3Error:
    return S3Error("AccessDenied", message, 403)


def invalid_argument(message: str) -> S3Error:
    return S3Error("InvalidArgument", message, 400)


def not_implemented(what: str) -> S3Error:
    return S3Error(
        "NotImplemented", f"{what} is not implemented by this S3-compatible gateway.", 501
    )


def malformed_xml() -> S3Error:
    return S3Error(
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our"
        " published schema.",
        400,
    )


def from_domain(exc: StorageError, not_found: S3Error | None = None) -> S3Error:
    """The S3 answer to a domain error; `not_found` is what NotFound means for the
    operation (NoSuchKey unless told otherwise)."""
    if isinstance(exc, NotFound):
        return not_found or no_such_key()
    if isinstance(exc, ChecksumMismatch):
        return S3Error("BadDigest", exc.message, 400)
    if isinstance(exc, BadRequest):
        return invalid_argument(exc.message)
    if isinstance(exc, Unauthorized | Forbidden):
        return access_denied()
    if isinstance(exc, PreconditionFailed):
        return S3Error(
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold",
            412,
        )
    if isinstance(exc, PayloadTooLarge):
        return S3Error("EntityTooLarge", exc.message, 400)
    if isinstance(exc, RangeNotSatisfiable):
        return S3Error(
            "InvalidRange",
            "The requested range is not satisfiable",
            416,
            {"Content-Range": f"bytes */{exc.size_bytes}"},
        )
    if isinstance(exc, TooManyRequests):
        return S3Error(
            "SlowDown",
            "Please reduce your request rate.",
            503,
            {"Retry-After": str(exc.retry_after_seconds)},
        )
    if isinstance(exc, Unavailable):
        return S3Error(
            "ServiceUnavailable", exc.message, 503, {"Retry-After": str(exc.retry_after_seconds)}
        )
    if isinstance(exc, InsufficientStorage):
        return S3Error("InsufficientStorage", exc.message, 507)
    if isinstance(exc, Conflict):
        return S3Error("OperationAborted", exc.message, 409)
    if isinstance(exc, MethodNotAllowed):
        return S3Error(
            "MethodNotAllowed", "The specified method is not allowed against this resource.", 405
        )
    return S3Error("InternalError", "We encountered an internal error. Please try again.", 500)
