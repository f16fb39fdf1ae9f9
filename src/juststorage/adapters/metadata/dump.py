"""The metadata of a backup: one consistent, read-only snapshot of the database,
streamed in pages (bounded memory), on a connection of its own (SPEC §8.9;
docs/backup.md).

- SQLite: a read transaction on its own connection. In WAL mode the first read
  fixes the snapshot; writers go on committing to the WAL meanwhile (checkpoints
  cannot pass the snapshot's end mark until it closes, so the WAL may grow while a
  long dump runs).
- PostgreSQL: a `REPEATABLE READ READ ONLY` transaction: every statement sees the
  snapshot of its first one.

Inline blobs' bytes are read in the same snapshot. Values come out in their
canonical form (`backup_format.Value`); `database_row` converts a canonical row
back into what a backend's driver binds (for a restore).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import UUID

import asyncpg

from juststorage.adapters import threads
from juststorage.adapters.metadata.migrations import migrations_for
from juststorage.application.backup_format import COLUMNS, Row, Value
from juststorage.application.backup_ports import DumpedBlob
from juststorage.application.ports import Clock
from juststorage.application.records import INLINE_PREFIX, BlobLocation
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash, StorageClass
from juststorage.domain.timestamps import parse_utc_text, utc_text

__all__ = ["PostgresDumper", "SqliteDumper", "database_row", "latest_schema"]

T = TypeVar("T")
Backend = Literal["sqlite", "postgresql"]
PAGE_ROWS = 1000
_CONNECT_TIMEOUT_S = 5.0

OBJECTS_SQL = (
    "SELECT " + ", ".join(COLUMNS["objects"]) + " FROM objects"
    " WHERE state = 'COMMITTED' ORDER BY commit_seq"
)
# Only the blobs a committed object references (objects_committed_by_blob answers).
BLOBS_SQL = (
    "SELECT b.storage_class, b.content_hash, b.size_bytes, b.created_at, b.location"
    " FROM blobs b WHERE EXISTS (SELECT 1 FROM objects o WHERE o.state = 'COMMITTED'"
    " AND o.storage_class = b.storage_class AND o.content_hash = b.content_hash)"
    " ORDER BY b.content_hash, b.storage_class"
)
API_KEYS_SQL = "SELECT " + ", ".join(COLUMNS["api_keys"]) + " FROM api_keys ORDER BY id"
INLINE_SQL = "SELECT data FROM inline_blobs WHERE storage_class = {0} AND content_hash = {1}"
SCHEMA_SQL = "SELECT MAX(version) FROM schema_migrations"
WITHOUT_BLOB_SQL = (
    "SELECT COUNT(*) FROM objects o WHERE o.state = 'COMMITTED' AND NOT EXISTS"
    " (SELECT 1 FROM blobs b WHERE b.storage_class = o.storage_class"
    " AND b.content_hash = o.content_hash)"
)
# The live database (not a snapshot): where a blob is now, and who references it.
LOCATE_SQL = (
    "SELECT COALESCE(b.location, b.content_hash), i.data FROM blobs b"
    " LEFT JOIN inline_blobs i ON i.storage_class = b.storage_class"
    " AND i.content_hash = b.content_hash"
    " WHERE b.storage_class = {0} AND b.content_hash = {1}"
)
OBJECTS_OF_SQL = (
    "SELECT tenant_id, id FROM objects WHERE storage_class = {0} AND content_hash = {1}"
    " AND state = 'COMMITTED' ORDER BY tenant_id, id LIMIT {2}"
)


def latest_schema() -> int:
    """The newest migration this version of the package knows (both backends share it)."""
    return migrations_for("sqlite")[-1].version


def _check_schema(schema: int | None) -> int:
    latest = latest_schema()
    if schema is None:
        raise StorageError("the database has no schema: run `juststorage migrate`")
    if schema != latest:
        raise StorageError(
            f"the database schema is version {schema}, this juststorage writes backups"
            f" of version {latest}: run the matching `juststorage migrate` first"
        )
    return schema


# -- values -------------------------------------------------------------------------


def _canonical(backend: Backend, table: str, names: tuple[str, ...], row: Any) -> Row:
    columns = COLUMNS[table]
    out: Row = {}
    for name, value in zip(names, row, strict=True):
        kind = columns[name]
        converted: Value
        if value is None:
            converted = None
        elif kind == "timestamp":
            converted = parse_utc_text(value) if backend == "sqlite" else value
        elif kind == "text_list":
            converted = list(json.loads(value) if backend == "sqlite" else value)
        elif kind == "bytes":
            converted = bytes(value)
        elif kind == "text":
            converted = str(value)  # a UUID column too
        else:
            converted = int(value)
        out[name] = converted
    return out


def database_row(backend: Backend, table: str, row: Row) -> tuple[Any, ...]:
    """A canonical row's values, in `COLUMNS[table]`'s order, as `backend`'s driver
    binds them into that table's columns (SQLite: timestamps as the sortable UTC text,
    lists as JSON; PostgreSQL: datetimes, lists, and `objects.id` as a UUID)."""
    values: list[Any] = []
    for name, kind in COLUMNS[table].items():
        value = row[name]
        if value is None:
            values.append(None)
        elif backend == "sqlite" and kind == "timestamp":
            assert isinstance(value, datetime)
            values.append(utc_text(value, fraction_digits=6))
        elif backend == "sqlite" and kind == "text_list":
            values.append(json.dumps(value))
        elif backend == "postgresql" and table == "objects" and name == "id":
            assert isinstance(value, str)
            values.append(UUID(value))
        else:
            values.append(value)
    return tuple(values)


def _dumped_blob(backend: Backend, row: Any) -> DumpedBlob:
    storage_class, content_hash, size, created_at, location = row
    return DumpedBlob(
        StorageClass(storage_class),
        ContentHash.trusted(content_hash),
        int(size),
        parse_utc_text(created_at) if backend == "sqlite" else created_at,
        location or content_hash,
    )


# -- SQLite -------------------------------------------------------------------------


class _SqliteSnapshot:
    backend: Backend = "sqlite"

    def __init__(
        self, conn: sqlite3.Connection, schema: int, snapshot_at: datetime, taken_by: datetime
    ) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # one statement at a time on the connection
        self.schema = schema
        self.snapshot_at = snapshot_at
        self.taken_by = taken_by

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock, sqlite_errors():
            return fn(self._conn)

    async def _pages(self, sql: str) -> AsyncIterator[list[Any]]:
        cursor = await threads.run_sync(self._call, lambda c: c.execute(sql))
        try:
            while page := await threads.run_sync(
                self._call, lambda _c: cursor.fetchmany(PAGE_ROWS)
            ):
                yield page
        finally:
            cursor.close()

    async def objects(self) -> AsyncIterator[list[Row]]:
        names = tuple(COLUMNS["objects"])
        async for page in self._pages(OBJECTS_SQL):
            yield [_canonical("sqlite", "objects", names, r) for r in page]

    async def blobs(self) -> AsyncIterator[list[DumpedBlob]]:
        async for page in self._pages(BLOBS_SQL):
            yield [_dumped_blob("sqlite", r) for r in page]

    async def api_keys(self) -> AsyncIterator[list[Row]]:
        names = tuple(COLUMNS["api_keys"])
        async for page in self._pages(API_KEYS_SQL):
            yield [_canonical("sqlite", "api_keys", names, r) for r in page]

    async def objects_without_blob(self) -> int:
        row = await threads.run_sync(self._call, lambda c: c.execute(WITHOUT_BLOB_SQL).fetchone())
        return int(row[0])

    async def inline_bytes(self, storage_class: StorageClass, content_hash: ContentHash) -> bytes:
        sql = INLINE_SQL.format("?", "?")
        params = (storage_class.value, content_hash.hex)
        row = await threads.run_sync(self._call, lambda c: c.execute(sql, params).fetchone())
        if row is None:
            raise NotFound(f"no inline bytes of {storage_class.value} blob {content_hash.hex}")
        return bytes(row[0])


@contextlib.contextmanager
def sqlite_errors() -> Iterator[None]:
    """sqlite3's errors as domain errors (the dump's and the restore's): a locked or
    unreachable database is Unavailable, any other (DatabaseError, and InterfaceError /
    ProgrammingError: an API misuse) a StorageError, one line for the user."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise Unavailable(f"the database is unavailable: {exc}") from exc
    except sqlite3.Error as exc:
        raise StorageError(f"database error: {exc}") from exc


