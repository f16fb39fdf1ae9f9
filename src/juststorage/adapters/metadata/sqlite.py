"""SQLite adapter of the metadata port: the embedded default.

One writer connection per process, guarded by an asyncio lock for the length of
a unit of work, and a small pool of read-only connections; statements run in
worker threads. WAL mode with `synchronous=FULL`: a commit survives power loss
(in WAL mode `NORMAL` may lose the last commits, which SPEC §5 forbids).
Across processes, `BEGIN IMMEDIATE` and the busy timeout serialise writers.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from uuid import UUID

import anyio.to_thread

from juststorage.adapters.metadata.migrations import migrations_for
from juststorage.adapters.metadata.queries import (
    CENSUS_SQL,
    COUNT_USAGE_SQL,
    SELECT_OBJECT,
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
from juststorage.domain.errors import (
    InsufficientStorage,
    NotFound,
    StorageError,
    Unavailable,
)
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
_BUSY_TIMEOUT_MS = 10_000
_READERS = 4
_COLUMNS = SELECT_OBJECT


def sqlite_path_from_url(url: str) -> Path:
    """`sqlite:///relative/path` or `sqlite:////absolute/path` → the file's path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a sqlite URL: {url!r}")
    return Path(url.removeprefix("sqlite:///"))


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _version(row: tuple[Any, ...]) -> ObjectVersion:
    """A stored row: its values were validated on the way in, so they are not re-checked."""
    return ObjectVersion(
        id=UUID(row[0]),
        tenant_id=TenantId.trusted(row[1]),
        namespace=Namespace.trusted(row[2]),
        key=ObjectKey.trusted(row[3]),
        content_hash=ContentHash.trusted(row[4]),
        size_bytes=row[5],
        storage_class=StorageClass(row[6]),
        content_type=row[7],
        created_at=_parse_ts(row[8]),
        state=ObjectState(row[9]),
        commit_seq=row[10] or 0,
    )


def _api_key(row: tuple[Any, ...]) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row[0],
        key_hash=row[1],
        tenants=frozenset(json.loads(row[2])),
        scopes=frozenset(Scope(s) for s in json.loads(row[3])),
        created_at=_parse_ts(row[4]),
        revoked_at=_parse_ts(row[5]) if row[5] else None,
    )


