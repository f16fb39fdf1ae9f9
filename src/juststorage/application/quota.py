"""Quota reservations of one upload: reserve at admission, grow as a chunked body
arrives, keep alive while it streams, settle at commit (SPEC §4).

Committed usage plus every live reservation of a tenant never exceeds its quota,
whichever process holds them: the check and the write are one transaction under
the tenant's quota lock (`QuotaReservations.reserve`), and a commit deletes its
reservation in the transaction that adds its usage. A process that dies leaves its
reservations to lapse after `RESERVATION_TTL_SECONDS`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import anyio

from juststorage.application.ports import Clock, MetadataStore
from juststorage.domain.errors import PayloadTooLarge, StorageError
from juststorage.domain.model import TenantId

# A live upload renews its reservation every HEARTBEAT (uploads.py), well within this.
RESERVATION_TTL_SECONDS = 300.0
# `confirm()` renews a reservation only when it would lapse within this (one heartbeat,
# uploads.HEARTBEAT_SECONDS): one written moments before lives through the commit, and
# the heartbeat goes on renewing it until the commit has settled it.
CONFIRM_MARGIN_SECONDS = 60.0
# A body of unknown length reserves this much more whenever it outgrows its reservation
# (one transaction per step, not per chunk); near the quota, all the room left.
CHUNKED_STEP_BYTES = 4 * 1024 * 1024


def over_quota(tenant_id: TenantId, quota_bytes: int) -> str:
    """The 413's message: it names the quota."""
    return (
        f"the upload would take tenant {tenant_id!r} over its storage quota of {quota_bytes} bytes"
    )


class QuotaHold:
    """The bytes one upload (`reservation_id`: its upload id) has reserved of its
    tenant's `quota_bytes`."""

    def __init__(
        self,
        metadata: MetadataStore,
        clock: Clock,
        tenant_id: TenantId,
        quota_bytes: int,
        reservation_id: UUID,
        *,
        replacing: UUID | None = None,
    ) -> None:
        self._metadata = metadata
        self._clock = clock
        self.tenant_id = tenant_id
        self.quota_bytes = quota_bytes
        self.reservation_id = reservation_id
        # The reservation of what this upload's commit replaces (a part sent again),
        # not counted against it: the commit settles that one.
        self.replacing = replacing
        self.reserved: int | None = None  # None: no row written yet
        # When the row written last lapses (None: not known to be live).
        self._valid_until: datetime | None = None
        # A row may exist: set before the first reservation's transaction, since one
        # cancelled between its commit and `reserved` being set still wrote the row.
        self._may_hold_row = False

    async def cover(self, size_bytes: int, *, up_to: int | None = None) -> None:
        """Reserve `size_bytes` in all (a declared length, or what a body has reached),
        or as much more, `up_to`, as the quota has room for.

        Raises:
            PayloadTooLarge: the quota has no room for them (naming the quota).
        """
        if not await self._reserve(size_bytes, size_bytes if up_to is None else up_to):
            raise PayloadTooLarge(over_quota(self.tenant_id, self.quota_bytes))

    async def cover_received(self, received: int, ceiling: int) -> None:
        """A body of unknown length has reached `received` bytes: if that is past the
        reservation, reserve a step more (at most `ceiling`), or near the quota all the
        room it has left, in one transaction; later chunks cost none until they pass it.

        Raises:
            PayloadTooLarge: not even `received` fits.
        """
        if self.reserved is not None and received <= self.reserved:
            return
        step = max(received, min(ceiling, received + CHUNKED_STEP_BYTES))
        await self.cover(received, up_to=step)

    async def confirm(self, size_bytes: int) -> None:
        """Before the commit: make sure the reservation still covers `size_bytes`.

        One written or renewed more than `CONFIRM_MARGIN_SECONDS` before it lapses
        costs no transaction; one nearer its end is renewed. A reservation that
        lapsed (its renewals failed for minutes) may have been counted on by others:
        it is taken again, checked as a new one.

        Raises:
            PayloadTooLarge: it lapsed and the quota has no room left for it.
        """
        if self.reserved is not None and size_bytes <= self.reserved:
            margin = timedelta(seconds=CONFIRM_MARGIN_SECONDS)
            valid_until = self._valid_until
            if valid_until is not None and valid_until - self._clock.now() > margin:
                return
            if await self.renew():
                return
        await self.cover(size_bytes)

    async def renew(self) -> bool:
        """Push the expiry forward (the heartbeat); False if the reservation lapsed."""
        if self.reserved is None:
            return False
        expiry = self._expiry()
        async with self._metadata.transaction(durable=False) as uow:
            renewed = await uow.quota.renew(self.reservation_id, expiry)
            await uow.commit()
        self._valid_until = expiry if renewed else None
        return renewed

    async def release(self) -> None:
        """Best effort, on failure: free the bytes now rather than when they lapse
        (by id, also when the upload was cancelled before it learnt its reservation
        had committed)."""
        if not self._may_hold_row:
            return
        with anyio.CancelScope(shield=True):
            try:
                async with self._metadata.transaction(durable=False) as uow:
                    await uow.quota.settle(self.reservation_id)
                    await uow.commit()
            except StorageError:
                pass  # the reservation lapses after RESERVATION_TTL_SECONDS

    async def _reserve(self, minimum: int, wanted: int) -> bool:
        # Not durable: after a crash the reservation would only have lapsed anyway.
        self._may_hold_row = True
        expiry = self._expiry()
        async with self._metadata.transaction(durable=False) as uow:
            reserved = await uow.quota.reserve_up_to(
                self.reservation_id,
                self.tenant_id,
                minimum,
                wanted,
                self.quota_bytes,
                expiry,
                replacing=self.replacing,
            )
            if reserved is not None:
                await uow.commit()
        if reserved is None:
            return False
        self.reserved = reserved
        self._valid_until = expiry
        return True

    def _expiry(self) -> datetime:
        return self._clock.now() + timedelta(seconds=RESERVATION_TTL_SECONDS)
