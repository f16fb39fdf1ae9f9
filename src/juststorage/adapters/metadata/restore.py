"""The metadata side of a restore (SPEC §8.9; docs/backup.md): whether a database is
empty, and the one transaction that writes a backup's rows into it.

The transaction checks emptiness again under its own lock (SQLite: `BEGIN
IMMEDIATE`, the database's write lock; PostgreSQL: the four tables locked against
writers), inserts the objects, blobs, inline bytes and API keys as the backup holds
them, recounts every blob's references from the objects, recomputes the usage and
census counters (as migrations 0003 and 0005 first filled them: shard 0) and, on
PostgreSQL, moves the `objects_commit_seq` sequence past the largest restored
commit sequence, so the next upload's is larger than every restored one (SQLite
takes MAX + 1).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import asyncpg

from juststorage.adapters import threads
from juststorage.adapters.metadata.dump import database_row, latest_schema, sqlite_errors
from juststorage.application.backup_format import COLUMNS
from juststorage.application.restore import NotEmpty, PlacedBlob, RestoreRows
from juststorage.domain.errors import StorageError, Unavailable

__all__ = ["PostgresLoader", "SqliteLoader", "OCCUPYING_TABLES"]

Backend = Literal["sqlite", "postgresql"]
# A database holding a row in any of these is not empty: a restore refuses it.
OCCUPYING_TABLES = ("objects", "api_keys", "blobs", "inline_blobs")
_CONNECT_TIMEOUT_S = 5.0

_OBJECTS_COLUMNS = tuple(COLUMNS["objects"])
_API_KEYS_COLUMNS = tuple(COLUMNS["api_keys"])
_BLOBS_COLUMNS = (*COLUMNS["blobs"], "ref_count", "location")

_RECOUNT_SQL = (
    "UPDATE blobs SET ref_count = (SELECT COUNT(*) FROM objects o"
    " WHERE o.state = 'COMMITTED' AND o.storage_class = blobs.storage_class"
    " AND o.content_hash = blobs.content_hash)"
)
_USAGE_SQL = (
    "INSERT INTO usage_counters (tenant_id, storage_class, shard, objects, size_bytes)"
    " SELECT tenant_id, storage_class, 0, COUNT(*), COALESCE(SUM(size_bytes), 0)"
    " FROM objects WHERE state = 'COMMITTED' GROUP BY tenant_id, storage_class"
)
_CENSUS_SQL = (
    "INSERT INTO census_counters"
    " (tenant_id, namespace, storage_class, state, shard, objects, size_bytes)"
    " SELECT tenant_id, namespace, storage_class, state, 0, COUNT(*),"
    " COALESCE(SUM(size_bytes), 0) FROM objects"
    " WHERE state IN ('WRITING', 'COMMITTED', 'DELETING')"
    " GROUP BY tenant_id, namespace, storage_class, state"
)
# Counters are sums over the objects: a database with no objects may still hold
# zero rows of them (a store whose objects were all purged); they are rebuilt.
_CLEAR_COUNTERS = ("DELETE FROM usage_counters", "DELETE FROM census_counters")


def _insert_sql(table: str, columns: tuple[str, ...], marker: Any) -> str:
    places = ", ".join(marker(i + 1) for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({places})"


def _blob_values(backend: Backend, placed: PlacedBlob) -> tuple[Any, ...]:
    return (*database_row(backend, "blobs", placed.row), 0, placed.location)


def _describe(occupied: list[str]) -> str:
    return ", ".join(occupied)


# -- SQLite -------------------------------------------------------------------------


def _sqlite_occupied(conn: sqlite3.Connection) -> list[str]:
    tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
    with contextlib.closing(conn.execute(tables)) as c:
        present = {r[0] for r in c}
    occupied = []
    for table in OCCUPYING_TABLES:
        if table not in present:
            continue
        with contextlib.closing(conn.execute(f"SELECT 1 FROM {table} LIMIT 1")) as c:
            if c.fetchone() is not None:
                occupied.append(table)
    return occupied


class SqliteLoader:
    """Restores into the SQLite database at `path`."""

    backend: Backend = "sqlite"

    @property
    def latest_schema(self) -> int:
        return latest_schema()

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            f"{self.path.resolve().as_uri()}?mode=rw",
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=10.0,
        )
        conn.execute("PRAGMA synchronous = FULL")
        return conn

    def _occupied(self) -> list[str]:
        if not self.path.is_file():
            return []  # connecting would create it: nothing is there
        with sqlite_errors(), contextlib.closing(self._connect()) as conn:
            return _sqlite_occupied(conn)

    async def occupied(self) -> list[str]:
        return await threads.run_sync(self._occupied)

    async def load(self, rows: RestoreRows) -> None:
        # The connection is used by ONE thread only, from connect to close, and no
        # cursor leaves it: a cursor freed elsewhere (the event loop, another pool
        # thread) would reset its statement while the next `executemany` of that
        # cached statement runs.
        with ThreadPoolExecutor(1, thread_name_prefix="juststorage-restore") as one:

            async def call(fn: Callable[..., Any], *args: Any) -> None:
                def run() -> None:
                    with sqlite_errors():
                        result = fn(*args)
                        if isinstance(result, sqlite3.Cursor):
                            result.close()

                await threads.run_in(one, run)

            holder: list[sqlite3.Connection] = []

            def connect() -> None:
                holder.append(self._connect())

            await call(connect)
            conn = holder[0]
            try:
                await self._load(conn, rows, call)
            finally:

                def end() -> None:
                    with contextlib.suppress(sqlite3.Error):
                        if conn.in_transaction:
                            conn.execute("ROLLBACK").close()
                    conn.close()

                await threads.run_in(one, end)

    async def _load(
        self,
        conn: sqlite3.Connection,
        rows: RestoreRows,
        call: Callable[..., Awaitable[None]],
    ) -> None:
        def marker(_i: int) -> str:
            return "?"

        def begin() -> list[str]:
            conn.execute("BEGIN IMMEDIATE").close()
            return _sqlite_occupied(conn)

        occupied: list[str] = []
        await call(lambda: occupied.extend(begin()))
        if occupied:
            raise NotEmpty(f"the database is not empty: it holds {_describe(occupied)} rows")
        objects_sql = _insert_sql("objects", _OBJECTS_COLUMNS, marker)
        async for page in rows.objects():
            values = [database_row("sqlite", "objects", r) for r in page]
            await call(conn.executemany, objects_sql, values)
        blobs_sql = _insert_sql("blobs", _BLOBS_COLUMNS, marker)
        inline_sql = "INSERT INTO inline_blobs (storage_class, content_hash, data) VALUES (?, ?, ?)"
        async for placed in rows.blobs():
            blob_rows = [_blob_values("sqlite", p) for p in placed]
            inline = [
                (p.row["storage_class"], p.row["content_hash"], p.inline)
                for p in placed
                if p.inline is not None
            ]
            await call(conn.executemany, blobs_sql, blob_rows)
            if inline:
                await call(conn.executemany, inline_sql, inline)
        keys_sql = _insert_sql("api_keys", _API_KEYS_COLUMNS, marker)
        async for page in rows.api_keys():
            values = [database_row("sqlite", "api_keys", r) for r in page]
            await call(conn.executemany, keys_sql, values)

        def finish() -> None:
            for sql in (_RECOUNT_SQL, *_CLEAR_COUNTERS, _USAGE_SQL, _CENSUS_SQL, "COMMIT"):
                conn.execute(sql).close()

        await call(finish)


# -- PostgreSQL ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _pg_errors() -> AsyncIterator[None]:
    try:
        yield
    except (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.InternalClientError) as exc:
        raise Unavailable("the database is unavailable") from exc
    except asyncpg.PostgresError as exc:
        raise StorageError(f"database error: {exc}") from exc


async def _pg_occupied(conn: asyncpg.Connection) -> list[str]:
    occupied = []
    for table in OCCUPYING_TABLES:
        if await conn.fetchval("SELECT to_regclass($1)", table) is None:
            continue
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):
            occupied.append(table)
    return occupied


class PostgresLoader:
    """Restores into the PostgreSQL database at `dsn`."""

    backend: Backend = "postgresql"

    @property
    def latest_schema(self) -> int:
        return latest_schema()

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    async def _connect(self) -> asyncpg.Connection:
        async with _pg_errors():
            conn = await asyncpg.connect(self._dsn, timeout=_CONNECT_TIMEOUT_S)
            # One transaction writes the whole store: no statement limit.
            await conn.execute("SET statement_timeout = 0")
            await conn.execute("SET idle_in_transaction_session_timeout = 0")
        return conn

    async def occupied(self) -> list[str]:
        conn = await self._connect()
        try:
            async with _pg_errors():
                return await _pg_occupied(conn)
        finally:
            await conn.close()

    async def load(self, rows: RestoreRows) -> None:
        conn = await self._connect()
        try:
            async with _pg_errors(), conn.transaction():
                await self._load(conn, rows)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _load(self, conn: asyncpg.Connection, rows: RestoreRows) -> None:
        # No writer may slip a row in between the check and the commit.
        await conn.execute(
            "LOCK TABLE " + ", ".join(OCCUPYING_TABLES) + " IN SHARE ROW EXCLUSIVE MODE"
        )
        occupied = await _pg_occupied(conn)
        if occupied:
            raise NotEmpty(f"the database is not empty: it holds {_describe(occupied)} rows")

        def marker(i: int) -> str:
            return f"${i}"

        objects_sql = _insert_sql("objects", _OBJECTS_COLUMNS, marker)
        async for page in rows.objects():
            await conn.executemany(
                objects_sql, [database_row("postgresql", "objects", r) for r in page]
            )
        blobs_sql = _insert_sql("blobs", _BLOBS_COLUMNS, marker)
        inline_sql = (
            "INSERT INTO inline_blobs (storage_class, content_hash, data) VALUES ($1, $2, $3)"
        )
        async for placed in rows.blobs():
            await conn.executemany(blobs_sql, [_blob_values("postgresql", p) for p in placed])
            inline = [
                (p.row["storage_class"], p.row["content_hash"], p.inline)
                for p in placed
                if p.inline is not None
            ]
            if inline:
                await conn.executemany(inline_sql, inline)
        keys_sql = _insert_sql("api_keys", _API_KEYS_COLUMNS, marker)
        async for page in rows.api_keys():
            await conn.executemany(
                keys_sql, [database_row("postgresql", "api_keys", r) for r in page]
            )
        await conn.execute(_RECOUNT_SQL)
        for sql in _CLEAR_COUNTERS:
            await conn.execute(sql)
        await conn.execute(_USAGE_SQL)
        await conn.execute(_CENSUS_SQL)
        await conn.execute(
            "SELECT setval('objects_commit_seq', m) FROM (SELECT MAX(commit_seq) AS m"
            " FROM objects) s WHERE m IS NOT NULL"
        )
