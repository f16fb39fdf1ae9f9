"""FakeQuotaReservations and FakeRateBuckets over `State` (the fake's clock is the
database clock)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fakes.clock import FakeClock
from fakes.state import State, committed
from juststorage.domain.limits import BucketAsk, BucketTake
from juststorage.domain.model import TenantId


class FakeQuotaReservations:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

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
        now, rows = self._clock.now(), self._state.reservations
        for rid, (tenant, _, expiry) in list(rows.items()):
            if tenant == tenant_id and expiry <= now:
                del rows[rid]
        used = sum(v.size_bytes for v in committed(self._state) if v.tenant_id == tenant_id)
        reserved = sum(
            size
            for rid, (tenant, size, _) in rows.items()
            if tenant == tenant_id and rid not in (reservation_id, replacing)
        )
        size_bytes = min(wanted, quota_bytes - used - reserved)
        if size_bytes < minimum:
            return None
        rows[reservation_id] = (str(tenant_id), size_bytes, expires_at)
        return size_bytes

    async def renew(self, reservation_id: UUID, expires_at: datetime) -> bool:
        row = self._state.reservations.get(reservation_id)
        if row is None or row[2] <= self._clock.now():
            return False
        self._state.reservations[reservation_id] = (row[0], row[1], expires_at)
        return True

    async def settle(self, reservation_id: UUID) -> None:
        self._state.reservations.pop(reservation_id, None)


class FakeRateBuckets:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def take(self, tenant_id: str, resource: str, ask: BucketAsk) -> BucketTake:
        now = self._clock.now().timestamp()
        tokens, stamp = self._state.buckets.get((tenant_id, resource), (ask.burst, now))
        refilled = min(ask.burst, tokens + max(0.0, now - stamp) * ask.rate)
        granted: float | None = None
        if refilled >= ask.minimum:
            granted = min(ask.amount, refilled) if ask.partial else ask.amount
        after = min(ask.burst, refilled - (granted or 0.0))
        self._state.buckets[(tenant_id, resource)] = (after, max(stamp, now))
        return BucketTake(after, granted)
