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
import random
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from juststorage.adapters.metadata.migrations import migrations_for
from juststorage.adapters.metadata.queries import (
    CENSUS_SQL,
    COUNT_USAGE_SQL,
    SELECT_OBJECT,
    USAGE_SHARDS,
    USAGE_SQL,
    Params,
    list_page_sql,
    usage_deltas,
)
from juststorage.application.ports import (
    ApiKeyRecord,
    BlobAudit,
    BlobLocation,
    Census,
    ClassUsage,
    Clock,
    ListQuery,
    WritingUpload,
)
from juststorage.domain.auth import Scope
from juststorage.domain.errors import InsufficientStorage, NotFound, StorageError, Unavailable
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectState,
    ObjectVersion,
    StorageClass,
    TenantId,
)

T = TypeVar("T")
Connection = PoolConnectionProxy  # generic only in the type stubs
_MIGRATION_LOCK_ID = 0x4A53_4D49_4752  # "JSMIGR": one migrator at a time
_POOL_MAX = 10


def _version(row: asyncpg.Record) -> ObjectVersion:
    """A stored row: its values were validated on the way in, so they are not re-checked."""
    return ObjectVersion(
        id=row["id"],
        tenant_id=TenantId.trusted(row["tenant_id"]),
        namespace=Namespace.trusted(row["namespace"]),
        key=ObjectKey.trusted(row["key"]),
        content_hash=ContentHash.trusted(row["content_hash"]),
        size_bytes=row["size_bytes"],
        storage_class=StorageClass(row["storage_class"]),
        content_type=row["content_type"],
        created_at=row["created_at"],
        state=ObjectState(row["state"]),
        commit_seq=row["commit_seq"] or 0,
    )


