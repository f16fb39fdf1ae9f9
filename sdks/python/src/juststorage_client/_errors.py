"""Every failure the client raises, as one tree (class names are the SPEC error codes).

JustStorageError
├── ApiError                 the server answered an error (code, message, status, request_id)
│   ├── BadRequest           400
│   │   └── ChecksumMismatch 400, the body did not match X-Content-SHA256
│   ├── Unauthorized         401
│   ├── Forbidden            403
│   ├── NotFound             404
│   ├── MethodNotAllowed     405
│   ├── Conflict             409, a session's state refuses the change
│   ├── PreconditionFailed   412
│   ├── PayloadTooLarge      413
│   ├── RangeNotSatisfiable  416
│   ├── TooManyRequests      429 (retry_after seconds)
│   ├── Internal             500
│   ├── Unavailable          503
│   └── InsufficientStorage  507
├── TransportError           no answer: connection refused, reset, timed out (retries spent)
└── IntegrityError           downloaded bytes do not hash to the object's ETag
"""

from __future__ import annotations


class JustStorageError(Exception):
    """Base class of everything this client raises on purpose."""


class ApiError(JustStorageError):
    """An error answer from the server: `{"error": {"code", "message", "request_id"}}`."""

    code: str = "Unknown"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        request_id: str = "",
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        if code is not None and code != type(self).code:
            self.code = code  # an unknown code is kept verbatim

    def __str__(self) -> str:
        rid = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.code} [{self.status}]: {self.message}{rid}"


class BadRequest(ApiError):
    code = "BadRequest"


class ChecksumMismatch(BadRequest):
    code = "ChecksumMismatch"


class Unauthorized(ApiError):
    code = "Unauthorized"


class Forbidden(ApiError):
    code = "Forbidden"


class NotFound(ApiError):
    code = "NotFound"


class MethodNotAllowed(ApiError):
    code = "MethodNotAllowed"


class Conflict(ApiError):
    code = "Conflict"


class PreconditionFailed(ApiError):
    code = "PreconditionFailed"


class PayloadTooLarge(ApiError):
    code = "PayloadTooLarge"


class RangeNotSatisfiable(ApiError):
    code = "RangeNotSatisfiable"


class TooManyRequests(ApiError):
    code = "TooManyRequests"


class Internal(ApiError):
    code = "Internal"


class Unavailable(ApiError):
    code = "Unavailable"


class InsufficientStorage(ApiError):
    code = "InsufficientStorage"


class TransportError(JustStorageError):
    """The server could not be reached or the connection broke (after every retry)."""


class IntegrityError(JustStorageError):
    """Downloaded bytes do not hash to the ETag the server announced."""

    def __init__(self, message: str, *, expected: str, actual: str) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


ERROR_CLASSES: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        ChecksumMismatch,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        RangeNotSatisfiable,
        TooManyRequests,
        Internal,
        Unavailable,
        InsufficientStorage,
    )
}
_CLASS_OF_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    416: RangeNotSatisfiable,
    429: TooManyRequests,
    500: Internal,
    503: Unavailable,
    507: InsufficientStorage,
}


def error_class(code: str | None, status: int) -> type[ApiError]:
    """The class for a SPEC code; by status when the code is missing or unknown."""
    if code is not None and code in ERROR_CLASSES:
        return ERROR_CLASSES[code]
    if status in _CLASS_OF_STATUS:
        return _CLASS_OF_STATUS[status]
    return Internal if status >= 500 else BadRequest
