"""The one table of exit statuses, and the one place that maps errors onto it.

Every failure of a `juststorage` command is a `CommandFailed`; its subclasses in
`FAILURES` are the table of exit statuses (click's `ClickException.exit_code`, fixed
per class), and docs/cli.md shows the same table (`juststorage.cli.reference`
writes it from these classes, a test compares them). An error that carries a SPEC
error code (a `StorageError` raised in this process, or an error answer from the
server through the SDK) exits with the status of its code, so scripts can tell
"not there" from "not allowed" from "try later" without parsing messages.
Commands raise; `handle_errors()`, wrapped around every command by the
`juststorage` group, turns what they raise into one `Error: …` line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import ClassVar

import click

from juststorage.config_errors import SettingsError
from juststorage.deploy.options import DeployError
from juststorage.domain.errors import (
    InsufficientStorage,
    StorageError,
    Unavailable,
    details_of,
)


class CommandFailed(click.ClickException):
    """Any other failure: `fsck` found damage, `migrate-blobs` is not complete,
    another GC pass is running, `deploy generate` refused, a local file could not be
    read or written, an error code not listed here."""

    exit_code = 1
    error_codes: ClassVar[tuple[str, ...]] = ()


class BadUsage(CommandFailed):
    """Bad usage (unknown option, malformed name; click's own usage errors), settings
    that cannot be used or that point at no store, a client config file that cannot be
    read, holds an unknown key or lacks the profile asked for, or that
    JUSTSTORAGE_CLIENT_CONFIG names but is not there, a missing local file."""

    exit_code = 2
    error_codes = ("BadRequest",)


class NotFoundFailure(CommandFailed):
    """No such object, version or API key."""

    exit_code = 3
    error_codes = ("NotFound",)


class UnauthorizedFailure(CommandFailed):
    """No credential, or one the server does not accept."""

    exit_code = 4
    error_codes = ("Unauthorized",)


class ForbiddenFailure(CommandFailed):
    """The credential lacks the tenant or the scope."""

    exit_code = 5
    error_codes = ("Forbidden",)


class PreconditionFailure(CommandFailed):
    """`--no-overwrite` or `--if-match` did not hold."""

    exit_code = 6
    error_codes = ("PreconditionFailed",)


class ChecksumFailure(CommandFailed):
    """The bytes do not match their SHA-256: an upload, or a download the client checked."""

    exit_code = 7
    error_codes = ("ChecksumMismatch", "IntegrityError")


class TooLargeFailure(CommandFailed):
    """The object is larger than the server accepts."""

    exit_code = 8
    error_codes = ("PayloadTooLarge",)


class RangeFailure(CommandFailed):
    """`--range` starts past the end of the object."""

    exit_code = 9
    error_codes = ("RangeNotSatisfiable",)


class RateLimitedFailure(CommandFailed):
    """Rate limited, after the client's retries."""

    exit_code = 10
    error_codes = ("TooManyRequests",)


class UnavailableFailure(CommandFailed):
    """The server or its database is unavailable."""

    exit_code = 11
    error_codes = ("Unavailable",)


class StorageFullFailure(CommandFailed):
    """A storage root is full."""

    exit_code = 12
    error_codes = ("InsufficientStorage",)


class ServerFailure(CommandFailed):
    """The server failed."""

    exit_code = 13
    error_codes = ("Internal",)


class UnreachableFailure(CommandFailed):
    """The server could not be reached, after the client's retries."""

    exit_code = 14
    error_codes = ("TransportError",)


class ConflictFailure(CommandFailed):
    """A multipart upload's parts changed while it was being completed (or its
    session was completed meanwhile): run the command again."""

    exit_code = 15
    error_codes = ("Conflict",)


# The exit-status table, in order (0 is success; docs/cli.md shows the same rows).
FAILURES: tuple[type[CommandFailed], ...] = (
    CommandFailed,
    BadUsage,
    NotFoundFailure,
    UnauthorizedFailure,
    ForbiddenFailure,
    PreconditionFailure,
    ChecksumFailure,
    TooLargeFailure,
    RangeFailure,
    RateLimitedFailure,
    UnavailableFailure,
    StorageFullFailure,
    ServerFailure,
    UnreachableFailure,
    ConflictFailure,
)
_BY_ERROR_CODE: Mapping[str, type[CommandFailed]] = MappingProxyType(
    {code: failure for failure in FAILURES for code in failure.error_codes}
)
# Error code -> exit status: the SPEC codes, and the SDK's two failures that have
# no answer from the server (IntegrityError, TransportError).
EXIT_CODES: Mapping[str, int] = MappingProxyType(
    {code: failure.exit_code for code, failure in _BY_ERROR_CODE.items()}
)


def failure_for(error_code: str, message: str) -> CommandFailed:
    """The failure whose exit status belongs to an error code (1 for a code not listed)."""
    return _BY_ERROR_CODE.get(error_code, CommandFailed)(message)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn what a command raises into one `Error: …` line and its exit status.

    Anything not listed here is a bug and keeps its traceback.
    """
    try:
        yield
    except SettingsError as exc:
        raise BadUsage(str(exc)) from None
    except StorageError as exc:
        message = f"{exc.code}: {exc.message}"
        if isinstance(exc, Unavailable | InsufficientStorage) and exc.__cause__ is not None:
            message += f" ({details_of(exc)})"  # the operator's terminal: what failed, too
        raise failure_for(exc.code, message) from None
    except DeployError as exc:
        raise CommandFailed(str(exc)) from None
    except Exception as exc:
        failure = _client_failure(exc)
        if failure is None:
            raise
        raise failure from None


def _client_failure(exc: Exception) -> CommandFailed | None:
    """The failure for an error of the object commands (the SDK, local files)."""
    # The SDK is imported only by the object commands: if it is not loaded, none of
    # its errors can be in flight, and the server-side commands never import it.
    js = sys.modules.get("juststorage_client")
    if js is not None:
        if isinstance(exc, js.ApiError):
            return failure_for(exc.code, str(exc))
        if isinstance(exc, js.IntegrityError):
            return failure_for("IntegrityError", f"IntegrityError: {exc}")
        if isinstance(exc, js.TransportError):
            from juststorage.cli.transport_errors import describe_transport_error

            return failure_for("TransportError", describe_transport_error(exc))
        if isinstance(exc, ValueError) and _raised_in(exc, "juststorage_client"):
            return BadUsage(str(exc))  # the SDK refused an argument
    if isinstance(exc, OSError):
        return CommandFailed(f"{exc.strerror or exc}: {exc.filename or ''}".strip())
    return None


def _raised_in(exc: BaseException, package: str) -> bool:
    """Whether `exc` was raised by code of `package` or by what that code called."""
    traceback = exc.__traceback__
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        if module == package or module.startswith(package + "."):
            return True
        traceback = traceback.tb_next
    return False
