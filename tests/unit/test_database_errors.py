"""Database errors at the adapters' edge: the database's state is 503 (with a short
reason and no database text), a full disk 507, a bug 500. Real errors of each
driver, raised the way the driver raises them."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata import postgres, sqlite
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.domain.errors import (
    RETRY_AFTER_S,
    InsufficientStorage,
    StorageError,
    Unavailable,
    details_of,
)


async def _raising(error: BaseException) -> None:
    raise error


def _postgres_translation(error: BaseException, *, connecting: bool) -> StorageError:
    with pytest.raises(StorageError) as raised:
        asyncio.run(postgres._translated(_raising(error), connecting=connecting))
    return raised.value


@pytest.mark.parametrize(
    ("error", "connecting", "reason"),
    [
        (
            asyncpg.ObjectNotInPrerequisiteStateError("RAW not accepting on 10.0.0.7"),
            True,
            "not accepting",
        ),
        (
            asyncpg.TooManyConnectionsError("RAW too many clients on 10.0.0.7"),
            True,
            "out of connections",
        ),
        (asyncpg.CannotConnectNowError("RAW starting up on 10.0.0.7"), True, "starting up"),
        (asyncpg.AdminShutdownError("RAW terminating on 10.0.0.7"), False, "shutting down"),
        (asyncpg.CrashShutdownError("RAW crash on 10.0.0.7"), False, "restarting after a crash"),
        (
            asyncpg.ConnectionDoesNotExistError("RAW closed on 10.0.0.7"),
            False,
            "connection refused or lost",
        ),
        (
            asyncpg.ConnectionFailureError("RAW lost on 10.0.0.7"),
            False,
            "connection refused or lost",
        ),
        (asyncpg.QueryCanceledError("RAW statement timeout on 10.0.0.7"), False, "cancelled"),
        (asyncpg.ReadOnlySQLTransactionError("RAW read-only on 10.0.0.7"), False, "a standby"),
        (asyncpg.OutOfMemoryError("RAW out of memory on 10.0.0.7"), False, "out of resources"),
        (
            asyncpg.InvalidCatalogNameError("RAW no such database on 10.0.0.7"),
            True,
            "refused the connection",
        ),
        (ConnectionRefusedError(111, "RAW refused 10.0.0.7:5432"), True, "refused or lost"),
        # A pooled connection its server ended while idle, handed out before it closed
        (
            asyncpg.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            ),
            False,
            "connection refused or lost",
        ),
        (
            asyncpg.InterfaceError("cannot perform operation: connection is closed"),
            False,
            "connection refused or lost",
        ),
        (TimeoutError(), False, "no answer in time"),
    ],
)
def test_postgres_state_is_unavailable_with_a_short_reason(
    error: BaseException, connecting: bool, reason: str
) -> None:
    translated = _postgres_translation(error, connecting=connecting)
    assert isinstance(translated, Unavailable)
    assert translated.message.startswith("the database is unavailable: ")
    assert reason in translated.message
    assert translated.retry_after_seconds == RETRY_AFTER_S
    assert str(error) in details_of(translated)  # for the log, not for the answer
    if str(error):
        assert str(error) not in translated.message


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.PostgresSyntaxError("syntax error"),
        asyncpg.UndefinedTableError("no such table"),
        # 55000 from a statement (not while connecting) is not about availability
        asyncpg.ObjectNotInPrerequisiteStateError("not in prerequisite state"),
        # asyncpg's client-side errors that are no lost connection: misuse, a bug
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InterfaceError(
            "cannot call Connection.fetch(): connection has been released back to the pool"
        ),
        asyncpg.InternalClientError(
            "cannot switch to state 15; another operation (12) is in progress"
        ),
        asyncpg.InternalClientError("unknown error in protocol implementation"),
    ],
)
def test_postgres_statement_errors_are_bugs(error: BaseException) -> None:
    translated = _postgres_translation(error, connecting=False)
    assert type(translated) is StorageError  # Internal: 500
    assert str(error) in details_of(translated)


def test_postgres_full_disk_is_insufficient_storage() -> None:
    translated = _postgres_translation(asyncpg.DiskFullError("no space"), connecting=False)
    assert isinstance(translated, InsufficientStorage)


async def _write(store: SqliteMetadataStore) -> None:
    async with store.transaction() as uow:
        await uow.session.execute("CREATE TABLE probe (n INTEGER)")
        await uow.commit()


def test_sqlite_read_only_database_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database file that cannot be written (a read-only file system) is 503."""
    path = tmp_path / "meta.db"
    sqlite3.connect(path).close()
    connect = sqlite3.connect

    def read_only(database: Path, **kwargs: object) -> sqlite3.Connection:
        return connect(f"file:{database}?mode=ro", uri=True, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite.sqlite3, "connect", read_only)
    store = SqliteMetadataStore(path, FakeClock())
    with pytest.raises(Unavailable) as raised:
        asyncio.run(_write(store))
    assert raised.value.message == "the database is unavailable: read-only"
    assert raised.value.retry_after_seconds == RETRY_AFTER_S
    assert str(tmp_path) not in raised.value.message


def test_sqlite_statement_error_is_a_bug_not_unavailable(tmp_path: Path) -> None:
    store = SqliteMetadataStore(tmp_path / "meta.db", FakeClock())

    async def bad_statement() -> None:
        async with store.snapshot() as view:
            await view.session.fetchall("SELECT * FROM no_such_table", ())

    with pytest.raises(StorageError) as raised:
        asyncio.run(bad_statement())
    assert type(raised.value) is StorageError  # Internal: 500, not 503
