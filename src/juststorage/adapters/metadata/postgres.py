"""PostgreSQL adapter of the metadata port (asyncpg), for production and many processes.

Concurrency across processes is the database's job:
- a commit to a key takes a transaction-scoped advisory lock on (tenant, namespace,
  key), so `If-None-Match` / `If-Match` checks and commit order are serialised;
- `blobs.acquire` upserts the blob row, whose row lock lasts until commit, so a GC
  pass (which deletes a blob row with ref_count = 0 and unlinks the file inside
  its transaction) can never remove a file a new reference points at.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Hashable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

import anyio
import asyncpg
from asyncpg.pool import PoolConnectionProxy

from juststorage.adapters.metadata.migrations import migrations_for
from juststorage.adapters.metadata.queries import (
    USAGE_SHARDS,
    CensusDeltas,
    CensusKey,
    count_census_sql,
    count_usage_sql,
)
from juststorage.adapters.metadata.sql import SqlSession, UsageDeltas
from juststorage.adapters.metadata.unit_of_work import SqlUnitOfWork
from juststorage.application.ports import Clock
from juststorage.domain.errors import InsufficientStorage, StorageError, Unavailable

T = TypeVar("T")
Connection = PoolConnectionProxy  # generic only in the type stubs
_MIGRATION_LOCK_ID = 0x4A53_4D49_4752  # "JSMIGR": one migrator at a time
_POOL_MAX = 10
# Every wait on the database is bounded: a database that is gone, hung or refusing
# work gets a request its 503 within about 4 s, never a hang (SPEC: within 5 s).
_CONNECT_TIMEOUT_S = 3.0  # a new connection: TCP, TLS and startup
_ACQUIRE_TIMEOUT_S = 3.0  # a pooled connection, connecting one included
_COMMAND_TIMEOUT_S = 3.0  # one statement (the server's own statements take milliseconds)
# COMMIT may wait for a WAL fsync or a synchronous standby: more slack than a statement,
# still within the 5 s. A COMMIT that times out may yet have committed (docs/operations.md).
_COMMIT_TIMEOUT_S = 4.5
# The CLI's gc, fsck and migrate-blobs run statements over many rows: an operator's
# command, not a request, so no 5 s answer to keep.
LONG_STATEMENT_TIMEOUT_S = 600.0
# Rollback or reset of a used connection; else it is dropped. Long enough that a
# briefly slow database does not make the pool drop and reopen healthy connections.
_CLEANUP_TIMEOUT_S = 2.0
_MIGRATION_TIMEOUT_S = 3600.0  # a migration may rewrite a large table, or wait for another
# A database cut off the network (a partition: packets dropped, no RST) must not hang
# requests for minutes: a socket gives up when data stays unacknowledged this long,
# and idle pooled connections are probed by TCP keepalive; /ready answers within
# _PING_TIMEOUT_S. tests/multihost cuts the database's link to check both.
_TCP_USER_TIMEOUT_MS = 5000
_KEEPALIVE = ((socket.TCP_KEEPIDLE, 5), (socket.TCP_KEEPINTVL, 2), (socket.TCP_KEEPCNT, 2))
_PING_TIMEOUT_S = 3.0

# Why the database refuses work, by SQLSTATE and by SQLSTATE class: its state or its
# availability, never the request. Anything else from a statement is a bug (500).
_REASON_OF_STATE = {
    "53300": "out of connections",
    "57014": "a statement was cancelled",
    "57P01": "shutting down",
    "57P02": "restarting after a crash",
    "57P03": "starting up, shutting down or in recovery",
    "57P04": "the database was dropped",
    "25006": "read-only (a standby)",
    "55P03": "a lock could not be taken in time",
}
_REASON_OF_CLASS = {
    "08": "connection refused or lost",
    "53": "out of resources",
    "57": "stopped by its operator",
}


# Every error a call on the driver may raise. Of asyncpg's client-side errors only
# those of a closed or lost connection are about the database (`_is_lost`); the others
# (a connection used by two operations at once, a released one) are bugs: 500.
_CLIENT_ERRORS = (asyncpg.InterfaceError, asyncpg.InternalClientError)
_CONNECTION_ERRORS = (TimeoutError, OSError, asyncpg.PostgresError, *_CLIENT_ERRORS)
# A pooled connection whose server ended it while idle: the FATAL arrives before the
# socket closes, asyncpg's protocol leaves its idle state for "error consume" (2), and
# the pool may hand the connection out in between; its next statement then fails so.
_ENDED_WHILE_IDLE = re.compile(
    r"cannot switch to state \d+; another operation \(2\) is in progress"
)


def _is_lost(exc: BaseException) -> bool:
    """A socket error, or asyncpg saying the connection is closed or was ended."""
    if isinstance(exc, OSError):
        return True  # a dropped socket, a refused connect
    if isinstance(exc, asyncpg.InterfaceError):
        return "connection is closed" in str(exc)
    if isinstance(exc, asyncpg.InternalClientError):
        return _ENDED_WHILE_IDLE.search(str(exc)) is not None or str(exc) == "not connected"
    return False


def _unavailability(exc: BaseException, *, connecting: bool) -> str | None:
    """Why the database cannot do the work now, or None when `exc` is not about that.

    While connecting, every refusal is (a database not accepting connections is
    55000; a missing database or role is the operator's to fix, not a bug).
    """
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if _is_lost(exc):
        return "connection refused or lost"
    if isinstance(exc, asyncpg.PostgresError):
        state = str(exc.sqlstate or "")
        reason = _REASON_OF_STATE.get(state) or _REASON_OF_CLASS.get(state[:2])
        if reason is None and connecting:
            reason = "not accepting connections" if state == "55000" else "refused the connection"
        return reason
    return None


async def _translated(call: Awaitable[T], *, connecting: bool = False) -> T:
    """asyncpg and socket errors become domain errors at this adapter's edge.

    The domain error's message names no host and no SQL; the error it is raised
    from keeps the details for the log. `connecting`: the call takes or opens a
    connection.
    """
    try:
        return await call
    except asyncpg.DiskFullError as exc:
        raise InsufficientStorage("the database's disk is full") from exc
    except _CONNECTION_ERRORS as exc:
        reason = _unavailability(exc, connecting=connecting)
        if reason is None:
            raise StorageError(f"database error: {exc}") from exc
        raise Unavailable(f"the database is unavailable: {reason}") from exc


async def _on_connection(conn: Connection, call: Awaitable[T]) -> T:
    """`_translated`, and a connection that timed out or was lost is dropped at once:
    it cannot be trusted, and cleaning it up for the pool would wait for the same
    database and delay the 503 past the 5 s."""
    try:
        return await _translated(call)
    except Unavailable as exc:
        cause = exc.__cause__
        if cause is not None and (isinstance(cause, TimeoutError) or _is_lost(cause)):
            conn.terminate()
        raise


UsageKey = tuple[str, str, int]  # tenant, storage class, shard
ShardedCensusKey = tuple[CensusKey, int]  # census row, shard


@functools.lru_cache(maxsize=512)
def _numbered(sql: str) -> str:
    """`?` placeholders → `$1`, `$2`, … (no statement has a `?` in a literal)."""
    parts = sql.split("?")
    out = [parts[0]]
    for n, part in enumerate(parts[1:], start=1):
        out.append(f"${n}{part}")
    return "".join(out)


class _Session:
    """Runs `?`-style statements on one pooled connection, numbering the placeholders."""

    def __init__(self, conn: Connection, clock: Clock) -> None:
        self.conn = conn
        self.clock = clock

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        row = await _on_connection(self.conn, self.conn.fetchrow(_numbered(sql), *params))
        return None if row is None else tuple(row)

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        rows = await _on_connection(self.conn, self.conn.fetch(_numbered(sql), *params))
        return [tuple(r) for r in rows]

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        await _on_connection(self.conn, self.conn.execute(_numbered(sql), *params))


class PostgresDialect:
    """PostgreSQL's side of the shared repositories: native timestamptz, uuid and TEXT[].

    One per unit of work: it collects the usage counter deltas its commit applies.
    """

    next_commit_seq = "nextval('objects_commit_seq')"
    batch_statements = True  # a statement is a round trip
    skip_locked = " FOR UPDATE SKIP LOCKED"  # concurrent GC passes take different rows
    tenant_content_index = ""  # no planner hints: the probe's shape does it (HOLDS_CONTENT_SQL)
    nullable_ts = "?::timestamptz"  # a bare NULL parameter has no type to deduce
    bigint = "?::bigint"  # used bare in two places it is deduced as two types
    least = "LEAST"
    greatest = "GREATEST"
    # The statement's start: one value however often a statement reads it.
    epoch_now = "extract(epoch from statement_timestamp())::float8"
    find_text = "strpos"
    summary_columns = (
        "o.id::text, o.key, 'sha256:' || o.content_hash,"
        " o.size_bytes, o.storage_class, o.content_type,"
        " to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " o.commit_seq"
    )

    def __init__(
        self,
        conn: Connection,
        usage: dict[UsageKey, list[int]],
        census: dict[ShardedCensusKey, list[int]],
        shard: int,
    ) -> None:
        self._conn = conn
        self.usage = usage  # counter deltas, applied just before COMMIT
        self.census = census  # likewise
        self._shard = shard  # the unit of work's: its deltas land on one row per counter

    def ts_in(self, moment: datetime) -> datetime:
        return moment

    def ts_out(self, value: Any) -> datetime:
        return cast(datetime, value)

    def uuid_in(self, value: UUID) -> UUID:
        return value

    def uuid_out(self, value: Any) -> UUID:
        return cast(UUID, value)

    def uuid_text_in(self, value: str) -> UUID:
        return UUID(value)

    def list_in(self, values: list[str]) -> list[str]:
        return values

    def list_out(self, value: Any) -> list[str]:
        return list(value)

    def any_of(
        self, column: str, values: list[Any], sql_type: str
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """One `column = ANY(?::type[])`, whatever the number of values."""
        if values:
            yield f"{column} = ANY(?::{sql_type}[])", (values,)

    async def lock_key(self, session: SqlSession, name: str) -> None:
        """A transaction-scoped advisory lock on the key's name."""
        await session.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))

    async def lock_keys(self, session: SqlSession, names: list[str]) -> None:
        """The advisory locks of `names` in one round trip, taken in the list's order
        (a volatile function of the select list runs after the sort)."""
        if names:
            await session.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(name, 0))"
                " FROM unnest(?::text[]) WITH ORDINALITY AS given (name, position)"
                " ORDER BY position",
                (names,),
            )

    async def lock_api_keys(self, session: SqlSession) -> None:
        """Serialise first-start key creation of processes starting together.

        A snapshot runs in autocommit, where LOCK TABLE is an error (and pointless).
        """
        if self._conn.is_in_transaction():
            await session.execute("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")

    async def count_usage(self, session: SqlSession, tenant: str, deltas: UsageDeltas) -> None:
        """Record the deltas on the unit of work's shard; it applies them at commit."""
        shard = self._shard
        for storage_class, (objects, size) in deltas.items():
            delta = self.usage.setdefault((tenant, storage_class.value, shard), [0, 0])
            delta[0] += objects
            delta[1] += size

    async def count_census(self, session: SqlSession, deltas: CensusDeltas) -> None:
        """Record the deltas on the unit of work's shard; it applies them at commit."""
        shard = self._shard
        for key, (objects, size) in deltas.items():
            delta = self.census.setdefault((key, shard), [0, 0])
            delta[0] += objects
            delta[1] += size


