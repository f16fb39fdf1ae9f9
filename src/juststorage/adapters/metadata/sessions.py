"""Upload sessions and their parts in SQL, written once for SQLite and PostgreSQL
(SPEC §8.2; the port is `UploadSessionRows`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from juststorage.adapters.metadata.sql import Row, SqlRepository
from juststorage.application.session_records import SessionPart, SessionState, UploadSession
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import NotFound
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectKey,
    StorageClass,
    TenantId,
)

_SESSION_COLUMNS = (
    "id, tenant_id, namespace, key, storage_class, content_type, expected_hash,"
    " if_none_match, if_match, state, created_at, expires_at, object_id, user_metadata"
)
_PART_COLUMNS = "part_number, size_bytes, sha256, address, created_at, reservation_id"
_NOT_OPEN = "no such upload session, or it is no longer open"
# The reservations of a session's parts (quota_reservations rows).
_RESERVATIONS_OF = (
    "SELECT reservation_id FROM upload_parts WHERE session_id = ? AND reservation_id IS NOT NULL"
)


class SqlUploadSessionRows(SqlRepository):
    """`UploadSessionRows` over a SQL session."""

    async def add_session(self, session: UploadSession) -> None:
        d = self._d
        await self._s.execute(
            f"INSERT INTO upload_sessions ({_SESSION_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?)",
            (
                d.uuid_in(session.id),
                str(session.tenant_id),
                str(session.namespace),
                str(session.key),
                session.storage_class.value,
                session.content_type,
                session.expected_hash.hex if session.expected_hash else None,
                1 if session.precondition.create_only else 0,
                session.precondition.expected.hex if session.precondition.expected else None,
                session.state.value,
                d.ts_in(session.created_at),
                d.ts_in(session.expires_at),
                session.user_metadata,
            ),
        )

    async def session(self, session_id: UUID, *, with_parts: bool = True) -> UploadSession | None:
        row = await self._s.fetchone(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE id = ?",
            (self._d.uuid_in(session_id),),
        )
        if row is None:
            return None
        found = self._session(row)
        if not with_parts:
            return found
        rows = await self._s.fetchall(
            f"SELECT {_PART_COLUMNS} FROM upload_parts WHERE session_id = ? ORDER BY part_number",
            (self._d.uuid_in(session_id),),
        )
        return _with_parts(found, tuple(self._part(r) for r in rows))

    async def part(self, session_id: UUID, number: int) -> SessionPart | None:
        row = await self._s.fetchone(
            f"SELECT {_PART_COLUMNS} FROM upload_parts WHERE session_id = ? AND part_number = ?",
            (self._d.uuid_in(session_id), number),
        )
        return None if row is None else self._part(row)

    async def open_page(
        self,
        tenant_id: TenantId,
        namespace: Namespace,
        after: tuple[str, UUID] | None,
        limit: int,
    ) -> list[UploadSession]:
        params: list[object] = [str(tenant_id), str(namespace), self._now()]
        keyset = ""
        if after is not None:
            keyset = " AND (key > ? OR (key = ? AND id > ?))"
            params += [after[0], after[0], self._d.uuid_in(after[1])]
        rows = await self._s.fetchall(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions"
            " WHERE tenant_id = ? AND namespace = ? AND state = 'open' AND expires_at > ?"
            f"{keyset} ORDER BY key, id LIMIT ?",
            (*params, limit),
        )
        sessions = [self._session(r) for r in rows]
        if not sessions:
            return sessions
        parts: dict[UUID, list[SessionPart]] = {s.id: [] for s in sessions}
        ids = [self._d.uuid_in(s.id) for s in sessions]
        marks = ", ".join("?" for _ in ids)
        for row in await self._s.fetchall(
            f"SELECT session_id, {_PART_COLUMNS} FROM upload_parts"
            f" WHERE session_id IN ({marks}) ORDER BY session_id, part_number",
            tuple(ids),
        ):
            parts[self._d.uuid_out(row[0])].append(self._part(row[1:]))
        return [_with_parts(s, tuple(parts[s.id])) for s in sessions]

    async def put_part(
        self, session_id: UUID, part: SessionPart, expires_at: datetime
    ) -> SessionPart | None:
        d, sid = self._d, self._d.uuid_in(session_id)
        touched = await self._s.fetchone(
            "UPDATE upload_sessions SET expires_at = ?"
            " WHERE id = ? AND state = 'open' AND expires_at > ? RETURNING id",
            (d.ts_in(expires_at), sid, self._now()),
        )
        if touched is None:
            raise NotFound(_NOT_OPEN)
        old = await self._s.fetchone(
            f"SELECT {_PART_COLUMNS} FROM upload_parts WHERE session_id = ? AND part_number = ?",
            (sid, part.number),
        )
        replaced = self._part(old) if old is not None else None
        if replaced is not None and replaced.reservation_id is not None:
            await self.settle_reservation(replaced.reservation_id)
        await self._s.execute(
            f"INSERT INTO upload_parts (session_id, {_PART_COLUMNS})"
            f" VALUES (?, ?, {d.bigint}, ?, ?, ?, ?)"
            " ON CONFLICT (session_id, part_number) DO UPDATE SET size_bytes ="
            " excluded.size_bytes, sha256 = excluded.sha256, address = excluded.address,"
            " created_at = excluded.created_at, reservation_id = excluded.reservation_id",
            (
                sid,
                part.number,
                part.size_bytes,
                part.sha256.hex,
                part.address,
                d.ts_in(part.created_at),
                d.uuid_in(part.reservation_id) if part.reservation_id else None,
            ),
        )
        # Every part's reservation lives as long as the session (an idle TTL).
        await self._s.execute(
            f"UPDATE quota_reservations SET expires_at = ? WHERE id IN ({_RESERVATIONS_OF})",
            (d.ts_in(expires_at), sid),
        )
        return replaced

    async def drop_part(self, session_id: UUID, number: int, address: str) -> SessionPart | None:
        sid = self._d.uuid_in(session_id)
        row = await self._s.fetchone(
            "DELETE FROM upload_parts WHERE session_id = ? AND part_number = ? AND address = ?"
            " AND EXISTS (SELECT 1 FROM upload_sessions WHERE id = ? AND state = 'open')"
            f" RETURNING {_PART_COLUMNS}",
            (sid, number, address, sid),
        )
        if row is None:
            return None
        dropped = self._part(row)
        if dropped.reservation_id is not None:
            await self.settle_reservation(dropped.reservation_id)
        return dropped

    async def settle_reservation(self, reservation_id: UUID) -> None:
        await self._s.execute(
            "DELETE FROM quota_reservations WHERE id = ?", (self._d.uuid_in(reservation_id),)
        )

    async def claim_completion(
        self, session_id: UUID, object_id: UUID, expires_at: datetime
    ) -> list[SessionPart]:
        d, sid = self._d, self._d.uuid_in(session_id)
        # The session row first: a part's write updates it too (`put_part`), so from
        # here until the commit no part of this session changes, and the parts read
        # below are the last ones acknowledged.
        claimed = await self._s.fetchone(
            "UPDATE upload_sessions SET state = 'completed', object_id = ?, expires_at = ?"
            " WHERE id = ? AND state = 'open' AND expires_at > ? RETURNING id",
            (d.uuid_in(object_id), d.ts_in(expires_at), sid, self._now()),
        )
        if claimed is None:
            raise NotFound(_NOT_OPEN)
        return await self._drop_parts(sid)

    async def remove_session(
        self, session_id: UUID, *, open_only: bool = False
    ) -> list[SessionPart] | None:
        sid = self._d.uuid_in(session_id)
        removed = await self._s.fetchone(
            "DELETE FROM upload_sessions WHERE id = ?"
            + (" AND state = 'open'" if open_only else "")
            + " RETURNING id",
            (sid,),
        )
        if removed is None:
            return None
        return await self._drop_parts(sid)

    async def expired_sessions(self, now: datetime, limit: int) -> list[UploadSession]:
        rows = await self._s.fetchall(
            f"SELECT {_SESSION_COLUMNS} FROM upload_sessions WHERE expires_at <= ?"
            " ORDER BY expires_at LIMIT ?",
            (self._d.ts_in(now), limit),
        )
        return [self._session(r) for r in rows]

    async def part_addresses(self, session_ids: list[UUID]) -> dict[UUID, set[str]]:
        found: dict[UUID, set[str]] = {}
        for start in range(0, len(session_ids), 500):
            ids = [self._d.uuid_in(i) for i in session_ids[start : start + 500]]
            marks = ", ".join("?" for _ in ids)
            for row in await self._s.fetchall(
                f"SELECT id FROM upload_sessions WHERE state = 'open' AND id IN ({marks})",
                tuple(ids),
            ):
                found[self._d.uuid_out(row[0])] = set()
            for row in await self._s.fetchall(
                f"SELECT session_id, address FROM upload_parts WHERE session_id IN ({marks})",
                tuple(ids),
            ):
                found.setdefault(self._d.uuid_out(row[0]), set()).add(row[1])
        return found

    async def parts_page(
        self, after: tuple[UUID, int] | None, limit: int
    ) -> list[tuple[UUID, StorageClass, SessionPart]]:
        params: tuple[object, ...] = ()
        keyset = ""
        if after is not None:
            sid = self._d.uuid_in(after[0])
            keyset = " WHERE p.session_id > ? OR (p.session_id = ? AND p.part_number > ?)"
            params = (sid, sid, after[1])
        columns = ", ".join(f"p.{c.strip()}" for c in _PART_COLUMNS.split(","))
        rows = await self._s.fetchall(
            f"SELECT p.session_id, s.storage_class, {columns} FROM upload_parts p"
            f" JOIN upload_sessions s ON s.id = p.session_id{keyset}"
            " ORDER BY p.session_id, p.part_number LIMIT ?",
            (*params, limit),
        )
        return [(self._d.uuid_out(r[0]), StorageClass(r[1]), self._part(r[2:])) for r in rows]

    async def _drop_parts(self, sid: object) -> list[SessionPart]:
        rows = await self._s.fetchall(
            f"SELECT {_PART_COLUMNS} FROM upload_parts WHERE session_id = ? ORDER BY part_number",
            (sid,),
        )
        await self._s.execute(
            f"DELETE FROM quota_reservations WHERE id IN ({_RESERVATIONS_OF})", (sid,)
        )
        await self._s.execute("DELETE FROM upload_parts WHERE session_id = ?", (sid,))
        return [self._part(r) for r in rows]

    def _session(self, row: Row) -> UploadSession:
        d = self._d
        return UploadSession(
            id=d.uuid_out(row[0]),
            tenant_id=TenantId.trusted(row[1]),
            namespace=Namespace.trusted(row[2]),
            key=ObjectKey.trusted(row[3]),
            storage_class=StorageClass(row[4]),
            content_type=row[5],
            expected_hash=ContentHash.trusted(row[6]) if row[6] else None,
            precondition=WritePrecondition(
                create_only=bool(row[7]),
                expected=ContentHash.trusted(row[8]) if row[8] else None,
            ),
            state=SessionState(row[9]),
            created_at=d.ts_out(row[10]),
            expires_at=d.ts_out(row[11]),
            object_id=d.uuid_out(row[12]) if row[12] is not None else None,
            user_metadata=row[13],
        )

    def _part(self, row: Row) -> SessionPart:
        d = self._d
        return SessionPart(
            number=int(row[0]),
            size_bytes=int(row[1]),
            sha256=ContentHash.trusted(row[2]),
            address=row[3],
            created_at=d.ts_out(row[4]),
            reservation_id=d.uuid_out(row[5]) if row[5] is not None else None,
        )


def _with_parts(session: UploadSession, parts: tuple[SessionPart, ...]) -> UploadSession:
    return replace(session, parts=parts)
