"""Throttle on fake clocks and the fake database's shared buckets: what the
X-RateLimit-* headers say, when 429 comes, and the caps on uploads in flight."""

from __future__ import annotations

import pytest

from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.api.errors import rate_limit_headers
from juststorage.application.auth_throttle import FailedAuthentications
from juststorage.application.ratelimit import SharedBuckets, Throttle
from juststorage.config import Settings, TenantLimits
from juststorage.domain.errors import TooManyRequests
from juststorage.domain.limits import RateLimitStatus

pytestmark = pytest.mark.anyio


class Tick:
    """The process's monotonic clock (lease expiry) and the database's, together."""

    def __init__(self) -> None:
        self.now = 100.0
        self.database = FakeClock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.database.advance(seconds)


def _throttle(settings: Settings, clock: Tick, store: FakeMetadataStore | None = None) -> Throttle:
    return Throttle(
        settings.limits_for,
        SharedBuckets(store or FakeMetadataStore(clock.database)),
        max_concurrent_uploads=settings.max_concurrent_uploads,
        max_uploads_per_tenant=settings.uploads_per_tenant,
        clock=clock,
    )


async def test_unlimited_tenant_has_no_status_and_costs_no_transaction() -> None:
    clock = Tick()
    store = FakeMetadataStore(clock.database)
    throttle = _throttle(Settings(), clock, store)
    assert await throttle.admit_request("acme") is None
    await (await throttle.admit_upload("acme", 10)).done()
    assert store.commits == 0


async def test_request_bucket_counts_down_then_refuses_with_its_status() -> None:
    clock = Tick()
    throttle = _throttle(Settings(rate_limit_rps=2), clock)
    assert await throttle.admit_request("acme") == RateLimitStatus("requests", 2, 1, 1)
    assert await throttle.admit_request("acme") == RateLimitStatus("requests", 2, 0, 1)
    with pytest.raises(TooManyRequests) as refused:
        await throttle.admit_request("acme")
    assert refused.value.retry_after_seconds == 1
    assert refused.value.limit == RateLimitStatus("requests", 2, 0, 1)
    assert rate_limit_headers(refused.value.limit) == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1",
        "X-RateLimit-Resource": "requests",
    }
    clock.advance(1.0)
    assert await throttle.admit_request("acme") == RateLimitStatus("requests", 2, 1, 1)
    assert await throttle.admit_request("other") == RateLimitStatus("requests", 2, 1, 1)


async def test_per_tenant_rate_overrides_the_default() -> None:
    settings = Settings(rate_limit_rps=100, tenants={"slow": TenantLimits(rate_limit_rps=0.5)})
    throttle = _throttle(settings, Tick())
    assert await throttle.admit_request("slow") == RateLimitStatus("requests", 1, 0, 2)
    assert await throttle.admit_request("fast") == RateLimitStatus("requests", 100, 99, 1)


async def test_processes_sharing_the_database_share_the_request_rate() -> None:
    """Three throttles (three processes) on one database admit the tenant's rate once,
    not three times. A flood costs no transaction per request: tokens come in leases,
    and a refusal is remembered until the bucket can have refilled."""
    clock = Tick()
    store = FakeMetadataStore(clock.database)
    processes = [_throttle(Settings(rate_limit_rps=100), clock, store) for _ in range(3)]
    admitted = 0
    for _step in range(100):  # one second, in steps of 10 ms, 5 requests per process each
        for throttle in processes:
            for _ in range(5):
                try:
                    await throttle.admit_request("acme")
                    admitted += 1
                except TooManyRequests:
                    pass
        clock.advance(0.01)
    assert 100 + 100 * 0.9 <= admitted <= 100 + 100  # the burst, then the rate
    assert store.commits <= 2 * admitted  # of 1500 requests


async def test_a_declared_upload_reserves_its_bytes_and_parallel_ones_wait() -> None:
    clock = Tick()
    throttle = _throttle(Settings(upload_bps=1000), clock)
    first = await throttle.admit_upload("acme", 600)
    with pytest.raises(TooManyRequests) as refused:
        await throttle.admit_upload("acme", 600)  # the bucket holds 400: in parallel, no
    assert refused.value.retry_after_seconds == 1
    assert refused.value.limit == RateLimitStatus("upload-bytes", 1000, 400, 1)
    await first.count(600)
    await first.done()
    clock.advance(0.2)
    await (await throttle.admit_upload("acme", 600)).done()  # 400 + 200 = 600 refilled


async def test_small_declared_uploads_draw_on_a_lease_of_the_bandwidth() -> None:
    """Uploads within 5 % of a second's bytes cost no transaction each: a process
    takes a lease of them and spends it locally (one take per upload before)."""
    clock = Tick()
    store = FakeMetadataStore(clock.database)
    throttle = _throttle(Settings(upload_bps=100_000), clock, store)
    for _ in range(10):
        upload = await throttle.admit_upload("acme", 1000)
        await upload.count(1000)
        await upload.done()
    assert store.transactions == 2  # two leases of 5000 bytes
    failed = await throttle.admit_upload("acme", 1000)  # a third lease
    await failed.done()  # nothing arrived: back to the lease, not the database
    await (await throttle.admit_upload("acme", 5000)).done()
    assert store.transactions == 3


