"""SQLite adapter of the metadata port: the embedded default.

One writer connection per process, guarded by an asyncio lock for the length of
a unit of work, and a small pool of read-only connections; statements run in
worker threads. WAL mode with `synchronous=FULL`: a commit survives power loss
(in WAL mode `NORMAL` may lose the last commits, which SPEC §5 forbids).
Across processes, `BEGIN IMMEDIATE` and the busy timeout serialise writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from juststorage.adapters import threads
from juststorage.adapters.metadata.migrations import migrations_for
from juststorage.adapters.metadata.queries import (
    CensusDeltas,
    count_census_sql,
    count_usage_sql,
)
from juststorage.adapters.metadata.sql import SqlSession, UsageDeltas
from juststorage.adapters.metadata.unit_of_work import SqlUnitOfWork
from juststorage.adapters.private_files import ensure_private_file, open_private_file
from juststorage.application.ports import Clock
from juststorage.domain.errors import InsufficientStorage, StorageError, Unavailable
from juststorage.domain.timestamps import parse_utc_text, utc_text

T = TypeVar("T")
# How long a write waits for another process's write lock before its 503 (every
# wait on the database stays under 5 s; a healthy writer holds the lock for ms).
_BUSY_TIMEOUT_MS = 4_000
_READERS = 4


def sqlite_path_from_url(url: str) -> Path:
    """`sqlite:///relative/path` or `sqlite:////absolute/path` → the file's path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url!r}")
    return Path(url.removeprefix("sqlite:///"))


def _ts(moment: datetime) -> str:
    """Timestamps are stored as UTC text with microseconds: they sort as moments do."""
    return utc_text(moment, fraction_digits=6)


@contextmanager
def _translated_errors() -> Iterator[None]:
    """sqlite3 errors become domain errors at this adapter's edge."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise _domain_error(exc) from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"database error: {exc}") from exc


def _connect_existing(path: Path) -> sqlite3.Connection:
    """A connection to a database file that must already exist (never creates one)."""
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=_BUSY_TIMEOUT_MS / 1000
    )


def _domain_error(exc: sqlite3.OperationalError) -> StorageError:
    """The domain error for an operational failure: a full disk is 507; a file that is
    locked by another process, read-only or failing I/O is 503; an error in a
    statement itself (SQLITE_ERROR: no such table, bad SQL) is a bug."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    if name.startswith("SQLITE_FULL"):
        return InsufficientStorage("the metadata database's disk is full")
    if name == "SQLITE_ERROR":
        return StorageError(f"database error: {exc}")
    reason = _REASON_OF_ERROR.get(name.split("_")[1] if "_" in name else "", "cannot be used")
    return Unavailable(f"the database is unavailable: {reason}")


# By the primary result code (SQLITE_<CODE>_<extended>).
_REASON_OF_ERROR = {
    "BUSY": "locked by another process",
    "LOCKED": "locked by another process",
    "READONLY": "read-only",
    "IOERR": "an I/O error",
    "CANTOPEN": "cannot be opened",
    "PERM": "permission denied",
}


def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    with _translated_errors():
        conn = sqlite3.connect(
            path,
            isolation_level=None,  # we issue BEGIN / COMMIT ourselves
            check_same_thread=False,  # used from worker threads, never two at once
            timeout=_BUSY_TIMEOUT_MS / 1000,
        )
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        if not read_only:
            conn.execute("PRAGMA journal_mode = WAL")
            # 8 MiB of page cache on the writer, four times a batch's inline bytes
            # (commits.INLINE_BATCH_BYTES), so the statements it runs on the event
            # loop find their pages in memory instead of spilling to the WAL.
            conn.execute("PRAGMA cache_size = -8192")
        # FULL: the WAL is fsynced at every commit, so a commit survives power loss.
        conn.execute("PRAGMA synchronous = FULL")
        if read_only:
            conn.execute("PRAGMA query_only = 1")
    return conn


