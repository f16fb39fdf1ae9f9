"""Domain errors. Each class name is the SPEC error code it becomes.

    StorageError (Internal)
    ├── BadRequest
    │   └── ChecksumMismatch
    ├── Unauthorized
    ├── Forbidden
    ├── NotFound
    ├── MethodNotAllowed
    ├── Conflict
    ├── PreconditionFailed
    ├── PayloadTooLarge
    ├── RangeNotSatisfiable   (size_bytes)
    ├── TooManyRequests       (retry_after_seconds, limit)
    ├── InsufficientStorage
    └── Unavailable           (retry_after_seconds)

These classes are the one list of error codes (`ERROR_CODES`). The HTTP status
of each lives in one table, `juststorage.api.errors`, which also turns the facts
an error carries into headers; tests check that the OpenAPI document, the CLI's
exit codes and the SDKs name the same codes.
"""

from __future__ import annotations

from typing import ClassVar

from juststorage.domain.limits import RateLimitStatus

# How long a client should wait before trying again when a dependency is unavailable
# (`Retry-After` of a 503): one value for every cause.
RETRY_AFTER_S = 2


class StorageError(Exception):
    """Base class; `code` is the SPEC error code: `Internal` for this class, the class
    name for each class of this module, and the parent's code for a subclass defined
    elsewhere (a finer condition of the same code)."""

    code: ClassVar[str] = "Internal"

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.__module__ == __name__:
            cls.code = cls.__name__

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self.args[0])


class BadRequest(StorageError):
    """A malformed header, name, key, query or body framing."""


class ChecksumMismatch(BadRequest):
    """The uploaded bytes do not hash to the `X-Checksum-SHA256` the client declared."""


class Unauthorized(StorageError):
    """A missing, malformed, unknown, revoked or expired credential."""


class Forbidden(StorageError):
    """The credential lacks the scope, or does not hold the tenant (writes and lists;
    a read of another tenant's object is `NotFound`, so that existence never leaks)."""


class NotFound(StorageError):
    """No such object, version, key or resource."""


class MethodNotAllowed(StorageError):
    """The path exists, but not with this method."""


class Conflict(StorageError):
    """The request does not fit the resource's current state, which another request
    changed or ended (a multipart session completed, or its parts replaced while it
    was being completed); the message says whether trying again can succeed."""


class PreconditionFailed(StorageError):
    """`If-None-Match` / `If-Match` did not hold."""


class PayloadTooLarge(StorageError):
    """Over the maximum object size, or over the tenant's storage quota."""


class RangeNotSatisfiable(StorageError):
    """The range does not overlap the object, or several ranges were asked for."""

    def __init__(self, message: str, size_bytes: int) -> None:
        super().__init__(message)
        self.size_bytes = size_bytes


class TooManyRequests(StorageError):
    """Over a rate, bandwidth or concurrency limit; worth trying again after
    `retry_after_seconds`. `limit` describes the limit that refused, when one did."""

    def __init__(
        self, message: str, retry_after_seconds: int, limit: RateLimitStatus | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)
        self.limit = limit


class InsufficientStorage(StorageError):
    """A storage root (or the database's disk) is full."""


class Unavailable(StorageError):
    """Something the request needs (the database, a storage root, an object store)
    is unreachable or refuses work because of its state; worth trying again after
    `retry_after_seconds`.

    The message is for the client: it names the dependency and a short reason,
    never a path, host or SQL. The foreign error it was raised from (`__cause__`)
    carries the details, which go to the log.
    """

    def __init__(self, message: str = "", retry_after_seconds: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_seconds = max(1, retry_after_seconds)


def details_of(exc: BaseException) -> str:
    """The errors behind `exc` (its causes), one `Type: text` each: for logs and the
    operator's terminal, never for an HTTP answer (they may name paths and hosts)."""
    parts = []
    seen: set[int] = set()
    current = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        # The first line only: some clients (obstore) append pages of debug output.
        text = next((line for line in str(current).strip().splitlines() if line), "")
        parts.append(f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or current.__context__
    return " <- ".join(parts) or "no further details"


def _codes(cls: type[StorageError]) -> list[str]:
    subclasses = [sub for sub in cls.__subclasses__() if sub.__module__ == __name__]
    return [cls.code] + [code for sub in subclasses for code in _codes(sub)]


# Every SPEC error code, in the order the classes are defined (`Internal` first).
ERROR_CODES: tuple[str, ...] = tuple(_codes(StorageError))


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a task group's failure stands for: a storage error if there is one
    (the others are its consequences: cancellations, closed streams), else the first."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for exc in g.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, StorageError):
            return exc
    return leaves[0] if leaves else group