class _Transaction:
    """BEGIN, COMMIT and ROLLBACK on one connection; COMMIT with its own time limit
    (asyncpg's Transaction gives COMMIT the statement timeout)."""

    def __init__(self, conn: Connection, commit_timeout_s: float) -> None:
        self._conn = conn
        self._commit_timeout_s = commit_timeout_s

    async def start(self) -> None:
        await self._conn.execute("BEGIN")

    async def commit(self) -> None:
        await self._conn.execute("COMMIT", timeout=self._commit_timeout_s)

    async def rollback(self) -> None:
        await self._conn.execute("ROLLBACK")


async def _acquire(pool: asyncpg.Pool) -> Connection:
    return await pool.acquire(timeout=_ACQUIRE_TIMEOUT_S)


async def _release(
    pool: asyncpg.Pool, conn: Connection, *, roll_back: _Transaction | None = None
) -> None:
    """Give a connection back, after rolling back `roll_back` (a transaction) if given.

    Bounded in time and never failing: a connection that cannot be rolled back or
    reset in time (lost, or a database that stopped answering) is dropped, and the
    pool opens a new one when it next needs it.
    """
    # Shielded: a cancelled anyio scope cancels every await inside it, this clean-up's
    # too, which would leave the connection checked out and its transaction open,
    # holding its row locks, for good ("idle in transaction").
    with anyio.CancelScope(shield=True):
        rolled_back = roll_back is None
        try:
            if roll_back is not None and not conn.is_closed():
                async with asyncio.timeout(_CLEANUP_TIMEOUT_S):
                    await roll_back.rollback()
                rolled_back = True
        except _CONNECTION_ERRORS:
            pass
        finally:
            # Not rolled back (broken, or busy with a statement a cancellation cut
            # short): dropped, and its transaction and locks end with its session.
            if not rolled_back:
                conn.terminate()
            # A reset that fails or takes too long terminates the connection (asyncpg does).
            with contextlib.suppress(*_CONNECTION_ERRORS):
                await pool.release(conn, timeout=_CLEANUP_TIMEOUT_S)


