"""Every sqlite3 error of a restore's load is a StorageError (the CLI's one `Error:`
line and the exit status of `Internal` or `Unavailable`), including
sqlite3.InterfaceError ("bad parameter or other API misuse"), which is not a
sqlite3.DatabaseError and came out as a traceback."""

from __future__ import annotations

import sqlite3

import pytest

from juststorage.adapters.metadata.dump import sqlite_errors
from juststorage.cli.errors import EXIT_CODES, handle_errors
from juststorage.domain.errors import StorageError, Unavailable


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.InterfaceError("bad parameter or other API misuse"),
        sqlite3.ProgrammingError("Cannot operate on a closed database."),
        sqlite3.IntegrityError("UNIQUE constraint failed: objects.id"),
    ],
)
def test_an_sqlite_error_of_the_load_is_a_storage_error(error: sqlite3.Error) -> None:
    with pytest.raises(StorageError, match=f"database error: {error}") as raised, sqlite_errors():
        raise error
    assert not isinstance(raised.value, Unavailable)
    # ... which the CLI turns into one line and the status of `Internal`.
    with pytest.raises(Exception) as failed, handle_errors():
        raise raised.value
    assert failed.value.exit_code == EXIT_CODES["Internal"]  # type: ignore[attr-defined]
    assert str(error) in failed.value.format_message()  # type: ignore[attr-defined]


def test_a_locked_database_is_unavailable() -> None:
    with pytest.raises(Unavailable, match="database is locked"), sqlite_errors():
        raise sqlite3.OperationalError("database is locked")
