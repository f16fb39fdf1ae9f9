"""Domain errors. Each class name is the SPEC error code it becomes.

    StorageError (Internal)
    ├── BadRequest
    │   └── ChecksumMismatch
    ├── Unauthorized
    ├── Forbidden
    ├── NotFound
    ├── PreconditionFailed
    ├── PayloadTooLarge
    ├── RangeNotSatisfiable
    ├── TooManyRequests
    ├── InsufficientStorage
    └── Unavailable

The HTTP status of each code lives in one table, `juststorage.api.errors`.
"""

from __future__ import annotations

from typing import ClassVar


class StorageError(Exception):
    """Base class; `code` is the SPEC error code."""

    code: ClassVar[str] = "Internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadRequest(StorageError):
    code = "BadRequest"


class ChecksumMismatch(BadRequest):
    code = "ChecksumMismatch"


class Unauthorized(StorageError):
    code = "Unauthorized"


class Forbidden(StorageError):
    code = "Forbidden"


class NotFound(StorageError):
    code = "NotFound"


class PreconditionFailed(StorageError):
    code = "PreconditionFailed"


class PayloadTooLarge(StorageError):
    code = "PayloadTooLarge"


class RangeNotSatisfiable(StorageError):
    code = "RangeNotSatisfiable"

    def __init__(self, message: str, size_bytes: int) -> None:
        super().__init__(message)
        self.size_bytes = size_bytes


class TooManyRequests(StorageError):
    code = "TooManyRequests"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)


class InsufficientStorage(StorageError):
    code = "InsufficientStorage"


class Unavailable(StorageError):
    code = "Unavailable"