def _location(
    storage_class: StorageClass, content_hash: ContentHash, row: Any
) -> BlobLocation | bytes | None:
    if row is None:
        return None
    address, data = row
    if str(address).startswith(INLINE_PREFIX):
        return None if data is None else bytes(data)
    return BlobLocation(storage_class, content_hash, str(address))


class SqliteDumper:
    """Snapshots of the SQLite database at `path` (which must exist)."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with (
            sqlite_errors(),
            contextlib.closing(
                sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=rw", uri=True, timeout=4.0)
            ) as conn,
        ):
            return conn.execute(sql, params).fetchall()

    async def locate(
        self, storage_class: StorageClass, content_hash: ContentHash
    ) -> BlobLocation | bytes | None:
        rows = await threads.run_sync(
            self._read, LOCATE_SQL.format("?", "?"), (storage_class.value, content_hash.hex)
        )
        return _location(storage_class, content_hash, rows[0] if rows else None)

    async def objects_of(
        self, storage_class: StorageClass, content_hash: ContentHash, limit: int
    ) -> list[tuple[str, str]]:
        rows = await threads.run_sync(
            self._read,
            OBJECTS_OF_SQL.format("?", "?", "?"),
            (storage_class.value, content_hash.hex, limit),
        )
        return [(str(t), str(i)) for t, i in rows]

    def _open(self) -> tuple[sqlite3.Connection, int]:
        with sqlite_errors():
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=rw",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=4.0,
            )
            try:
                conn.execute("PRAGMA query_only = 1")
                conn.execute("BEGIN")  # deferred: the first read fixes the snapshot
                (schema,) = conn.execute(SCHEMA_SQL).fetchone()
            except BaseException:
                conn.close()
                raise
        return conn, schema

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[_SqliteSnapshot]:
        if not self.path.is_file():
            raise StorageError(f"no database at {self.path}")
        snapshot_at = self.clock.now()
        conn, schema = await threads.run_sync(self._open)
        taken_by = self.clock.now()
        try:
            yield _SqliteSnapshot(conn, _check_schema(schema), snapshot_at, taken_by)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            conn.close()


# -- PostgreSQL ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _pg_errors() -> AsyncIterator[None]:
    try:
        yield
    except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        raise Unavailable("the database is unavailable") from exc
    except asyncpg.PostgresError as exc:
        raise StorageError(f"database error: {exc}") from exc


class _PostgresSnapshot:
    backend: Backend = "postgresql"

    def __init__(
        self, conn: asyncpg.Connection, schema: int, snapshot_at: datetime, taken_by: datetime
    ) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()  # a cursor's fetch and another statement take turns
        self.schema = schema
        self.snapshot_at = snapshot_at
        self.taken_by = taken_by

    async def _pages(self, sql: str) -> AsyncIterator[list[Any]]:
        async with _pg_errors():
            async with self._lock:
                cursor = await self._conn.cursor(sql)
            while True:
                async with self._lock:
                    page = await cursor.fetch(PAGE_ROWS)
                if not page:
                    return
                yield page

    async def objects(self) -> AsyncIterator[list[Row]]:
        names = tuple(COLUMNS["objects"])
        async for page in self._pages(OBJECTS_SQL):
            yield [_canonical("postgresql", "objects", names, r) for r in page]

    async def blobs(self) -> AsyncIterator[list[DumpedBlob]]:
        async for page in self._pages(BLOBS_SQL):
            yield [_dumped_blob("postgresql", r) for r in page]

    async def api_keys(self) -> AsyncIterator[list[Row]]:
        names = tuple(COLUMNS["api_keys"])
        async for page in self._pages(API_KEYS_SQL):
            yield [_canonical("postgresql", "api_keys", names, r) for r in page]

    async def objects_without_blob(self) -> int:
        async with _pg_errors(), self._lock:
            return int(await self._conn.fetchval(WITHOUT_BLOB_SQL))

    async def inline_bytes(self, storage_class: StorageClass, content_hash: ContentHash) -> bytes:
        async with _pg_errors(), self._lock:
            row = await self._conn.fetchrow(
                INLINE_SQL.format("$1", "$2"), storage_class.value, content_hash.hex
            )
        if row is None:
            raise NotFound(f"no inline bytes of {storage_class.value} blob {content_hash.hex}")
        return bytes(row[0])


class PostgresDumper:
    """Snapshots of the PostgreSQL database at `dsn`."""

    def __init__(self, dsn: str, clock: Clock) -> None:
        self._dsn = dsn
        self.clock = clock

    async def _read(self, sql: str, *params: Any) -> list[Any]:
        async with _pg_errors():
            conn = await asyncpg.connect(self._dsn, timeout=_CONNECT_TIMEOUT_S)
            try:
                return list(await conn.fetch(sql, *params))
            finally:
                await conn.close()

    async def locate(
        self, storage_class: StorageClass, content_hash: ContentHash
    ) -> BlobLocation | bytes | None:
        rows = await self._read(
            LOCATE_SQL.format("$1", "$2"), storage_class.value, content_hash.hex
        )
        return _location(storage_class, content_hash, tuple(rows[0]) if rows else None)

    async def objects_of(
        self, storage_class: StorageClass, content_hash: ContentHash, limit: int
    ) -> list[tuple[str, str]]:
        rows = await self._read(
            OBJECTS_OF_SQL.format("$1", "$2", "$3"), storage_class.value, content_hash.hex, limit
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[_PostgresSnapshot]:
        async with _pg_errors():
            conn = await asyncpg.connect(self._dsn, timeout=_CONNECT_TIMEOUT_S)
        try:
            async with _pg_errors():
                # A dump reads for as long as the backup copies: no statement limit,
                # and the server must not end the idle transaction between pages.
                await conn.execute("SET statement_timeout = 0")
                await conn.execute("SET idle_in_transaction_session_timeout = 0")
                snapshot_at = self.clock.now()
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                schema = await conn.fetchval(SCHEMA_SQL)  # the first statement: the snapshot
                taken_by = self.clock.now()
            yield _PostgresSnapshot(conn, _check_schema(schema), snapshot_at, taken_by)
        finally:
            with contextlib.suppress(Exception):
                await conn.execute("ROLLBACK")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)