class PostgresUnitOfWork(SqlUnitOfWork):
    """One transaction on a pooled connection, or autocommit reads for a snapshot."""

    def __init__(self, store: PostgresMetadataStore, *, read_only: bool, durable: bool) -> None:
        super().__init__(read_only=read_only, durable=durable)
        self._store = store
        self._conn: Connection | None = None
        self._transaction: _Transaction | None = None
        self._usage: dict[UsageKey, list[int]] = {}
        self._census: dict[ShardedCensusKey, list[int]] = {}
        # One random shard per transaction: concurrent ones spread over the counter
        # rows, and a batch of N uploads adds to one row per counter, not N.
        self._shard = random.randrange(USAGE_SHARDS)

    async def _begin(self) -> None:
        pool = await self._store._get_pool()
        conn = self._conn = await _translated(_acquire(pool), connecting=True)
        try:
            if not self._read_only:
                self._transaction = _Transaction(conn, self._store.commit_timeout_s)
                await _on_connection(conn, self._transaction.start())
                if not self._durable:
                    # Only this transaction may be lost on a crash; nothing else is relaxed.
                    await _on_connection(conn, conn.execute("SET LOCAL synchronous_commit = off"))
        except BaseException:
            self._conn = None
            await _release(pool, conn)
            raise

    def _current_session(self) -> _Session | None:
        return None if self._conn is None else _Session(self._conn, self._store.clock)

    def _dialect(self) -> PostgresDialect:
        if self._conn is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return PostgresDialect(self._conn, self._usage, self._census, self._shard)

    async def _commit(self) -> None:
        assert self._transaction is not None
        await self._apply_usage()
        assert self._conn is not None
        await _on_connection(self._conn, self._transaction.commit())

    async def _apply_usage(self) -> None:
        """Usage counter rows, then census counter rows, are locked last, in one global
        order, just before COMMIT.

        Taken earlier, in whatever order the work ran, they would deadlock against the
        blob rows (an upload locks blob then counter, a delete counter then blob).
        """
        session = self.session
        usage = [
            (tenant, storage_class, shard, objects, size)
            for (tenant, storage_class, shard), (objects, size) in sorted(self._usage.items())
            if objects or size
        ]
        self._usage.clear()
        if usage:
            params = tuple(value for row in usage for value in row)
            await session.execute(count_usage_sql(len(usage)), params)
        # One statement for every census row (an upload's commit moves two); sorted,
        # so two transactions lock shared rows in the same order.
        rows = [
            (*key, shard, objects, size)
            for (key, shard), (objects, size) in sorted(self._census.items())
            if objects or size
        ]
        self._census.clear()
        if rows:
            params = tuple(value for row in rows for value in row)
            await session.execute(count_census_sql(len(rows)), params)

    async def _end(self) -> None:
        assert self._conn is not None
        pool = await self._store._get_pool()
        conn, self._conn = self._conn, None
        pending = self._transaction if not self._committed else None
        await _release(pool, conn, roll_back=pending)