def _api_key(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        key_hash=row["key_hash"],
        tenants=frozenset(row["tenants"]),
        scopes=frozenset(Scope(s) for s in row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def _translated(call: Awaitable[T]) -> T:
    """asyncpg and socket errors become domain errors at this adapter's edge."""
    try:
        return await call
    except asyncpg.DiskFullError as exc:
        raise InsufficientStorage("the database's disk is full") from exc
    except (
        TimeoutError,
        OSError,
        asyncpg.InterfaceError,
        asyncpg.CannotConnectNowError,
        asyncpg.TooManyConnectionsError,
        asyncpg.ConnectionFailureError,
        asyncpg.AdminShutdownError,
    ) as exc:
        raise Unavailable(f"database unavailable: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise StorageError(f"database error: {exc}") from exc


UsageKey = tuple[str, str, int]  # tenant, storage class, shard


class _Session:
    def __init__(self, conn: Connection, clock: Clock, usage: dict[UsageKey, list[int]]) -> None:
        self.conn = conn
        self.clock = clock
        self.usage = usage  # counter deltas, applied just before COMMIT

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await _translated(self.conn.fetchrow(sql, *args))

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await _translated(self.conn.fetch(sql, *args))

    async def execute(self, sql: str, *args: Any) -> str:
        return await _translated(self.conn.execute(sql, *args))


class PostgresObjectRepository:
    def __init__(self, session: _Session) -> None:
        self._s = session

    async def add_writing(self, upload: NewUpload) -> None:
        await self._s.execute(
            "INSERT INTO objects (id, tenant_id, namespace, key, state, storage_class,"
            " content_type, created_at, updated_at, owner)"
            " VALUES ($1, $2, $3, $4, 'WRITING', $5, $6, $7, $7, $8)",
            upload.id,
            str(upload.tenant_id),
            str(upload.namespace),
            str(upload.key),
            upload.storage_class.value,
            upload.content_type,
            upload.created_at,
            upload.owner,
        )

    async def commit_upload(
        self, upload_id: UUID, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        row = await self._s.fetchrow(
            "UPDATE objects SET state = 'COMMITTED', content_hash = $1, size_bytes = $2,"
            " created_at = $3, updated_at = $3, commit_seq = nextval('objects_commit_seq')"
            f" WHERE id = $4 AND state = 'WRITING' RETURNING {SELECT_OBJECT}",
            content_hash.hex,
            size_bytes,
            self._s.clock.now(),
            upload_id,
        )
        if row is None:
            raise NotFound("the upload's WRITING row is gone")
        version = _version(row)
        await self._count_usage([version], +1)
        return version

    async def discard_writing(
        self, upload_id: UUID, *, last_touched: datetime | None = None
    ) -> bool:
        row = await self._s.fetchrow(
            "DELETE FROM objects WHERE id = $1 AND state = 'WRITING'"
            " AND ($2::timestamptz IS NULL OR updated_at <= $2) RETURNING id",
            upload_id,
            last_touched,
        )
        return row is not None

    async def newest(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> ObjectVersion | None:
        row = await self._s.fetchrow(
            f"SELECT {SELECT_OBJECT} FROM objects WHERE tenant_id = $1 AND namespace = $2"
            " AND key = $3 AND state = 'COMMITTED' ORDER BY commit_seq DESC LIMIT 1",
            str(tenant_id),
            str(namespace),
            str(key),
        )
        return _version(row) if row else None

    async def lock_key(self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey) -> None:
        """Serialise commits to one key across processes until the transaction ends."""
        await self._s.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            f"{tenant_id}/{namespace}/{key}",  # unambiguous: names hold no "/"
        )

    async def get(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        row = await self._s.fetchrow(
            f"SELECT {SELECT_OBJECT} FROM objects WHERE id = $1 AND tenant_id = $2"
            " AND state = 'COMMITTED'",
            object_id,
            str(tenant_id),
        )
        return _version(row) if row else None

    async def mark_deleting(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        row = await self._s.fetchrow(
            "UPDATE objects SET state = 'DELETING', updated_at = $1 WHERE id = $2"
            f" AND tenant_id = $3 AND state = 'COMMITTED' RETURNING {SELECT_OBJECT}",
            self._s.clock.now(),
            object_id,
            str(tenant_id),
        )
        if row is None:
            return None
        version = _version(row)
        await self._count_usage([version], -1)
        return version

    async def mark_key_deleting(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> list[ObjectVersion]:
        rows = await self._s.fetch(
            "UPDATE objects SET state = 'DELETING', updated_at = $1 WHERE tenant_id = $2"
            f" AND namespace = $3 AND key = $4 AND state = 'COMMITTED' RETURNING {SELECT_OBJECT}",
            self._s.clock.now(),
            str(tenant_id),
            str(namespace),
            str(key),
        )
        versions = [_version(r) for r in rows]
        await self._count_usage(versions, -1)
        return versions

    async def _count_usage(self, versions: list[ObjectVersion], sign: int) -> None:
        """Record usage deltas; the unit of work applies them at commit (see _apply_usage)."""
        shard = random.randrange(USAGE_SHARDS)
        for storage_class, (objects, size) in usage_deltas(versions, sign).items():
            delta = self._s.usage.setdefault(
                (versions[0].tenant_id, storage_class.value, shard), [0, 0]
            )
            delta[0] += objects
            delta[1] += size

    async def list_page(self, query: ListQuery) -> list[ObjectVersion]:
        params = Params(numbered=True)
        sql = list_page_sql(query, params)
        values = [str(v) if isinstance(v, str) else v for v in params.values]
        return [_version(r) for r in await self._s.fetch(sql, *values)]

    async def usage(self, tenant_id: TenantId) -> list[ClassUsage]:
        rows = await self._s.fetch(USAGE_SQL.format(tenant="$1"), str(tenant_id))
        return [ClassUsage(StorageClass(r[0]), int(r[1]), int(r[2])) for r in rows]

    async def census(self) -> list[Census]:
        rows = await self._s.fetch(CENSUS_SQL)
        return [
            Census(r[0], r[1], ObjectState(r[2]), StorageClass(r[3]), r[4], int(r[5])) for r in rows
        ]

    async def touch_writing(self, upload_id: UUID) -> None:
        await self._s.execute(
            "UPDATE objects SET updated_at = $1 WHERE id = $2 AND state = 'WRITING'",
            self._s.clock.now(),
            upload_id,
        )

    async def writing_older_than(self, older_than: datetime, limit: int) -> list[WritingUpload]:
        rows = await self._s.fetch(
            "SELECT id, storage_class, owner, updated_at FROM objects WHERE state = 'WRITING'"
            " AND updated_at < $1 ORDER BY updated_at LIMIT $2",
            older_than,
            limit,
        )
        return [WritingUpload(r[0], StorageClass(r[1]), r[2] or "", r[3]) for r in rows]

    async def writing_among(self, upload_ids: list[UUID]) -> set[UUID]:
        rows = await self._s.fetch(
            "SELECT id FROM objects WHERE state = 'WRITING' AND id = ANY($1::uuid[])",
            upload_ids,
        )
        return {r[0] for r in rows}

    async def finish_deletes(self, limit: int) -> int:
        rows = await self._s.fetch(
            "UPDATE objects SET state = 'DELETED', updated_at = $1 WHERE id IN"
            " (SELECT id FROM objects WHERE state = 'DELETING' LIMIT $2 FOR UPDATE SKIP LOCKED)"
            " RETURNING id",
            self._s.clock.now(),
            limit,
        )
        return len(rows)

    async def purge_deleted(self, older_than: datetime, limit: int) -> int:
        rows = await self._s.fetch(
            "DELETE FROM objects WHERE id IN (SELECT id FROM objects WHERE state = 'DELETED'"
            " AND updated_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id",
            older_than,
            limit,
        )
        return len(rows)

    async def ids_of_blob(self, location: BlobLocation) -> list[UUID]:
        rows = await self._s.fetch(
            "SELECT id FROM objects WHERE storage_class = $1 AND content_hash = $2"
            " AND state = 'COMMITTED' ORDER BY id",
            location.storage_class.value,
            location.content_hash.hex,
        )
        return [r[0] for r in rows]

    async def without_blob_row(self, limit: int) -> list[ObjectVersion]:
        columns = ", ".join(f"o.{c.strip()}" for c in SELECT_OBJECT.split(","))
        rows = await self._s.fetch(
            f"SELECT {columns} FROM objects o WHERE o.state = 'COMMITTED' AND NOT EXISTS"
            " (SELECT 1 FROM blobs b WHERE b.storage_class = o.storage_class"
            " AND b.content_hash = o.content_hash) LIMIT $1",
            limit,
        )
        return [_version(r) for r in rows]


class PostgresBlobIndex:
    def __init__(self, session: _Session) -> None:
        self._s = session

    async def acquire(
        self, storage_class: StorageClass, content_hash: ContentHash, size_bytes: int
    ) -> bool:
        # The upsert's row lock lasts until commit: GC cannot delete this row meanwhile.
        row = await self._s.fetchrow(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count, created_at)"
            " VALUES ($1, $2, $3, 1, $4) ON CONFLICT (storage_class, content_hash)"
            " DO UPDATE SET ref_count = blobs.ref_count + 1, released_at = NULL"
            " RETURNING ref_count",
            storage_class.value,
            content_hash.hex,
            size_bytes,
            self._s.clock.now(),
        )
        return row is not None and row[0] == 1

    async def release(self, storage_class: StorageClass, content_hash: ContentHash) -> None:
        await self._s.execute(
            "UPDATE blobs SET ref_count = ref_count - 1,"
            " released_at = CASE WHEN ref_count = 1 THEN $1 ELSE released_at END"
            " WHERE storage_class = $2 AND content_hash = $3 AND ref_count > 0",
            self._s.clock.now(),
            storage_class.value,
            content_hash.hex,
        )

    async def unreferenced(self, released_before: datetime, limit: int) -> list[BlobLocation]:
        rows = await self._s.fetch(
            "SELECT storage_class, content_hash FROM blobs WHERE ref_count = 0"
            " AND released_at <= $1 ORDER BY released_at LIMIT $2",
            released_before,
            limit,
        )
        return [BlobLocation(StorageClass(r[0]), ContentHash(r[1])) for r in rows]

    async def forget_if_unreferenced(
        self, location: BlobLocation, released_before: datetime
    ) -> bool:
        row = await self._s.fetchrow(
            "DELETE FROM blobs WHERE storage_class = $1 AND content_hash = $2 AND ref_count = 0"
            " AND released_at <= $3 RETURNING content_hash",
            location.storage_class.value,
            location.content_hash.hex,
            released_before,
        )
        return row is not None

    async def claim_orphan(self, location: BlobLocation, size_bytes: int) -> bool:
        now = self._s.clock.now()
        row = await self._s.fetchrow(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count,"
            " released_at, created_at) VALUES ($1, $2, $3, 0, $4, $4)"
            " ON CONFLICT (storage_class, content_hash) DO NOTHING RETURNING content_hash",
            location.storage_class.value,
            location.content_hash.hex,
            size_bytes,
            now,
        )
        return row is not None

    async def forget(self, location: BlobLocation) -> None:
        await self._s.execute(
            "DELETE FROM blobs WHERE storage_class = $1 AND content_hash = $2",
            location.storage_class.value,
            location.content_hash.hex,
        )

    async def known(self, locations: list[BlobLocation]) -> set[BlobLocation]:
        found: set[BlobLocation] = set()
        for storage_class in StorageClass:
            hashes = [x.content_hash.hex for x in locations if x.storage_class is storage_class]
            if not hashes:
                continue
            rows = await self._s.fetch(
                "SELECT content_hash FROM blobs WHERE storage_class = $1"
                " AND content_hash = ANY($2::text[])",
                storage_class.value,
                hashes,
            )
            found.update(BlobLocation(storage_class, ContentHash(r[0])) for r in rows)
        return found

    async def audit(self, after: BlobLocation | None, limit: int) -> list[BlobAudit]:
        start = (after.storage_class.value, after.content_hash.hex) if after else ("", "")
        rows = await self._s.fetch(
            "SELECT b.storage_class, b.content_hash, b.size_bytes, b.ref_count,"
            " (SELECT COUNT(*) FROM objects o WHERE o.storage_class = b.storage_class"
            " AND o.content_hash = b.content_hash AND o.state = 'COMMITTED')"
            " FROM blobs b WHERE (b.storage_class, b.content_hash) > ($1, $2)"
            " ORDER BY b.storage_class, b.content_hash LIMIT $3",
            *start,
            limit,
        )
        return [
            BlobAudit(BlobLocation(StorageClass(r[0]), ContentHash(r[1])), r[2], r[3], int(r[4]))
            for r in rows
        ]

    async def totals(self) -> tuple[int, int]:
        row = await self._s.fetchrow("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM blobs")
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def set_ref_count(self, location: BlobLocation, ref_count: int) -> None:
        await self._s.execute(
            # $1 typed once: used bare in both places it is deduced as two types.
            "UPDATE blobs SET ref_count = $1::bigint,"
            " released_at = CASE WHEN $1::bigint = 0 THEN COALESCE(released_at, $2) ELSE NULL END"
            " WHERE storage_class = $3 AND content_hash = $4",
            ref_count,
            self._s.clock.now(),
            location.storage_class.value,
            location.content_hash.hex,
        )


class PostgresLeaseRepository:
    def __init__(self, session: _Session) -> None:
        self._s = session

    async def claim(
        self, name: str, holder: str, until: datetime, *, replacing: str | None = None
    ) -> bool:
        row = await self._s.fetchrow(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at WHERE leases.holder = excluded.holder"
            " OR leases.expires_at < $4 OR leases.holder = $5 RETURNING name",
            name,
            holder,
            until,
            self._s.clock.now(),
            replacing,
        )
        return row is not None

    async def holder_of(self, name: str) -> str | None:
        row = await self._s.fetchrow("SELECT holder FROM leases WHERE name = $1", name)
        return str(row[0]) if row else None

    async def release(self, name: str, holder: str) -> None:
        await self._s.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", name, holder)


class PostgresApiKeyRepository:
    _COLS = "id, key_hash, tenants, scopes, created_at, revoked_at"

    def __init__(self, session: _Session) -> None:
        self._s = session

    async def add(self, record: ApiKeyRecord) -> None:
        await self._s.execute(
            "INSERT INTO api_keys (id, key_hash, tenants, scopes, created_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            record.id,
            record.key_hash,
            sorted(record.tenants),
            sorted(s.value for s in record.scopes),
            record.created_at,
        )

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._s.fetchrow(f"SELECT {self._COLS} FROM api_keys WHERE id = $1", key_id)
        return _api_key(row) if row else None

    async def list_all(self) -> list[ApiKeyRecord]:
        rows = await self._s.fetch(f"SELECT {self._COLS} FROM api_keys ORDER BY created_at")
        return [_api_key(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        row = await self._s.fetchrow(
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id",
            self._s.clock.now(),
            key_id,
        )
        return row is not None

    async def count(self) -> int:
        # Serialise first-start key creation of processes starting together. A snapshot
        # runs in autocommit, where LOCK TABLE is an error (and pointless).
        if self._s.conn.is_in_transaction():
            await self._s.execute("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
        row = await self._s.fetchrow("SELECT COUNT(*) FROM api_keys")
        return int(row[0]) if row else 0


async def _acquire(pool: asyncpg.Pool) -> Connection:
    return await pool.acquire()


class PostgresUnitOfWork:
    """One transaction on a pooled connection, or autocommit reads for a snapshot."""

    def __init__(self, store: PostgresMetadataStore, *, read_only: bool, durable: bool) -> None:
        self._store = store
        self._read_only = read_only
        self._durable = durable
        self._committed = False
        self._conn: Connection | None = None
        self._transaction: Any = None
        self._usage: dict[UsageKey, list[int]] = {}

    async def __aenter__(self) -> Self:
        pool = await self._store._get_pool()
        conn = self._conn = await _translated(_acquire(pool))
        try:
            if not self._read_only:
                self._transaction = conn.transaction()
                await _translated(self._transaction.start())
                if not self._durable:
                    # Only this transaction may be lost on a crash; nothing else is relaxed.
                    await _translated(conn.execute("SET LOCAL synchronous_commit = off"))
        except BaseException:
            self._conn = None
            await pool.release(conn)
            raise
        return self

    @property
    def session(self) -> _Session:
        if self._conn is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return _Session(self._conn, self._store.clock, self._usage)

    @property
    def objects(self) -> PostgresObjectRepository:
        return PostgresObjectRepository(self.session)

    @property
    def blobs(self) -> PostgresBlobIndex:
        return PostgresBlobIndex(self.session)

    @property
    def api_keys(self) -> PostgresApiKeyRepository:
        return PostgresApiKeyRepository(self.session)

    @property
    def leases(self) -> PostgresLeaseRepository:
        return PostgresLeaseRepository(self.session)

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("commit() on a read-only snapshot")
        await self._apply_usage()
        await _translated(self._transaction.commit())
        self._committed = True

    async def _apply_usage(self) -> None:
        """Usage counter rows are locked last, in one global order, just before COMMIT.

        Taken earlier, in whatever order the work ran, they would deadlock against the
        blob rows (an upload locks blob then counter, a delete counter then blob).
        """
        session = self.session
        for (tenant, storage_class, shard), (objects, size) in sorted(self._usage.items()):
            if objects or size:
                await session.execute(
                    COUNT_USAGE_SQL.format("$1", "$2", "$3", "$4", "$5"),
                    tenant,
                    storage_class,
                    shard,
                    objects,
                    size,
                )
        self._usage.clear()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        pool = await self._store._get_pool()
        try:
            if self._transaction is not None and not self._committed:
                try:
                    await self._transaction.rollback()
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    self._conn.terminate()  # a broken connection is dropped, not reused
        finally:
            await pool.release(self._conn)
            self._conn = None


class PostgresMetadataStore:
    """The metadata store in a PostgreSQL 14+ database."""

    def __init__(self, dsn: str, clock: Clock, *, pool_max: int = _POOL_MAX) -> None:
        self._dsn = dsn
        self.clock = clock
        self._pool_max = pool_max
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await _translated(
                        asyncpg.create_pool(
                            self._dsn, min_size=1, max_size=self._pool_max, command_timeout=30
                        )
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

    async def ping(self) -> None:
        async with self.snapshot() as uow:
            await uow.session.fetchrow("SELECT 1")

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        pool = await self._get_pool()
        async with pool.acquire() as conn:
            yield conn

    async def migrate(self) -> list[str]:
        async with self._connection() as conn:
            return await _translated(self._migrate(conn, self.clock))

    @staticmethod
    async def _migrate(conn: Connection, clock: Clock) -> list[str]:
        # A session advisory lock serialises migrators of several processes.
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            done = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for migration in migrations_for("postgres"):
                if migration.version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES ($1, $2, $3)",
                        migration.version,
                        migration.name,
                        clock.now(),
                    )
                applied.append(f"{migration.version:04d}_{migration.name}")
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
