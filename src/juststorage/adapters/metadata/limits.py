"""Quota reservations and shared token buckets in SQL, written once for SQLite and
PostgreSQL (SPEC §4: the per-tenant limits hold across every process sharing the
database; docs/security.md "Limits across processes")."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from juststorage.adapters.metadata.sql import SqlRepository
from juststorage.domain.limits import BucketAsk, BucketTake
from juststorage.domain.model import TenantId

_REAL = "CAST(? AS DOUBLE PRECISION)"


class SqlQuotaReservations(SqlRepository):
    """`QuotaReservations` over a SQL session."""

    async def reserve_up_to(
        self,
        reservation_id: UUID,
        tenant_id: TenantId,
        minimum: int,
        wanted: int,
        quota_bytes: int,
        expires_at: datetime,
        *,
        replacing: UUID | None = None,
    ) -> int | None:
        tenant, now = str(tenant_id), self._now()
        # The tenant's quota lock (PostgreSQL: an advisory lock until the transaction
        # ends; SQLite: the one write lock the transaction holds). Its name has no "/",
        # so it never equals a key's lock. Taken before the read below, whose snapshot
        # then includes every reservation committed before: two reservations never
        # both count on the last bytes. Commits need no lock: one commit deletes its
        # reservation and adds its usage atomically, which never raises the sum.
        await self._d.lock_key(self._s, f"quota {tenant}")
        await self._s.execute(
            "DELETE FROM quota_reservations WHERE tenant_id = ? AND expires_at <= ?",
            (tenant, now),
        )
        # One statement: usage and reservations from one snapshot (READ COMMITTED
        # takes a snapshot per statement).
        row = await self._s.fetchone(
            "SELECT (SELECT COALESCE(SUM(size_bytes), 0) FROM usage_counters"
            " WHERE tenant_id = ?) + (SELECT COALESCE(SUM(size_bytes), 0)"
            " FROM quota_reservations WHERE tenant_id = ? AND id NOT IN (?, ?))",
            (
                tenant,
                tenant,
                self._d.uuid_in(reservation_id),
                self._d.uuid_in(replacing or reservation_id),
            ),
        )
        committed_and_reserved = int(row[0]) if row else 0
        size_bytes = min(wanted, quota_bytes - committed_and_reserved)
        if size_bytes < minimum:
            return None
        await self._s.execute(
            "INSERT INTO quota_reservations (id, tenant_id, size_bytes, expires_at)"
            f" VALUES (?, ?, {self._d.bigint}, ?) ON CONFLICT (id) DO UPDATE"
            " SET size_bytes = excluded.size_bytes, expires_at = excluded.expires_at",
            (self._d.uuid_in(reservation_id), tenant, size_bytes, self._d.ts_in(expires_at)),
        )
        return size_bytes

    async def renew(self, reservation_id: UUID, expires_at: datetime) -> bool:
        row = await self._s.fetchone(
            "UPDATE quota_reservations SET expires_at = ? WHERE id = ? AND expires_at > ?"
            " RETURNING id",
            (self._d.ts_in(expires_at), self._d.uuid_in(reservation_id), self._now()),
        )
        return row is not None

    async def settle(self, reservation_id: UUID) -> None:
        await self._s.execute(
            "DELETE FROM quota_reservations WHERE id = ?", (self._d.uuid_in(reservation_id),)
        )


class SqlRateBuckets(SqlRepository):
    """`RateBuckets` over a SQL session: one row per (tenant, resource)."""

    async def take(self, tenant_id: str, resource: str, ask: BucketAsk) -> BucketTake:
        row = await self._s.fetchone(*self._take_statement(tenant_id, resource, ask))
        if row is None:
            # A new bucket starts full; a process creating it at the same time as
            # another one loses nothing (DO NOTHING, then the same take).
            await self._s.execute(
                "INSERT INTO rate_buckets (tenant_id, resource, tokens, stamp, last_grant)"
                f" VALUES (?, ?, {_REAL}, {self._d.epoch_now}, NULL)"
                " ON CONFLICT (tenant_id, resource) DO NOTHING",
                (tenant_id, resource, float(ask.burst)),
            )
            row = await self._s.fetchone(*self._take_statement(tenant_id, resource, ask))
        if row is None:
            raise RuntimeError("rate bucket row missing after insert")
        return BucketTake(float(row[0]), None if row[1] is None else float(row[1]))

    def _take_statement(
        self, tenant_id: str, resource: str, ask: BucketAsk
    ) -> tuple[str, tuple[object, ...]]:
        """One UPDATE … RETURNING: every SET expression sees the row as it was, so the
        grant and the new balance come from the same refill."""
        least, greatest, now = self._d.least, self._d.greatest, self._d.epoch_now
        real = _REAL  # typed: PostgreSQL cannot deduce a bare parameter's type everywhere
        refilled = f"{least}({real}, tokens + {greatest}(0.0, {now} - stamp) * {real})"
        refill_params: tuple[object, ...] = (float(ask.burst), float(ask.rate))
        grant = f"{least}({real}, {refilled})" if ask.partial else real
        grant_params = (float(ask.amount), *refill_params) if ask.partial else (float(ask.amount),)
        granted = f"CASE WHEN {refilled} >= {real} THEN {grant} ELSE NULL END"
        granted_params = (*refill_params, float(ask.minimum), *grant_params)
        sql = (
            f"UPDATE rate_buckets SET last_grant = {granted},"
            f" tokens = {least}({real}, {refilled} - COALESCE({granted}, 0.0)),"
            f" stamp = {greatest}(stamp, {now})"
            " WHERE tenant_id = ? AND resource = ? RETURNING tokens, last_grant"
        )
        params = (
            *granted_params,
            float(ask.burst),
            *refill_params,
            *granted_params,
            tenant_id,
            resource,
        )
        return sql, params