@dataclass
class _Session:
    """Runs statements on one connection: in a worker thread, or inline when `inline`.

    Inside a write transaction (after `BEGIN IMMEDIATE` holds SQLite's write lock)
    statements cannot wait for a lock and touch mostly cached pages, so they run on
    the event loop: a thread hop costs more than the statement. (The group commit
    bounds the inline blob bytes one batch writes, `INLINE_BATCH_BYTES`, so a batch
    stays near the page cache's size.) What may block —
    BEGIN (waits for other processes), COMMIT (fsync), and every read of many rows
    (a listing may be long) runs in a worker thread; a one-row read of a snapshot
    (`fetchone`: a lookup by an index) runs inline too.
    """

    conn: sqlite3.Connection
    clock: Clock
    _: KW_ONLY
    inline: bool = False
    inline_point_reads: bool = False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.inline:
            return self._call(fn)
        return await threads.run_sync(self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # As `_translated_errors`, without a generator-based context manager: this is
        # every statement's path, several per upload on the event loop.
        try:
            return fn(self.conn)
        except sqlite3.OperationalError as exc:
            raise _domain_error(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"database error: {exc}") from exc

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        if self.inline_point_reads:
            # One row by an index (a GET's lookup, an API key): WAL readers take no
            # lock, and from cached pages this is cheaper than the thread hop (a
            # large share of a small GET's time). Listings use fetchall.
            row: tuple[Any, ...] | None = self._call(lambda c: c.execute(sql, params).fetchone())
            return row
        return await self.run(lambda c: c.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return await self.run(lambda c: c.execute(sql, params).fetchall())

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        await self.run(lambda c: c.execute(sql, params).fetchone())


class SqliteDialect:
    """SQLite's side of the shared repositories: TEXT timestamps and UUIDs, JSON lists.

    A write unit of work has one of its own, which collects the census deltas of its
    statements and applies them in one statement just before COMMIT (`apply_census`).
    """

    next_commit_seq = "(SELECT COALESCE(MAX(commit_seq), 0) + 1 FROM objects)"
    # In-process statements cost no round trip; and the subquery above, evaluated once
    # per statement, would give every row of a multi-row INSERT the same number.
    batch_statements = False
    skip_locked = ""  # one writer at a time: nothing to skip
    # SQLite's own advice for a time-sensitive query: the statement fails to prepare,
    # rather than run another plan, if this index cannot answer it.
    tenant_content_index = " INDEXED BY objects_committed_by_tenant_blob"
    nullable_ts = "?"
    bigint = "?"
    least = "MIN"
    greatest = "MAX"
    epoch_now = "((julianday('now') - 2440587.5) * 86400.0)"  # fixed within one statement
    find_text = "instr"
    summary_columns = (
        "o.id, o.key, 'sha256:' || o.content_hash, o.size_bytes, o.storage_class,"
        " o.content_type, substr(o.created_at, 1, 19) || 'Z', o.commit_seq"
    )  # created_at is stored as _ts() writes it: its first 19 characters are the seconds

    def __init__(self) -> None:
        self.census: CensusDeltas = {}  # applied by `apply_census`, just before COMMIT
        self.usage: dict[tuple[str, str], tuple[int, int]] = {}  # likewise

    def ts_in(self, moment: datetime) -> str:
        return _ts(moment)

    def ts_out(self, value: Any) -> datetime:
        return parse_utc_text(value)

    def uuid_in(self, value: UUID) -> str:
        return str(value)

    def uuid_out(self, value: Any) -> UUID:
        return UUID(value)

    def uuid_text_in(self, value: str) -> str:
        return value

    def list_in(self, values: list[str]) -> str:
        return json.dumps(values)

    def list_out(self, value: Any) -> list[str]:
        return list(json.loads(value))

    def any_of(
        self, column: str, values: list[Any], sql_type: str
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """`column IN (?, ...)` in batches of 500, under SQLite's bound-variable limit."""
        for start in range(0, len(values), 500):
            batch = values[start : start + 500]
            yield f"{column} IN ({', '.join('?' * len(batch))})", tuple(batch)

    async def lock_key(self, session: SqlSession, name: str) -> None:
        """Nothing to do: a write transaction already holds SQLite's one write lock."""

    async def lock_keys(self, session: SqlSession, names: list[str]) -> None:
        """Nothing to do: a write transaction already holds SQLite's one write lock."""

    async def lock_api_keys(self, session: SqlSession) -> None:
        """Nothing to do: a write transaction already holds SQLite's one write lock."""

    async def count_usage(self, session: SqlSession, tenant: str, deltas: UsageDeltas) -> None:
        """Collected here; `apply_census` writes them with the transaction's commit (as
        PostgreSQL's dialect does: no statement reads a counter its transaction moved)."""
        for storage_class, (objects, size) in deltas.items():
            key = (tenant, storage_class.value)
            held_objects, held_size = self.usage.get(key, (0, 0))
            self.usage[key] = (held_objects + objects, held_size + size)

    async def count_census(self, session: SqlSession, deltas: CensusDeltas) -> None:
        """Collected here; `apply_census` writes them with the transaction's commit."""
        for key, (objects, size) in deltas.items():
            held_objects, held_size = self.census.get(key, (0, 0))
            self.census[key] = (held_objects + objects, held_size + size)

    async def apply_census(self, session: SqlSession) -> None:
        """The collected usage deltas, then the census deltas, one statement each, on
        shard 0 (one writer: no contention): a batch of N uploads costs two statements,
        not two or three each."""
        usage = {key: delta for key, delta in self.usage.items() if delta != (0, 0)}
        self.usage.clear()
        if usage:
            params = [v for key, (n, size) in usage.items() for v in (*key, 0, n, size)]
            await session.execute(count_usage_sql(len(usage)), tuple(params))
        rows = {key: delta for key, delta in self.census.items() if delta != (0, 0)}
        self.census.clear()
        if rows:
            params = [v for key, (n, size) in rows.items() for v in (*key, 0, n, size)]
            await session.execute(count_census_sql(len(rows)), tuple(params))


_DIALECT = SqliteDialect()


class SqliteUnitOfWork(SqlUnitOfWork):
    """One transaction on the writer connection, or a read-only view on a reader."""

    def __init__(self, store: SqliteMetadataStore, *, read_only: bool, durable: bool) -> None:
        super().__init__(read_only=read_only, durable=durable)
        self._store = store
        self._session: _Session | None = None
        self._writes: SqliteDialect | None = None  # a write's dialect: its census deltas

    async def _begin(self) -> None:
        if self._read_only:
            conn = await self._store._acquire_reader()
            self._session = _Session(conn, self._store.clock, inline_point_reads=True)
            return
        # The wait for this process's writer and the wait for other processes' write
        # lock share one budget: a request queued behind a writer that is itself
        # waiting for another process still gets its answer within the busy timeout.
        started = time.monotonic()
        try:
            async with asyncio.timeout(_BUSY_TIMEOUT_MS / 1000):
                await self._store._write_lock.acquire()
        except TimeoutError as exc:
            raise Unavailable("the database is unavailable: busy") from exc
        try:
            self._session = _Session(self._store._writer(), self._store.clock)
            durable = self._durable
            # Usually no other process holds the write lock: try without waiting,
            # on the loop; only when busy, wait for it (busy timeout) in a thread.
            if not _try_begin_write_now(self._session.conn, durable):
                left_ms = max(1, _BUSY_TIMEOUT_MS - int((time.monotonic() - started) * 1000))
                await self._session.run(lambda c: _begin_write_within(c, durable, left_ms))
            self._session.inline = True
        except BaseException:
            # Cancelled while the BEGIN waited in its thread: that BEGIN may have
            # succeeded after all. Never hand the connection on inside it (the next
            # transaction could not begin, and the file's write lock stays taken).
            try:
                if self._session is not None and self._session.conn.in_transaction:
                    _end_write(self._session.conn, committed=False)
            finally:
                self._store._write_lock.release()
            raise

    def _current_session(self) -> _Session | None:
        return self._session

    def _dialect(self) -> SqliteDialect:
        if self._read_only:
            return _DIALECT  # reads count nothing
        if self._writes is None:
            self._writes = SqliteDialect()
        return self._writes

    async def _commit(self) -> None:
        assert self._session is not None
        if self._writes is not None:
            await self._writes.apply_census(self._session)
        # COMMIT fsyncs the WAL (synchronous=FULL): off the event loop.
        await threads.run_sync(self._session._call, lambda c: c.execute("COMMIT"))

    async def _end(self) -> None:
        assert self._session is not None
        conn = self._session.conn
        if self._read_only:
            self._store._release_reader(conn)
            return
        try:
            if not self._committed or not self._durable:
                _end_write(conn, self._committed)  # ROLLBACK / PRAGMA: no I/O to wait for
        finally:
            self._store._write_lock.release()


def _try_begin_write_now(conn: sqlite3.Connection, durable: bool) -> bool:
    """BEGIN IMMEDIATE without waiting; False if another process holds the write lock."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        _begin_write(conn, durable)
        return True
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED"):
            return False
        raise _domain_error(exc) from exc
    finally:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")


def _begin_write_within(conn: sqlite3.Connection, durable: bool, busy_ms: int) -> None:
    """BEGIN IMMEDIATE, waiting at most `busy_ms` for another process's write lock."""
    conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
    try:
        _begin_write(conn, durable)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")


def _begin_write(conn: sqlite3.Connection, durable: bool) -> None:
    if not durable:
        conn.execute("PRAGMA synchronous = NORMAL")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except BaseException:
        # Never leave the connection relaxed: the next transaction may need FULL.
        conn.execute("PRAGMA synchronous = FULL")
        raise


def _end_write(conn: sqlite3.Connection, committed: bool) -> None:
    try:
        if not committed and conn.in_transaction:
            conn.execute("ROLLBACK")
    finally:
        conn.execute("PRAGMA synchronous = FULL")


def _append_byte(path: Path) -> None:
    """One byte at the end of `path` (created 0600), never through a symbolic link."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, b"r")
    finally:
        os.close(fd)


class SqliteMetadataStore:
    """The metadata store in one SQLite file."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
        # Every process on this database (SQLite: one host) stats it per API key check.
        self._revocations_path = path.with_name(path.name + ".revocations")
        self._write_lock = asyncio.Lock()
        self._writer_conn: sqlite3.Connection | None = None
        self._idle_readers: list[sqlite3.Connection] = []
        self._reader_slots = asyncio.Semaphore(_READERS)

    def connections_in_use(self) -> tuple[int, int]:
        """(connections busy, connections at most): the writer and the readers (metrics)."""
        readers_busy = _READERS - self._reader_slots._value
        return int(self._write_lock.locked()) + readers_busy, _READERS + 1

    def transaction(self, *, durable: bool = True) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self, read_only=False, durable=durable)

    def snapshot(self) -> SqliteUnitOfWork:
        return SqliteUnitOfWork(self, read_only=True, durable=True)

    async def migrate(self) -> list[str]:
        return await threads.run_sync(self._migrate)

    async def has_schema(self) -> bool:
        return await threads.run_sync(self._has_schema)

    def _has_schema(self) -> bool:
        if not self.path.is_file():
            return False  # connecting would create it
        with _translated_errors(), contextlib.closing(_connect_existing(self.path)) as conn:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
        return row is not None

    async def ping(self) -> None:
        async with self.snapshot() as uow:
            await uow.session.fetchone("SELECT 1", ())

    def revocation_stamp(self) -> Hashable | None:
        # The file only grows (a byte per revocation): its size never repeats while its
        # inode lives; a file replaced has another inode.
        try:
            st = os.lstat(self._revocations_path)
        except FileNotFoundError:
            return (0, 0)
        except OSError:
            return None  # cannot tell: every check reads the key's row
        return (st.st_ino, st.st_size)

    async def announce_revocation(self) -> None:
        with contextlib.suppress(OSError):
            await threads.run_sync(_append_byte, self._revocations_path)

    async def close(self) -> None:
        async with self._write_lock:
            for conn in self._idle_readers:
                conn.close()
            self._idle_readers.clear()
            if self._writer_conn is not None:
                self._writer_conn.close()
                self._writer_conn = None

    def _writer(self) -> sqlite3.Connection:
        if self._writer_conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ensure_private_file(self.path)  # before SQLite creates it with the umask's mode
            self._writer_conn = _connect(self.path, read_only=False)
        return self._writer_conn

    async def _acquire_reader(self) -> sqlite3.Connection:
        await self._reader_slots.acquire()
        try:
            if self._idle_readers:
                return self._idle_readers.pop()
            if self._writer_conn is None:
                # The writer creates the file in WAL mode before any reader opens it.
                await threads.run_sync(self._writer)
            return await threads.run_sync(lambda: _connect(self.path, read_only=True))
        except BaseException:
            self._reader_slots.release()
            raise

    def _release_reader(self, conn: sqlite3.Connection) -> None:
        self._idle_readers.append(conn)
        self._reader_slots.release()

    def _migrate(self) -> list[str]:
        conn = self._writer()
        lock_path = self.path.with_name(self.path.name + ".migrate-lock")
        # Opened without following a link planted at its path, created 0600.
        lock_fd = open_private_file(lock_path)
        with os.fdopen(lock_fd, "rb") as lock_file, _translated_errors():
            # Serialises migrations of several processes starting at once.
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            applied = []
            for migration in migrations_for("sqlite"):
                if migration.version in done:
                    continue
                script = (
                    "BEGIN IMMEDIATE;\n"
                    + migration.sql
                    + "\nINSERT INTO schema_migrations (version, name, applied_at) VALUES"
                    + f" ({migration.version}, '{migration.name}', '{_ts(self.clock.now())}');"
                    + "\nCOMMIT;"
                )
                try:
                    conn.executescript(script)
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                applied.append(f"{migration.version:04d}_{migration.name}")
            return applied
