"""Admission control (SPEC §4): per-tenant request rate and upload bandwidth in token
buckets shared by every process through the database, and caps on the uploads in
flight of this process and of each tenant in it. The API keeps one `Throttle` per
process.

A request does not cost a database round: a process takes a small lease of a
tenant's tokens (`LEASE_SECONDS` of its rate) and spends it locally, so several
processes together stay within a few tokens of the configured rate (what one
process holds unspent for at most `LEASE_TTL_SECONDS`). Uploads with a declared
length no larger than such a lease of the tenant's bandwidth draw their bytes from
a lease of bytes the same way. Tenants without limits (the default) never touch the
buckets.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import anyio

from juststorage.application.ports import MetadataStore
from juststorage.domain.errors import StorageError, TooManyRequests
from juststorage.domain.limits import BucketAsk, BucketTake, RateLimitStatus, TokenBucket

LEASE_SECONDS = 0.05  # a lease holds at most this much of the tenant's rate (≥ 1 token)
LEASE_TTL_SECONDS = 1.0  # unspent lease tokens are dropped after this (under-use, not over)
FLUSH_SECONDS = 0.1  # a body of unknown length is charged every this much of the rate
FLUSH_MIN_BYTES = 64 * 1024
PACE_MAX_SECONDS = 30.0  # the longest one pause of a body of unknown length
MAX_LEASES = 10_000  # tenants with a lease kept at once; expired ones go first
REQUESTS, UPLOAD_BYTES = "requests", "upload-bytes"


class TenantRates(Protocol):
    """A tenant's rates (`config.TenantLimits` has them); None: unlimited."""

    @property
    def rate_limit_rps(self) -> float | None: ...

    @property
    def upload_bps(self) -> int | None: ...


class BucketTaker(Protocol):
    async def take(self, tenant_id: str, resource: str, ask: BucketAsk) -> BucketTake:
        """One take of a shared bucket (`RateBuckets.take` in its own transaction)."""
        ...


class SharedBuckets:
    """The buckets in the database: one short transaction per take."""

    def __init__(self, metadata: MetadataStore) -> None:
        self._metadata = metadata

    async def take(self, tenant_id: str, resource: str, ask: BucketAsk) -> BucketTake:
        # Not durable: a bucket that loses its last takes in a crash only refills early.
        async with self._metadata.transaction(durable=False) as uow:
            taken = await uow.buckets.take(tenant_id, resource, ask)
            await uow.commit()
        return taken


@dataclass
class _Lease:
    """Request tokens (or upload bytes) this process took from a tenant's shared
    bucket, not yet spent."""

    tokens: float = 0.0
    expires: float = 0.0
    shared: float = 0.0  # the shared balance when last seen (for X-RateLimit-Remaining)
    # After a refusal: when the shared bucket can hold a token again. Other processes
    # only take tokens, so until then every request is refused without asking it.
    refused_until: float = 0.0


