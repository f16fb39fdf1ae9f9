"""The object repository and blob index in SQL, written once for SQLite and PostgreSQL.

Statements run on a `SqlSession` with the database's `Dialect` (see sql.py). The lock
orders and the conditions in the WHERE clauses are deliberate: docs/durability.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from juststorage.adapters.metadata.delimited import delimited_page_sql
from juststorage.adapters.metadata.queries import (
    CENSUS_SQL,
    HOLDS_CONTENT_SQL,
    NAMESPACES_SQL,
    SELECT_OBJECT,
    USAGE_SQL,
    Params,
    census_deltas,
    inline_address,
    list_page_sql,
    newest_by_key_sql,
    usage_deltas,
)
from juststorage.adapters.metadata.sql import Dialect, Row, SqlRepository
from juststorage.application.records import (
    BlobLocation,
    Census,
    ClassUsage,
    CommonPrefix,
    ListQuery,
    LocatedVersion,
    NamespaceUsage,
    WritingUpload,
)
from juststorage.application.summaries import Listed
from juststorage.domain.errors import NotFound, StorageError
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

_NEW_ROW_COLUMNS = (
    "id, tenant_id, namespace, key, state, storage_class, content_type, created_at,"
    " updated_at, owner, s3_etag, user_metadata"
)
_STORAGE_CLASSES = {c.value: c for c in StorageClass}
_OBJECT_COLUMNS = ", ".join(f"o.{c.strip()}" for c in SELECT_OBJECT.split(","))
# A version with its blob's address: the row's recorded one, else the content
# address. LEFT JOIN: a version whose blob row is lost (damage, for fsck) is still
# found, and its store then answers whether the bytes are there.
# An inline blob's bytes come in the same query (SPEC §8.1: one query, no file open),
# joined by the blob row's key only when the row's address is inline.
_LOCATED_COLUMNS = f"{_OBJECT_COLUMNS}, COALESCE(b.location, o.content_hash), i.data"
_LOCATED_FROM_BLOBS = (
    "objects o LEFT JOIN blobs b"
    " ON b.storage_class = o.storage_class AND b.content_hash = o.content_hash"
)
_LOCATED_FROM = (
    f"{_LOCATED_FROM_BLOBS} LEFT JOIN inline_blobs i"
    f" ON b.location = {inline_address('b.content_hash')}"
    " AND i.storage_class = b.storage_class AND i.content_hash = b.content_hash"
)
# Without the bytes (HEAD): the same version and address, inline_blobs not read.
_LOCATED_NO_BYTES = (
    f"{_OBJECT_COLUMNS}, COALESCE(b.location, o.content_hash), NULL FROM {_LOCATED_FROM_BLOBS}"
)


def _located_select(with_bytes: bool) -> str:
    return (
        f"SELECT {_LOCATED_COLUMNS} FROM {_LOCATED_FROM}"
        if with_bytes
        else f"SELECT {_LOCATED_NO_BYTES}"
    )


_STATES = {s.value: s for s in ObjectState}


def _version(row: Row, d: Dialect) -> ObjectVersion:
    """A stored row: its values were validated on the way in, so they are not re-checked.

    Positional arguments and dict lookups for the enums, which cost less than
    keywords and enum calls (docs/performance.md). Listings skip this: `list_page`.
    """
    return ObjectVersion(
        d.uuid_out(row[0]),
        TenantId.trusted(row[1]),
        Namespace.trusted(row[2]),
        ObjectKey.trusted(row[3]),
        ContentHash.trusted(row[4]),
        row[5],
        _STORAGE_CLASSES[row[6]],
        row[7],
        d.ts_out(row[8]),
        _STATES[row[9]],
        row[10] or 0,
        row[11],
        row[12],
    )


def _located(row: Row, d: Dialect) -> LocatedVersion:
    version = _version(row, d)
    data = row[14]
    return LocatedVersion(
        version,
        BlobLocation(version.storage_class, version.content_hash, row[13]),
        None if data is None else bytes(data),
    )


class SqlObjectRepository(SqlRepository):
    """`ObjectRepository` over a SQL session."""

    async def add_writing(self, upload: NewUpload) -> None:
        created = self._d.ts_in(upload.created_at)
        await self._s.execute(
            f"INSERT INTO objects ({_NEW_ROW_COLUMNS})"
            " VALUES (?, ?, ?, ?, 'WRITING', ?, ?, ?, ?, ?, ?, ?)",
            self._new_row(upload, created),
        )
        key = (str(upload.tenant_id), str(upload.namespace), upload.storage_class.value)
        await self._d.count_census(self._s, {(*key, ObjectState.WRITING.value): (1, 0)})

    async def insert_committed(
        self, upload: NewUpload, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        # One statement (a round trip on PostgreSQL), where WRITING + commit take two.
        # The version is built from what was written: only its commit_seq comes back.
        now = self._s.clock.now()
        row = await self._s.fetchone(
            f"INSERT INTO objects ({_NEW_ROW_COLUMNS}, content_hash, size_bytes, commit_seq)"
            " VALUES (?, ?, ?, ?, 'COMMITTED', ?, ?, ?, ?, ?, ?, ?, ?, ?,"
            f" {self._d.next_commit_seq}) RETURNING commit_seq",
            (*self._new_row(upload, self._d.ts_in(now)), content_hash.hex, size_bytes),
        )
        if row is None:
            raise StorageError("INSERT ... RETURNING returned no row")
        version = ObjectVersion(
            upload.id,
            upload.tenant_id,
            upload.namespace,
            upload.key,
            content_hash,
            size_bytes,
            upload.storage_class,
            upload.content_type,
            now,
            ObjectState.COMMITTED,
            row[0],
            upload.s3_etag,
            upload.user_metadata,
        )
        await self._count_usage([version], +1)
        await self._count_census([version], ObjectState.COMMITTED, +1)
        return version

    async def insert_committed_many(
        self, uploads: Sequence[tuple[NewUpload, ContentHash, int]]
    ) -> list[ObjectVersion]:
        if not self._d.batch_statements or len(uploads) < 2:
            return [await self.insert_committed(*each) for each in uploads]
        # One statement, each row taking its own commit_seq (a volatile default per
        # row); the versions are built from what was written, as insert_committed's.
        now = self._s.clock.now()
        stamp = self._d.ts_in(now)
        row = f"(?, ?, ?, ?, 'COMMITTED', ?, ?, ?, ?, ?, ?, ?, ?, ?, {self._d.next_commit_seq})"
        params = [
            value
            for upload, content_hash, size_bytes in uploads
            for value in (*self._new_row(upload, stamp), content_hash.hex, size_bytes)
        ]
        rows = await self._s.fetchall(
            f"INSERT INTO objects ({_NEW_ROW_COLUMNS}, content_hash, size_bytes, commit_seq)"
            f" VALUES {', '.join([row] * len(uploads))} RETURNING id, commit_seq",
            tuple(params),
        )
        seq_of = {self._d.uuid_out(r[0]): int(r[1]) for r in rows}
        versions = [
            ObjectVersion(
                upload.id,
                upload.tenant_id,
                upload.namespace,
                upload.key,
                content_hash,
                size_bytes,
                upload.storage_class,
                upload.content_type,
                now,
                ObjectState.COMMITTED,
                seq_of[upload.id],
                upload.s3_etag,
                upload.user_metadata,
            )
            for upload, content_hash, size_bytes in uploads
        ]
        for tenant in {v.tenant_id for v in versions}:
            await self._count_usage([v for v in versions if v.tenant_id == tenant], +1)
        await self._count_census(versions, ObjectState.COMMITTED, +1)
        return versions

    def _new_row(self, upload: NewUpload, stamp: object) -> tuple[object, ...]:
        """Values for `_NEW_ROW_COLUMNS` (but `state`), both timestamps `stamp`."""
        return (
            self._d.uuid_in(upload.id),
            str(upload.tenant_id),
            str(upload.namespace),
            str(upload.key),
            upload.storage_class.value,
            upload.content_type,
            stamp,
            stamp,
            upload.owner,
            upload.s3_etag,
            upload.user_metadata,
        )

    async def commit_upload(
        self,
        upload_id: UUID,
        content_hash: ContentHash,
        size_bytes: int,
        *,
        s3_etag: str | None = None,
    ) -> ObjectVersion:
        now = self._now()
        row = await self._s.fetchone(
            "UPDATE objects SET state = 'COMMITTED', content_hash = ?, size_bytes = ?,"
            f" created_at = ?, updated_at = ?, commit_seq = {self._d.next_commit_seq},"
            " s3_etag = COALESCE(?, s3_etag)"
            f" WHERE id = ? AND state = 'WRITING' RETURNING {SELECT_OBJECT}",
            (content_hash.hex, size_bytes, now, now, s3_etag, self._d.uuid_in(upload_id)),
        )
        if row is None:
            raise NotFound("the upload's WRITING row is gone")
        version = _version(row, self._d)
        await self._count_usage([version], +1)
        await self._count_census([version], ObjectState.WRITING, -1, sized=False)
        await self._count_census([version], ObjectState.COMMITTED, +1)
        return version

    async def discard_writing(
        self, upload_id: UUID, *, last_touched: datetime | None = None
    ) -> bool:
        touched = self._d.ts_in(last_touched) if last_touched else None
        row = await self._s.fetchone(
            "DELETE FROM objects WHERE id = ? AND state = 'WRITING'"
            f" AND ({self._d.nullable_ts} IS NULL OR updated_at <= ?)"
            " RETURNING tenant_id, namespace, storage_class",
            (self._d.uuid_in(upload_id), touched, touched),
        )
        if row is None:
            return False
        key = (row[0], row[1], row[2], ObjectState.WRITING.value)
        await self._d.count_census(self._s, {key: (-1, 0)})
        return True

    async def newest(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> ObjectVersion | None:
        row = await self._s.fetchone(
            f"SELECT {SELECT_OBJECT} FROM objects WHERE tenant_id = ? AND namespace = ?"
            " AND key = ? AND state = 'COMMITTED' ORDER BY commit_seq DESC LIMIT 1",
            (str(tenant_id), str(namespace), str(key)),
        )
        return _version(row, self._d) if row else None

    async def holds_content(
        self,
        tenant_id: TenantId,
        storage_class: StorageClass,
        content_hash: ContentHash,
        size_bytes: int,
    ) -> bool:
        # Read only from objects_committed_by_tenant_blob (migration 0009), which starts
        # with the tenant: the probe reads only the caller's rows (SPEC §5), where an
        # index by hash or a scan would step over every other tenant's rows of that
        # content first. HOLDS_CONTENT_SQL says how its shape keeps the planner to it.
        row = await self._s.fetchone(
            HOLDS_CONTENT_SQL.format(index=self._d.tenant_content_index),
            (str(tenant_id), storage_class.value, content_hash.hex, size_bytes),
        )
        return row is not None and row[0] == size_bytes

    async def lock_keys(self, keys: Sequence[tuple[TenantId, Namespace, ObjectKey]]) -> None:
        """Serialise commits to these keys across processes until the transaction ends."""
        # Unambiguous: names hold no "/".
        await self._d.lock_keys(self._s, [f"{t}/{n}/{k}" for t, n, k in keys])

    async def located(
        self, tenant_id: TenantId, object_id: UUID, *, with_bytes: bool = True
    ) -> LocatedVersion | None:
        row = await self._s.fetchone(
            f"{_located_select(with_bytes)} WHERE o.id = ? AND o.tenant_id = ?"
            " AND o.state = 'COMMITTED'",
            (self._d.uuid_in(object_id), str(tenant_id)),
        )
        return _located(row, self._d) if row else None

    async def newest_located(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey, *, with_bytes: bool = True
    ) -> LocatedVersion | None:
        row = await self._s.fetchone(
            f"{_located_select(with_bytes)} WHERE o.tenant_id = ?"
            " AND o.namespace = ? AND o.key = ? AND o.state = 'COMMITTED'"
            " ORDER BY o.commit_seq DESC LIMIT 1",
            (str(tenant_id), str(namespace), str(key)),
        )
        return _located(row, self._d) if row else None

    async def mark_deleting(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        row = await self._s.fetchone(
            "UPDATE objects SET state = 'DELETING', updated_at = ? WHERE id = ?"
            f" AND tenant_id = ? AND state = 'COMMITTED' RETURNING {SELECT_OBJECT}",
            (self._now(), self._d.uuid_in(object_id), str(tenant_id)),
        )
        if row is None:
            return None
        version = _version(row, self._d)
        await self._count_deleting([version])
        return version

    async def mark_key_deleting(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> list[ObjectVersion]:
        rows = await self._s.fetchall(
            "UPDATE objects SET state = 'DELETING', updated_at = ? WHERE tenant_id = ?"
            f" AND namespace = ? AND key = ? AND state = 'COMMITTED' RETURNING {SELECT_OBJECT}",
            (self._now(), str(tenant_id), str(namespace), str(key)),
        )
        versions = [_version(r, self._d) for r in rows]
        await self._count_deleting(versions)
        return versions

    async def _count_deleting(self, versions: list[ObjectVersion]) -> None:
        """Committed `versions` became DELETING: usage and census follow."""
        await self._count_usage(versions, -1)
        await self._count_census(versions, ObjectState.COMMITTED, -1)
        await self._count_census(versions, ObjectState.DELETING, +1)

    async def _count_census(
        self, versions: list[ObjectVersion], state: ObjectState, sign: int, *, sized: bool = True
    ) -> None:
        """Keep census_counters in step with `versions` entering or leaving `state`."""
        if versions:
            await self._d.count_census(self._s, census_deltas(versions, state, sign, sized=sized))

    async def _count_usage(self, versions: list[ObjectVersion], sign: int) -> None:
        """Keep usage_counters in step with `versions` appearing (+1) or going (-1)."""
        deltas = usage_deltas(versions, sign)
        tenant = str(versions[0].tenant_id) if versions else ""
        await self._d.count_usage(self._s, tenant, deltas)

    async def s3_etags(self, object_ids: Sequence[str]) -> dict[str, str]:
        if not object_ids:
            return {}
        marks = ", ".join(["?"] * len(object_ids))
        rows = await self._s.fetchall(
            f"SELECT id, s3_etag FROM objects WHERE id IN ({marks}) AND s3_etag IS NOT NULL",
            tuple(map(self._d.uuid_text_in, object_ids)),
        )
        # The ids as the listing gave them (canonical text): SQLite stores that text.
        return {r[0] if isinstance(r[0], str) else str(r[0]): r[1] for r in rows}

    async def list_page(self, query: ListQuery) -> list[Listed]:
        if query.all_versions:
            return await self._select_page(query, newest_only=False)
        if query.after is not None:
            # The cursor's key was listed already, by its newest version: resume after it.
            query = replace(query, after=replace(query.after, commit_seq=0))
        if query.storage_class is not None:
            return await self._select_page(query, newest_only=True)
        # Scan every version and keep each key's first (newest) row: with one version
        # per key, the common case, this is the cheapest read of a page. If the scan
        # met older versions it may have ended short of a page: then the whole page is
        # read again by a loose index scan (two seeks per key, however many versions),
        # so a page is always one statement's consistent read.
        scanned = await self._select_page(query, newest_only=False)
        page = _first_row_of_each_key(scanned)
        if len(scanned) < query.limit or len(page) == query.limit:
            return page
        params = Params(numbered=False)
        return await self._summaries(
            newest_by_key_sql(query, params, self._d.summary_columns), params, query
        )

    async def list_delimited(self, query: ListQuery) -> list[Listed | CommonPrefix]:
        params = Params(numbered=False)
        sql = delimited_page_sql(query, params, self._d.summary_columns, self._d.find_text)
        values = tuple(str(v) if isinstance(v, str) else v for v in params.values)
        rows = await self._s.fetchall(sql, values)
        return [
            CommonPrefix(r[0]) if r[0] is not None else self._listed(r[1:], query) for r in rows
        ]

    async def _select_page(self, query: ListQuery, *, newest_only: bool) -> list[Listed]:
        params = Params(numbered=False)
        sql = list_page_sql(query, params, self._d.summary_columns, newest_only=newest_only)
        return await self._summaries(sql, params, query)

    async def _summaries(self, sql: str, params: Params, query: ListQuery) -> list[Listed]:
        values = tuple(str(v) if isinstance(v, str) else v for v in params.values)
        return [self._listed(r, query) for r in await self._s.fetchall(sql, values)]

    @staticmethod
    def _listed(r: Row, query: ListQuery) -> Listed:
        """A row of the dialect's `summary_columns` as a listed version."""
        return (
            {
                "id": r[0],
                "namespace": str(query.namespace),
                "tenant_id": str(query.tenant_id),
                "key": r[1],
                "content_hash": r[2],
                "size_bytes": r[3],
                "storage_class": r[4],
                "content_type": r[5],
                "created_at": r[6],
            },
            r[7],
        )

    async def usage(self, tenant_id: TenantId) -> list[ClassUsage]:
        rows = await self._s.fetchall(USAGE_SQL.format(tenant="?"), (str(tenant_id),))
        return [ClassUsage(StorageClass(r[0]), int(r[1]), int(r[2])) for r in rows]

    async def namespaces(self, tenant_id: TenantId) -> list[NamespaceUsage]:
        rows = await self._s.fetchall(NAMESPACES_SQL, (str(tenant_id),))
        return [NamespaceUsage(r[0], int(r[1]), int(r[2])) for r in rows]

    async def census(self) -> list[Census]:
        rows = await self._s.fetchall(CENSUS_SQL)
        return [
            Census(r[0], r[1], ObjectState(r[2]), StorageClass(r[3]), int(r[4]), int(r[5]))
            for r in rows
        ]

    async def touch_writing(self, upload_id: UUID) -> None:
        await self._s.execute(
            "UPDATE objects SET updated_at = ? WHERE id = ? AND state = 'WRITING'",
            (self._now(), self._d.uuid_in(upload_id)),
        )

    async def writing_older_than(self, older_than: datetime, limit: int) -> list[WritingUpload]:
        rows = await self._s.fetchall(
            "SELECT id, storage_class, owner, updated_at FROM objects WHERE state = 'WRITING'"
            " AND updated_at < ? ORDER BY updated_at LIMIT ?",
            (self._d.ts_in(older_than), limit),
        )
        d = self._d
        return [
            WritingUpload(d.uuid_out(r[0]), StorageClass(r[1]), r[2] or "", d.ts_out(r[3]))
            for r in rows
        ]

    async def writing_among(self, upload_ids: list[UUID]) -> set[UUID]:
        found: set[UUID] = set()
        ids = [self._d.uuid_in(i) for i in upload_ids]
        for condition, params in self._d.any_of("id", ids, "uuid"):
            rows = await self._s.fetchall(
                f"SELECT id FROM objects WHERE state = 'WRITING' AND {condition}", params
            )
            found.update(self._d.uuid_out(r[0]) for r in rows)
        return found

    async def finish_deletes(self, limit: int) -> int:
        rows = await self._s.fetchall(
            "UPDATE objects SET state = 'DELETED', updated_at = ? WHERE id IN"
            f" (SELECT id FROM objects WHERE state = 'DELETING' LIMIT ?{self._d.skip_locked})"
            " RETURNING tenant_id, namespace, storage_class, size_bytes",
            (self._now(), limit),
        )
        deltas: dict[tuple[str, str, str, str], tuple[int, int]] = {}
        for tenant, namespace, storage_class, size in rows:
            key = (tenant, namespace, storage_class, ObjectState.DELETING.value)
            objects, size_bytes = deltas.get(key, (0, 0))
            deltas[key] = (objects - 1, size_bytes - (size or 0))
        if deltas:
            await self._d.count_census(self._s, deltas)
        return len(rows)

    async def purge_deleted(self, older_than: datetime, limit: int) -> int:
        rows = await self._s.fetchall(
            "DELETE FROM objects WHERE id IN (SELECT id FROM objects WHERE state = 'DELETED'"
            f" AND updated_at < ? LIMIT ?{self._d.skip_locked}) RETURNING id",
            (self._d.ts_in(older_than), limit),
        )
        return len(rows)

    async def ids_of_blob(self, location: BlobLocation) -> list[UUID]:
        rows = await self._s.fetchall(
            "SELECT id FROM objects WHERE storage_class = ? AND content_hash = ?"
            " AND state = 'COMMITTED' ORDER BY id",
            (location.storage_class.value, location.content_hash.hex),
        )
        return [self._d.uuid_out(r[0]) for r in rows]

    async def without_blob_row(self, limit: int) -> list[ObjectVersion]:
        rows = await self._s.fetchall(
            f"SELECT {_OBJECT_COLUMNS} FROM objects o WHERE o.state = 'COMMITTED' AND NOT EXISTS"
            " (SELECT 1 FROM blobs b WHERE b.storage_class = o.storage_class"
            " AND b.content_hash = o.content_hash) LIMIT ?",
            (limit,),
        )
        return [_version(r, self._d) for r in rows]

    async def without_blob_row_among(self, upload_ids: list[UUID]) -> list[ObjectVersion]:
        versions: list[ObjectVersion] = []
        ids = [self._d.uuid_in(i) for i in upload_ids]
        for condition, params in self._d.any_of("o.id", ids, "uuid"):
            rows = await self._s.fetchall(
                f"SELECT {_OBJECT_COLUMNS} FROM objects o"
                f" WHERE o.state IN ('COMMITTED', 'DELETING') AND {condition} AND NOT EXISTS"
                " (SELECT 1 FROM blobs b WHERE b.storage_class = o.storage_class"
                " AND b.content_hash = o.content_hash)",
                params,
            )
            versions += [_version(r, self._d) for r in rows]
        return versions


def _first_row_of_each_key(rows: list[Listed]) -> list[Listed]:
    """The rows that start a key: its newest version, in rows ordered by key, newest first."""
    firsts: list[Listed] = []
    previous_key = None
    for row in rows:
        key = row[0]["key"]
        if key != previous_key:
            firsts.append(row)
            previous_key = key
    return firsts