@contextmanager
def _translated_errors() -> Iterator[None]:
    """sqlite3 errors become domain errors at this adapter's edge."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
            raise InsufficientStorage("the metadata database's disk is full") from exc
        raise Unavailable(f"database unavailable: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"database error: {exc}") from exc


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
        # FULL: the WAL is fsynced at every commit, so a commit survives power loss.
        conn.execute("PRAGMA synchronous = FULL")
        if read_only:
            conn.execute("PRAGMA query_only = 1")
    return conn


class _Session:
    """Runs statements on one connection: in a worker thread, or inline when `inline`.

    Inside a write transaction (after `BEGIN IMMEDIATE` holds SQLite's write lock)
    statements cannot wait for a lock and touch only cached pages, so they run on
    the event loop: a thread hop costs more than the statement. What may block —
    BEGIN (waits for other processes), COMMIT (fsync), and every read, which may
    be a long listing — runs in a worker thread.
    """

    def __init__(self, conn: sqlite3.Connection, clock: Clock, *, inline: bool = False) -> None:
        self.conn = conn
        self.clock = clock
        self.inline = inline

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.inline:
            return self._call(fn)
        return await anyio.to_thread.run_sync(self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with _translated_errors():
            return fn(self.conn)

    async def fetchone(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return await self.run(lambda c: c.execute(sql, params).fetchone())

    async def fetchall(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self.run(lambda c: c.execute(sql, params).fetchall())

    def now(self) -> str:
        return _ts(self.clock.now())


class SqliteObjectRepository:
    def __init__(self, session: _Session) -> None:
        self._s = session

    async def add_writing(self, upload: NewUpload) -> None:
        created = _ts(upload.created_at)
        await self._s.fetchone(
            "INSERT INTO objects (id, tenant_id, namespace, key, state, storage_class,"
            " content_type, created_at, updated_at, owner)"
            " VALUES (?, ?, ?, ?, 'WRITING', ?, ?, ?, ?, ?)",
            (
                str(upload.id),
                upload.tenant_id,
                upload.namespace,
                upload.key,
                upload.storage_class.value,
                upload.content_type,
                created,
                created,
                upload.owner,
            ),
        )

    async def commit_upload(
        self, upload_id: UUID, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        now = self._s.now()
        row = await self._s.fetchone(
            "UPDATE objects SET state = 'COMMITTED', content_hash = ?, size_bytes = ?,"
            " created_at = ?, updated_at = ?,"
            " commit_seq = (SELECT COALESCE(MAX(commit_seq), 0) + 1 FROM objects)"
            f" WHERE id = ? AND state = 'WRITING' RETURNING {_COLUMNS}",
            (content_hash.hex, size_bytes, now, now, str(upload_id)),
        )
        if row is None:
            raise NotFound("the upload's WRITING row is gone")
        version = _version(row)
        await self._count_usage([version], +1)
        return version

    async def discard_writing(
        self, upload_id: UUID, *, last_touched: datetime | None = None
    ) -> bool:
        row = await self._s.fetchone(
            "DELETE FROM objects WHERE id = ? AND state = 'WRITING'"
            " AND (? IS NULL OR updated_at <= ?) RETURNING id",
            (str(upload_id), *(2 * [_ts(last_touched) if last_touched else None])),
        )
        return row is not None

    async def newest(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> ObjectVersion | None:
        row = await self._s.fetchone(
            f"SELECT {_COLUMNS} FROM objects WHERE tenant_id = ? AND namespace = ? AND key = ?"
            " AND state = 'COMMITTED' ORDER BY commit_seq DESC LIMIT 1",
            (tenant_id, namespace, key),
        )
        return _version(row) if row else None

    async def lock_key(self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey) -> None:
        """Nothing to do: a write transaction already holds SQLite's one write lock."""

    async def get(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        row = await self._s.fetchone(
            f"SELECT {_COLUMNS} FROM objects WHERE id = ? AND tenant_id = ?"
            " AND state = 'COMMITTED'",
            (str(object_id), tenant_id),
        )
        return _version(row) if row else None

    async def mark_deleting(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        row = await self._s.fetchone(
            "UPDATE objects SET state = 'DELETING', updated_at = ?"
            f" WHERE id = ? AND tenant_id = ? AND state = 'COMMITTED' RETURNING {_COLUMNS}",
            (self._s.now(), str(object_id), tenant_id),
        )
        if row is None:
            return None
        version = _version(row)
        await self._count_usage([version], -1)
        return version

    async def mark_key_deleting(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> list[ObjectVersion]:
        rows = await self._s.fetchall(
            "UPDATE objects SET state = 'DELETING', updated_at = ? WHERE tenant_id = ?"
            f" AND namespace = ? AND key = ? AND state = 'COMMITTED' RETURNING {_COLUMNS}",
            (self._s.now(), tenant_id, namespace, key),
        )
        versions = [_version(r) for r in rows]
        await self._count_usage(versions, -1)
        return versions

    async def _count_usage(self, versions: list[ObjectVersion], sign: int) -> None:
        """Keep usage_counters in step, in the same transaction (one shard: one writer)."""
        for storage_class, (objects, size) in usage_deltas(versions, sign).items():
            await self._s.fetchone(
                COUNT_USAGE_SQL.format("?", "?", "0", "?", "?"),
                (versions[0].tenant_id, storage_class.value, objects, size),
            )

    async def list_page(self, query: ListQuery) -> list[ObjectVersion]:
        params = Params(numbered=False)
        sql = list_page_sql(query, params)
        return [_version(r) for r in await self._s.fetchall(sql, tuple(params.values))]

    async def usage(self, tenant_id: TenantId) -> list[ClassUsage]:
        rows = await self._s.fetchall(USAGE_SQL.format(tenant="?"), (tenant_id,))
        return [ClassUsage(StorageClass(r[0]), r[1], r[2]) for r in rows]

    async def census(self) -> list[Census]:
        rows = await self._s.fetchall(CENSUS_SQL, ())
        return [Census(r[0], r[1], ObjectState(r[2]), StorageClass(r[3]), r[4], r[5]) for r in rows]

    async def touch_writing(self, upload_id: UUID) -> None:
        await self._s.fetchone(
            "UPDATE objects SET updated_at = ? WHERE id = ? AND state = 'WRITING'",
            (self._s.now(), str(upload_id)),
        )

    async def writing_older_than(self, older_than: datetime, limit: int) -> list[WritingUpload]:
        rows = await self._s.fetchall(
            "SELECT id, storage_class, owner, updated_at FROM objects WHERE state = 'WRITING'"
            " AND updated_at < ? ORDER BY updated_at LIMIT ?",
            (_ts(older_than), limit),
        )
        return [
            WritingUpload(UUID(r[0]), StorageClass(r[1]), r[2] or "", _parse_ts(r[3])) for r in rows
        ]

    async def writing_among(self, upload_ids: list[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        ids = [str(i) for i in upload_ids]
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            rows = await self._s.fetchall(
                f"SELECT id FROM objects WHERE state = 'WRITING' AND id IN"
                f" ({', '.join('?' * len(batch))})",
                tuple(batch),
            )
            found.update(UUID(r[0]) for r in rows)
        return found

    async def finish_deletes(self, limit: int) -> int:
        rows = await self._s.fetchall(
            "UPDATE objects SET state = 'DELETED', updated_at = ? WHERE id IN"
            " (SELECT id FROM objects WHERE state = 'DELETING' LIMIT ?) RETURNING id",
            (self._s.now(), limit),
        )
        return len(rows)

    async def purge_deleted(self, older_than: datetime, limit: int) -> int:
        rows = await self._s.fetchall(
            "DELETE FROM objects WHERE id IN (SELECT id FROM objects WHERE state = 'DELETED'"
            " AND updated_at < ? LIMIT ?) RETURNING id",
            (_ts(older_than), limit),
        )
        return len(rows)

    async def ids_of_blob(self, location: BlobLocation) -> list[UUID]:
        rows = await self._s.fetchall(
            "SELECT id FROM objects WHERE storage_class = ? AND content_hash = ?"
            " AND state = 'COMMITTED' ORDER BY id",
            (location.storage_class.value, location.content_hash.hex),
        )
        return [UUID(r[0]) for r in rows]

    async def without_blob_row(self, limit: int) -> list[ObjectVersion]:
        columns = ", ".join(f"o.{c.strip()}" for c in _COLUMNS.split(","))
        rows = await self._s.fetchall(
            f"SELECT {columns} FROM objects o WHERE o.state = 'COMMITTED' AND NOT EXISTS"
            " (SELECT 1 FROM blobs b WHERE b.storage_class = o.storage_class"
            " AND b.content_hash = o.content_hash) LIMIT ?",
            (limit,),
        )
        return [_version(r) for r in rows]


class SqliteBlobIndex:
    def __init__(self, session: _Session) -> None:
        self._s = session

    async def acquire(
        self, storage_class: StorageClass, content_hash: ContentHash, size_bytes: int
    ) -> bool:
        row = await self._s.fetchone(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count, created_at)"
            " VALUES (?, ?, ?, 1, ?) ON CONFLICT (storage_class, content_hash)"
            " DO UPDATE SET ref_count = ref_count + 1, released_at = NULL"
            " RETURNING ref_count",
            (storage_class.value, content_hash.hex, size_bytes, self._s.now()),
        )
        return row is not None and row[0] == 1

    async def release(self, storage_class: StorageClass, content_hash: ContentHash) -> None:
        # Right-hand sides see the old row: released_at is stamped when 1 becomes 0.
        await self._s.fetchone(
            "UPDATE blobs SET ref_count = ref_count - 1,"
            " released_at = CASE WHEN ref_count = 1 THEN ? ELSE released_at END"
            " WHERE storage_class = ? AND content_hash = ? AND ref_count > 0",
            (self._s.now(), storage_class.value, content_hash.hex),
        )

    async def unreferenced(self, released_before: datetime, limit: int) -> list[BlobLocation]:
        rows = await self._s.fetchall(
            "SELECT storage_class, content_hash FROM blobs WHERE ref_count = 0"
            " AND released_at <= ? ORDER BY released_at LIMIT ?",
            (_ts(released_before), limit),
        )
        return [BlobLocation(StorageClass(r[0]), ContentHash(r[1])) for r in rows]

    async def forget_if_unreferenced(
        self, location: BlobLocation, released_before: datetime
    ) -> bool:
        row = await self._s.fetchone(
            "DELETE FROM blobs WHERE storage_class = ? AND content_hash = ? AND ref_count = 0"
            " AND released_at <= ? RETURNING content_hash",
            (location.storage_class.value, location.content_hash.hex, _ts(released_before)),
        )
        return row is not None

    async def claim_orphan(self, location: BlobLocation, size_bytes: int) -> bool:
        row = await self._s.fetchone(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count,"
            " released_at, created_at) VALUES (?, ?, ?, 0, ?, ?)"
            " ON CONFLICT (storage_class, content_hash) DO NOTHING RETURNING content_hash",
            (
                location.storage_class.value,
                location.content_hash.hex,
                size_bytes,
                self._s.now(),
                self._s.now(),
            ),
        )
        return row is not None

    async def forget(self, location: BlobLocation) -> None:
        await self._s.fetchone(
            "DELETE FROM blobs WHERE storage_class = ? AND content_hash = ?",
            (location.storage_class.value, location.content_hash.hex),
        )

    async def known(self, locations: list[BlobLocation]) -> set[BlobLocation]:
        found: set[BlobLocation] = set()
        for storage_class in StorageClass:
            hashes = [
                loc.content_hash.hex for loc in locations if loc.storage_class is storage_class
            ]
            for start in range(0, len(hashes), 500):
                batch = hashes[start : start + 500]
                marks = ", ".join("?" * len(batch))
                rows = await self._s.fetchall(
                    f"SELECT content_hash FROM blobs WHERE storage_class = ?"
                    f" AND content_hash IN ({marks})",
                    (storage_class.value, *batch),
                )
                found.update(BlobLocation(storage_class, ContentHash(r[0])) for r in rows)
        return found

    async def audit(self, after: BlobLocation | None, limit: int) -> list[BlobAudit]:
        start = (after.storage_class.value, after.content_hash.hex) if after else ("", "")
        rows = await self._s.fetchall(
            "SELECT b.storage_class, b.content_hash, b.size_bytes, b.ref_count,"
            " (SELECT COUNT(*) FROM objects o WHERE o.storage_class = b.storage_class"
            " AND o.content_hash = b.content_hash AND o.state = 'COMMITTED')"
            " FROM blobs b WHERE (b.storage_class, b.content_hash) > (?, ?)"
            " ORDER BY b.storage_class, b.content_hash LIMIT ?",
            (*start, limit),
        )
        return [
            BlobAudit(BlobLocation(StorageClass(r[0]), ContentHash(r[1])), r[2], r[3], r[4])
            for r in rows
        ]

    async def totals(self) -> tuple[int, int]:
        row = await self._s.fetchone("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM blobs", ())
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def set_ref_count(self, location: BlobLocation, ref_count: int) -> None:
        await self._s.fetchone(
            "UPDATE blobs SET ref_count = ?,"
            " released_at = CASE WHEN ? = 0 THEN COALESCE(released_at, ?) ELSE NULL END"
            " WHERE storage_class = ? AND content_hash = ?",
            (
                ref_count,
                ref_count,
                self._s.now(),
                location.storage_class.value,
                location.content_hash.hex,
            ),
        )


class SqliteLeaseRepository:
    def __init__(self, session: _Session) -> None:
        self._s = session

    async def claim(
        self, name: str, holder: str, until: datetime, *, replacing: str | None = None
    ) -> bool:
        row = await self._s.fetchone(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at WHERE leases.holder = excluded.holder"
            " OR leases.expires_at < ? OR leases.holder = ? RETURNING name",
            (name, holder, _ts(until), self._s.now(), replacing),
        )
        return row is not None

    async def holder_of(self, name: str) -> str | None:
        row = await self._s.fetchone("SELECT holder FROM leases WHERE name = ?", (name,))
        return str(row[0]) if row else None

    async def release(self, name: str, holder: str) -> None:
        await self._s.fetchone("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))


class SqliteApiKeyRepository:
    _COLS = "id, key_hash, tenants, scopes, created_at, revoked_at"

    def __init__(self, session: _Session) -> None:
        self._s = session

    async def add(self, record: ApiKeyRecord) -> None:
        await self._s.fetchone(
            "INSERT INTO api_keys (id, key_hash, tenants, scopes, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.id,
                record.key_hash,
                json.dumps(sorted(record.tenants)),
                json.dumps(sorted(s.value for s in record.scopes)),
                _ts(record.created_at),
            ),
        )

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._s.fetchone(f"SELECT {self._COLS} FROM api_keys WHERE id = ?", (key_id,))
        return _api_key(row) if row else None

    async def list_all(self) -> list[ApiKeyRecord]:
        rows = await self._s.fetchall(f"SELECT {self._COLS} FROM api_keys ORDER BY created_at", ())
        return [_api_key(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        row = await self._s.fetchone(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            (self._s.now(), key_id),
        )
        return row is not None

    async def count(self) -> int:
        row = await self._s.fetchone("SELECT COUNT(*) FROM api_keys", ())
        return int(row[0]) if row else 0


class SqliteUnitOfWork:
    """One transaction on the writer connection, or a read-only view on a reader."""

    def __init__(self, store: SqliteMetadataStore, *, read_only: bool, durable: bool) -> None:
        self._store = store
        self._read_only = read_only
        self._durable = durable
        self._committed = False
        self._session: _Session | None = None

    async def __aenter__(self) -> Self:
        if self._read_only:
            conn = await self._store._acquire_reader()
            self._session = _Session(conn, self._store.clock)
        else:
            await self._store._write_lock.acquire()
            try:
                self._session = _Session(self._store._writer(), self._store.clock)
                durable = self._durable
                # Usually no other process holds the write lock: try without waiting,
                # on the loop; only when busy, wait for it (busy timeout) in a thread.
                if not _try_begin_write_now(self._session.conn, durable):
                    await self._session.run(lambda c: _begin_write(c, durable))
                self._session.inline = True
            except BaseException:
                self._store._write_lock.release()
                raise
        return self

    @property
    def session(self) -> _Session:
        if self._session is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return self._session

    @property
    def objects(self) -> SqliteObjectRepository:
        return SqliteObjectRepository(self.session)

    @property
    def blobs(self) -> SqliteBlobIndex:
        return SqliteBlobIndex(self.session)

    @property
    def api_keys(self) -> SqliteApiKeyRepository:
        return SqliteApiKeyRepository(self.session)

    @property
    def leases(self) -> SqliteLeaseRepository:
        return SqliteLeaseRepository(self.session)

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("commit() on a read-only snapshot")
        assert self._session is not None
        # COMMIT fsyncs the WAL (synchronous=FULL): off the event loop.
        await anyio.to_thread.run_sync(self._session._call, lambda c: c.execute("COMMIT"))
        self._committed = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
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
        raise Unavailable(f"database unavailable: {exc}") from exc
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


class SqliteMetadataStore:
    """The metadata store in one SQLite file."""

    def __init__(self, path: Path, clock: Clock) -> None:
        self.path = path
        self.clock = clock
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
        return await anyio.to_thread.run_sync(self._migrate)

    async def ping(self) -> None:
        async with self.snapshot() as uow:
            await uow.session.fetchone("SELECT 1", ())

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
            self._writer_conn = _connect(self.path, read_only=False)
        return self._writer_conn

    async def _acquire_reader(self) -> sqlite3.Connection:
        await self._reader_slots.acquire()
        try:
            if self._idle_readers:
                return self._idle_readers.pop()
            if self._writer_conn is None:
                # The writer creates the file in WAL mode before any reader opens it.
                await anyio.to_thread.run_sync(self._writer)
            return await anyio.to_thread.run_sync(lambda: _connect(self.path, read_only=True))
        except BaseException:
            self._reader_slots.release()
            raise

    def _release_reader(self, conn: sqlite3.Connection) -> None:
        self._idle_readers.append(conn)
        self._reader_slots.release()

    def _migrate(self) -> list[str]:
        conn = self._writer()
        lock_path = self.path.with_name(self.path.name + ".migrate-lock")
        with open(lock_path, "a") as lock_file, _translated_errors():
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