class Throttle:
    """Admission control for one process. Over a limit: TooManyRequests, whose `limit`
    says which limit refused.

    `rates_of(tenant)` gives a tenant's rates, fixed for the process (settings are
    read once), so each tenant's are asked once; `max_concurrent_uploads` caps this
    process's uploads in flight and `max_uploads_per_tenant` each tenant's share of
    them, so that no one tenant takes every slot.
    """

    def __init__(
        self,
        rates_of: Callable[[str], TenantRates],
        buckets: BucketTaker,
        *,
        max_concurrent_uploads: int,
        max_uploads_per_tenant: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask_rates = rates_of
        self._rates: dict[str, TenantRates] = {}
        self._buckets = buckets
        self._max_concurrent_uploads = max_concurrent_uploads
        self._max_uploads_per_tenant = max_uploads_per_tenant
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._byte_leases: dict[str, _Lease] = {}
        self._tenant_uploads: dict[str, int] = {}
        self.uploads_in_flight = 0

    async def admit_request(self, tenant: str) -> RateLimitStatus | None:
        """Take one request token; the bucket's state after it, or None when unlimited.

        Raises:
            TooManyRequests: the tenant is over its request rate (on all processes).
        """
        rate = self._rates_of(tenant).rate_limit_rps
        if rate is None:
            return None
        burst = max(1.0, rate)
        now = self._clock()
        lease = self._lease_of(self._leases, tenant, now)
        if now >= lease.expires:
            lease.tokens = 0.0
        if lease.tokens < 1:
            if now < lease.refused_until:
                raise self._over_rate(tenant, rate, burst, lease, now)
            # What is left of the last lease counts: fractions of a token add up
            # across takes instead of being stranded in each process.
            need = 1 - lease.tokens
            want = max(1.0, rate * LEASE_SECONDS)
            taken = await self._buckets.take(
                tenant, REQUESTS, BucketAsk(rate, burst, want, need, True)
            )
            lease.shared = taken.tokens
            if taken.granted is None:
                lease.refused_until = now + (need - taken.tokens) / rate
                raise self._over_rate(tenant, rate, burst, lease, now)
            lease.tokens += taken.granted
            lease.expires = now + LEASE_TTL_SECONDS
        lease.tokens -= 1
        return TokenBucket(rate, burst).status(REQUESTS, lease.shared + lease.tokens)

    def _rates_of(self, tenant: str) -> TenantRates:
        # Two lookups per upload otherwise, each through pydantic attribute access.
        rates = self._rates.get(tenant)
        if rates is None:
            if len(self._rates) >= MAX_LEASES:
                self._rates.clear()  # bounded whatever names clients send
            rates = self._rates[tenant] = self._ask_rates(tenant)
        return rates

    @staticmethod
    def _lease_of(leases: dict[str, _Lease], tenant: str, now: float) -> _Lease:
        """The tenant's lease in `leases`, new if it has none. Past `MAX_LEASES`,
        leases that hold nothing any more are dropped first (memory stays bounded by
        tenants active within a second or so)."""
        lease = leases.get(tenant)
        if lease is None:
            if len(leases) >= MAX_LEASES:
                for idle in [
                    t
                    for t, held in leases.items()
                    if now >= held.expires and now >= held.refused_until
                ]:
                    del leases[idle]
            lease = leases[tenant] = _Lease()
        return lease

    @staticmethod
    def _over_rate(
        tenant: str, rate: float, burst: float, lease: _Lease, now: float
    ) -> TooManyRequests:
        # The balance as refilled since it was seen (no one can have added more).
        tokens = 1 - (lease.refused_until - now) * rate
        return TooManyRequests(
            f"tenant {tenant!r} is over its request rate",
            math.ceil(lease.refused_until - now),
            TokenBucket(rate, burst).status(REQUESTS, tokens),
        )

    async def admit_upload(self, tenant: str, declared_size: int | None) -> UploadPass:
        """Take an upload slot and, for a tenant with a bandwidth limit, its bytes:
        a declared length at once (the bucket must hold it, or be full when it is
        larger: the tenant then waits the debt off; one within a lease of
        `LEASE_SECONDS` of the bandwidth is drawn from this process's lease of the
        tenant's bytes, without a database round while it lasts); a body of unknown length is
        admitted when the bucket is not in debt and charged as it arrives.
        `UploadPass.done()` gives the slot back.

        Raises:
            TooManyRequests: the process has no free upload slot, the tenant has its
                share of them, or the bucket does not hold the bytes.
        """
        cap, share = self._max_concurrent_uploads, self._max_uploads_per_tenant
        if self.uploads_in_flight >= cap:
            raise TooManyRequests(
                "too many uploads in flight on this server",
                1,
                RateLimitStatus("concurrent-uploads", cap, 0, 1),
            )
        if self._tenant_uploads.get(tenant, 0) >= share:
            raise TooManyRequests(
                f"tenant {tenant!r} has {share} uploads in flight on this server already",
                1,
                RateLimitStatus("tenant-concurrent-uploads", share, 0, 1),
            )
        self.uploads_in_flight += 1
        self._tenant_uploads[tenant] = self._tenant_uploads.get(tenant, 0) + 1
        rate = self._rates_of(tenant).upload_bps
        lease = None
        if rate is not None and declared_size is not None and declared_size <= rate * LEASE_SECONDS:
            lease = self._lease_of(self._byte_leases, tenant, self._clock())
        upload = UploadPass(
            self._buckets,
            tenant,
            rate,
            declared_size,
            release_slot=lambda: self._slot_done(tenant),
            lease=lease,
            clock=self._clock,
        )
        try:
            await upload.admit()
        except BaseException:
            self._slot_done(tenant)
            raise
        return upload

    def _slot_done(self, tenant: str) -> None:
        self.uploads_in_flight -= 1
        left = self._tenant_uploads.get(tenant, 1) - 1
        if left > 0:
            self._tenant_uploads[tenant] = left
        else:
            self._tenant_uploads.pop(tenant, None)


class UploadPass:
    """One admitted upload: counts its bytes against the tenant's bandwidth."""

    def __init__(
        self,
        buckets: BucketTaker,
        tenant: str,
        rate: int | None,
        declared_size: int | None,
        *,
        release_slot: Callable[[], None],
        lease: _Lease | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = buckets
        self._release_slot = release_slot
        self._lease = lease  # the process's lease of the tenant's bytes, to draw from
        self._clock = clock
        self._tenant = tenant
        self._rate = rate
        self._declared = declared_size
        self._pending = 0  # bytes of an undeclared body not yet charged
        self._flush = max(FLUSH_MIN_BYTES, int((rate or 0) * FLUSH_SECONDS))
        self.received = 0
        self._done = False

    async def admit(self) -> None:
        """Take a declared length's bytes, or check the bucket is not in debt.

        Raises:
            TooManyRequests: the bucket does not hold them (or is in debt).
        """
        rate = self._rate
        if rate is None:
            return
        amount = float(self._declared or 0)
        if self._lease is not None:
            await self._draw(self._lease, rate, amount)
            return
        minimum = min(amount, float(rate))
        taken = await self._buckets.take(
            self._tenant, UPLOAD_BYTES, BucketAsk(rate, rate, amount, minimum)
        )
        if taken.granted is None:
            raise self._over_bandwidth(rate, taken.tokens, minimum)

    async def _draw(self, lease: _Lease, rate: int, amount: float) -> None:
        """Take `amount` bytes from the lease, topping it up with one take of a
        lease's worth (at least what it lacks) when it holds too few."""
        now = self._clock()
        if now >= lease.expires:
            lease.tokens = 0.0
        if lease.tokens > 0 and lease.tokens >= amount:
            lease.tokens -= amount
            return
        need = amount - lease.tokens
        if now < lease.refused_until:
            # Refused since: until the bucket can have refilled, without asking it.
            raise self._over_bandwidth(rate, need - (lease.refused_until - now) * rate, need)
        # What the lease holds is set aside across the take, so that an upload
        # drawing on it meanwhile cannot spend it twice.
        held, lease.tokens = lease.tokens, 0.0
        want = max(need, rate * LEASE_SECONDS)
        try:
            taken = await self._buckets.take(
                self._tenant, UPLOAD_BYTES, BucketAsk(rate, rate, want, need, True)
            )
        except BaseException:
            lease.tokens += held
            raise
        if taken.granted is None:
            lease.tokens += held
            lease.refused_until = now + (need - taken.tokens) / rate
            raise self._over_bandwidth(rate, taken.tokens, need)
        lease.tokens += held + taken.granted - amount
        lease.expires = now + LEASE_TTL_SECONDS

    def _over_bandwidth(self, rate: int, tokens: float, minimum: float) -> TooManyRequests:
        return TooManyRequests(
            f"tenant {self._tenant!r} is over its upload bandwidth",
            math.ceil((minimum - tokens) / rate),
            TokenBucket(rate, rate).status(UPLOAD_BYTES, tokens),
        )

    async def count(self, size: int) -> None:
        """`size` more bytes arrived. A body of unknown length is charged every
        `FLUSH_SECONDS` of the rate and paused while the bucket is in debt, so that
        parallel uploads of a tenant share its bandwidth instead of adding to it."""
        self.received += size
        if self._rate is None or self._declared is not None:
            return
        self._pending += size
        if self._pending >= self._flush:
            tokens = await self._charge()
            if tokens < 0:
                await asyncio.sleep(min(PACE_MAX_SECONDS, -tokens / self._rate))

    async def done(self) -> None:
        """Give the slot back; settle the bytes: charge what is uncharged, give back
        what a declared length reserved but never arrived (a failed upload)."""
        if self._done:
            return
        self._done = True
        self._release_slot()
        if self._rate is None:
            return
        if self._declared is not None:
            self._pending = self.received - self._declared  # negative: given back
            lease = self._lease
            if lease is not None and self._clock() < lease.expires:
                lease.tokens -= self._pending  # back to the lease it came from
                self._pending = 0
        if self._pending:
            # On a database failure the bucket misses these bytes: a little more for
            # the tenant once, never a failed upload.
            with anyio.CancelScope(shield=True), contextlib.suppress(StorageError):
                await self._charge()

    async def _charge(self) -> float:
        rate, amount = float(self._rate or 0), float(self._pending)
        self._pending = 0
        taken = await self._buckets.take(
            self._tenant, UPLOAD_BYTES, BucketAsk(rate, rate, amount, -math.inf)
        )
        return taken.tokens