async def test_processes_sharing_the_database_share_the_upload_bandwidth() -> None:
    """Three processes admitting small declared uploads from their leases together
    admit the tenant's burst plus its bandwidth once, within 10 %; of their 1200
    tries most are refused without a transaction (one take each before)."""
    clock = Tick()
    store = FakeMetadataStore(clock.database)
    processes = [_throttle(Settings(upload_bps=100_000), clock, store) for _ in range(3)]
    admitted = 0
    for _step in range(100):  # one second in steps of 10 ms, 4 uploads a process each
        for throttle in processes:
            for _ in range(4):
                try:
                    upload = await throttle.admit_upload("acme", 1000)
                except TooManyRequests:
                    continue
                await upload.count(1000)
                await upload.done()
                admitted += 1000
        clock.advance(0.01)
    assert 100_000 + 100_000 * 0.9 <= admitted <= 100_000 + 100_000
    assert store.transactions < 1200 / 2  # a refusal is remembered, as for requests


async def test_a_large_upload_needs_a_full_bucket_then_the_tenant_waits_the_debt_off() -> None:
    clock = Tick()
    throttle = _throttle(Settings(upload_bps=1000), clock)
    big = await throttle.admit_upload("acme", 5000)
    await big.count(5000)
    await big.done()
    with pytest.raises(TooManyRequests) as refused:
        await throttle.admit_upload("acme", None)
    assert refused.value.retry_after_seconds == 4
    assert refused.value.limit == RateLimitStatus("upload-bytes", 1000, 0, 5)
    clock.advance(4.0)
    await (await throttle.admit_upload("acme", None)).done()


async def test_a_failed_declared_upload_gives_back_what_never_arrived() -> None:
    clock = Tick()
    throttle = _throttle(Settings(upload_bps=1000), clock)
    failed = await throttle.admit_upload("acme", 1000)
    await failed.count(100)
    await failed.done()
    await (await throttle.admit_upload("acme", 900)).done()


async def test_parallel_bodies_of_unknown_length_are_paced_to_the_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Tick()
    paused: list[float] = []

    async def sleep(seconds: float) -> None:
        paused.append(seconds)
        clock.advance(seconds)

    monkeypatch.setattr("juststorage.application.ratelimit.asyncio.sleep", sleep)
    throttle = _throttle(Settings(upload_bps=100_000), clock)
    uploads = [await throttle.admit_upload("acme", None) for _ in range(4)]
    for _ in range(10):
        for upload in uploads:
            await upload.count(16 * 1024)
    sent = 4 * 10 * 16 * 1024
    # The pauses add up to what the bytes past the burst take at the rate.
    assert sum(paused) >= (sent - 100_000 - 4 * 64 * 1024) / 100_000


async def test_concurrency_caps_per_process_and_per_tenant() -> None:
    throttle = _throttle(Settings(max_concurrent_uploads=4), Tick())
    first = await throttle.admit_upload("a", 1)  # a quarter of 4: one slot per tenant
    with pytest.raises(TooManyRequests) as refused:
        await throttle.admit_upload("a", 1)
    assert refused.value.limit == RateLimitStatus("tenant-concurrent-uploads", 1, 0, 1)
    others = [await throttle.admit_upload(t, 1) for t in ("b", "c", "d")]
    with pytest.raises(TooManyRequests) as full:
        await throttle.admit_upload("e", 1)
    assert full.value.limit == RateLimitStatus("concurrent-uploads", 4, 0, 1)
    await first.done()
    await first.done()  # once only
    assert throttle.uploads_in_flight == 3
    await throttle.admit_upload("a", 1)
    for upload in others:
        await upload.done()


def test_the_tenant_share_of_upload_slots_is_configurable() -> None:
    assert Settings().uploads_per_tenant == 16
    assert Settings(max_concurrent_uploads=2).uploads_per_tenant == 1
    assert Settings(max_concurrent_uploads_per_tenant=64).uploads_per_tenant == 64
    assert Settings(max_concurrent_uploads_per_tenant=100).uploads_per_tenant == 64


def test_failed_authentications_are_limited_per_address() -> None:
    clock = Tick()
    failures = FailedAuthentications(3, clock)
    for _ in range(3):
        failures.check("10.0.0.1")
        failures.failed("10.0.0.1")
    with pytest.raises(TooManyRequests) as refused:
        failures.check("10.0.0.1")
    assert refused.value.retry_after_seconds == 20  # one failure refills in 60 / 3 s
    failures.check("10.0.0.2")  # another address is not affected
    clock.advance(20)
    failures.check("10.0.0.1")
    FailedAuthentications(0, clock).failed("x")  # 0: off


def test_quota_falls_back_to_the_default_and_zero_is_a_quota() -> None:
    settings = Settings(
        quota_bytes=1000,
        tenants={"small": TenantLimits(quota_bytes=10), "none": TenantLimits(quota_bytes=0)},
    )
    assert settings.limits_for("small").quota_bytes == 10
    assert settings.limits_for("none").quota_bytes == 0
    assert settings.limits_for("other").quota_bytes == 1000
    assert Settings().limits_for("other").quota_bytes is None


def test_effective_limits_are_cached_and_follow_a_changed_copy() -> None:
    settings = Settings(quota_bytes=100, tenants={"big": TenantLimits(quota_bytes=1000)})
    assert settings.limits_for("anyone").quota_bytes == 100
    assert settings.limits_for("big").quota_bytes == 1000
    assert settings.limits_for("anyone") is settings.limits_for("someone else")  # one default
    changed = settings.model_copy(update={"quota_bytes": 5})
    assert changed.limits_for("anyone").quota_bytes == 5
    assert settings.limits_for("anyone").quota_bytes == 100


async def test_idle_leases_are_forgotten_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("juststorage.application.ratelimit.MAX_LEASES", 2)
    clock = Tick()
    throttle = _throttle(Settings(rate_limit_rps=100), clock)
    for tenant in ("a", "b"):
        await throttle.admit_request(tenant)
    clock.advance(2.0)  # both leases expired
    await throttle.admit_request("c")
    assert set(throttle._leases) == {"c"}
