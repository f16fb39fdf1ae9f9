"""The lease and api key repositories in SQL, written once for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from juststorage.adapters.metadata.sql import Row, SqlRepository
from juststorage.application.records import ApiKeyRecord
from juststorage.domain.auth import Scope


class SqlLeaseRepository(SqlRepository):
    """`LeaseRepository` over a SQL session."""

    async def claim(
        self, name: str, holder: str, until: datetime, *, replacing: str | None = None
    ) -> bool:
        row = await self._s.fetchone(
            "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " expires_at = excluded.expires_at WHERE leases.holder = excluded.holder"
            " OR leases.expires_at < ? OR leases.holder = ? RETURNING name",
            (name, holder, self._d.ts_in(until), self._now(), replacing),
        )
        return row is not None

    async def holder_of(self, name: str) -> str | None:
        row = await self._s.fetchone("SELECT holder FROM leases WHERE name = ?", (name,))
        return str(row[0]) if row else None

    async def release(self, name: str, holder: str) -> None:
        await self._s.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    async def renew(self, name: str, holder: str, until: datetime) -> bool:
        row = await self._s.fetchone(
            "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at >= ?"
            " RETURNING name",
            (self._d.ts_in(until), name, holder, self._now()),
        )
        return row is not None

    async def release_valid(self, name: str, holder: str) -> bool:
        row = await self._s.fetchone(
            "DELETE FROM leases WHERE name = ? AND holder = ? AND expires_at >= ? RETURNING name",
            (name, holder, self._now()),
        )
        return row is not None

    async def named(self, prefix: str) -> list[tuple[str, str, datetime]]:
        rows = await self._s.fetchall(
            "SELECT name, holder, expires_at FROM leases WHERE substr(name, 1, ?) = ?",
            (len(prefix), prefix),
        )
        return [(str(r[0]), str(r[1]), self._d.ts_out(r[2])) for r in rows]


class SqlBackupHolds(SqlRepository):
    """`BackupHolds` over a SQL session."""

    async def take(
        self, hold_id: str, holder: str, until: datetime, started_at: datetime | None = None
    ) -> datetime:
        if started_at is None:
            # The earlier of this host's clock and the database's: a backup host whose
            # clock runs ahead would start its hold too late (docs/durability.md).
            row = await self._s.fetchone(f"SELECT {self._d.epoch_now}")
            started_at = self._s.clock.now()
            if row is not None and row[0] is not None:
                started_at = min(started_at, datetime.fromtimestamp(float(row[0]), UTC))
        await self._s.execute(
            "INSERT INTO backup_holds (id, holder, started_at, expires_at) VALUES (?, ?, ?, ?)",
            (hold_id, holder, self._d.ts_in(started_at), self._d.ts_in(until)),
        )
        return started_at

    async def renew(self, hold_id: str, until: datetime) -> bool:
        row = await self._s.fetchone(
            "UPDATE backup_holds SET expires_at = ? WHERE id = ? RETURNING id",
            (self._d.ts_in(until), hold_id),
        )
        return row is not None

    async def release(self, hold_id: str) -> None:
        await self._s.execute("DELETE FROM backup_holds WHERE id = ?", (hold_id,))

    async def all(self) -> list[tuple[str, str, datetime, datetime]]:
        rows = await self._s.fetchall(
            "SELECT id, holder, started_at, expires_at FROM backup_holds ORDER BY started_at"
        )
        d = self._d
        return [(str(r[0]), str(r[1]), d.ts_out(r[2]), d.ts_out(r[3])) for r in rows]


class SqlApiKeyRepository(SqlRepository):
    """`ApiKeyRepository` over a SQL session."""

    _COLS = "id, key_hash, tenants, scopes, created_at, revoked_at"

    def _record(self, row: Row) -> ApiKeyRecord:
        d = self._d
        return ApiKeyRecord(
            id=row[0],
            key_hash=row[1],
            tenants=frozenset(d.list_out(row[2])),
            scopes=frozenset(Scope(s) for s in d.list_out(row[3])),
            created_at=d.ts_out(row[4]),
            revoked_at=d.ts_out(row[5]) if row[5] else None,
        )

    async def add(self, record: ApiKeyRecord) -> None:
        await self._s.execute(
            "INSERT INTO api_keys (id, key_hash, tenants, scopes, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                record.id,
                record.key_hash,
                self._d.list_in(sorted(record.tenants)),
                self._d.list_in(sorted(s.value for s in record.scopes)),
                self._d.ts_in(record.created_at),
            ),
        )

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._s.fetchone(f"SELECT {self._COLS} FROM api_keys WHERE id = ?", (key_id,))
        return self._record(row) if row else None

    async def list_all(self) -> list[ApiKeyRecord]:
        rows = await self._s.fetchall(f"SELECT {self._COLS} FROM api_keys ORDER BY created_at")
        return [self._record(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        row = await self._s.fetchone(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            (self._now(), key_id),
        )
        return row is not None

    async def count(self) -> int:
        await self._d.lock_api_keys(self._s)
        row = await self._s.fetchone("SELECT COUNT(*) FROM api_keys")
        return int(row[0]) if row else 0