async def _bound_socket(conn: asyncpg.Connection) -> None:
    """TCP_USER_TIMEOUT and keepalive on a new connection's socket (asyncpg has no
    option for them; without one, a partition hangs a query until command_timeout)."""
    transport = getattr(conn, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket: no network to lose
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in _KEEPALIVE:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, _TCP_USER_TIMEOUT_MS)


async def _connect_unless_missing(
    dsn: str, statement_timeout_s: float
) -> asyncpg.Connection | None:
    """One connection outside the pool, bounded as the pool's are; None when the
    database does not exist."""
    try:
        conn = await asyncpg.connect(
            dsn, timeout=_CONNECT_TIMEOUT_S, command_timeout=statement_timeout_s
        )
    except asyncpg.InvalidCatalogNameError:
        return None
    await _bound_socket(conn)
    return conn


async def _close(conn: asyncpg.Connection) -> None:
    """Close within the cleanup timeout, else drop the connection; never fails."""
    try:
        await conn.close(timeout=_CLEANUP_TIMEOUT_S)
    except _CONNECTION_ERRORS:
        conn.terminate()


class PostgresMetadataStore:
    """The metadata store in a PostgreSQL 14+ database."""

    def __init__(
        self,
        dsn: str,
        clock: Clock,
        *,
        pool_max: int = _POOL_MAX,
        statement_timeout_s: float = _COMMAND_TIMEOUT_S,
    ) -> None:
        """`statement_timeout_s`: the limit of one statement; a request's statements
        keep the default, the CLI's long passes (gc, fsck) take more."""
        self._dsn = dsn
        self.clock = clock
        self._pool_max = pool_max
        self._statement_timeout_s = statement_timeout_s
        self.commit_timeout_s = max(_COMMIT_TIMEOUT_S, statement_timeout_s)
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await _translated(
                        asyncpg.create_pool(
                            self._dsn,
                            min_size=1,
                            max_size=self._pool_max,
                            command_timeout=self._statement_timeout_s,
                            timeout=_CONNECT_TIMEOUT_S,
                            init=_bound_socket,
                        ),
                        connecting=True,
                    )
        return self._pool

    def connections_in_use(self) -> tuple[int, int]:
        """(connections checked out of the pool, pool size limit), for metrics."""
        pool = self._pool
        if pool is None:
            return 0, self._pool_max
        return pool.get_size() - pool.get_idle_size(), pool.get_max_size()

    def transaction(self, *, durable: bool = True) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self, read_only=False, durable=durable)

    def snapshot(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self, read_only=True, durable=True)

    def revocation_stamp(self) -> Hashable | None:
        return None  # processes on other hosts share no file: every check reads the row

    async def announce_revocation(self) -> None:
        pass

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(_PING_TIMEOUT_S):
                async with self.snapshot() as uow:
                    await uow.session.fetchone("SELECT 1")
        except TimeoutError as exc:
            raise Unavailable(
                f"the database is unavailable: no answer within {_PING_TIMEOUT_S:g} s"
            ) from exc

    async def has_schema(self) -> bool:
        # The short limits even for the CLI: its first call, which must fail promptly
        # on a database that is down or hung rather than start a long pass.
        connecting = _connect_unless_missing(self._dsn, _COMMAND_TIMEOUT_S)
        conn = await _translated(connecting, connecting=True)
        if conn is None:
            return False
        try:
            found = await _translated(
                conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
            )
        finally:
            await _close(conn)
        return bool(found)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        pool = await self._get_pool()
        conn = await _translated(_acquire(pool), connecting=True)
        try:
            yield conn
        finally:
            await _release(pool, conn)

    async def migrate(self) -> list[str]:
        async with self._connection() as conn:
            return await _translated(self._migrate(conn, self.clock))

    @staticmethod
    async def _migrate(conn: Connection, clock: Clock) -> list[str]:
        # A session advisory lock serialises migrators of several processes.
        wait = _MIGRATION_TIMEOUT_S  # not the command timeout: the work may be long
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID, timeout=wait)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
                timeout=wait,
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for migration in migrations_for("postgres"):
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql, timeout=wait)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        clock.now(),
                        timeout=wait,
                    )
                applied.append(f"{migration.version:04d}_{migration.name}")
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID, timeout=wait)
