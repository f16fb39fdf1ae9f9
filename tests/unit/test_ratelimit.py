"""Throttle on a fake clock: what the X-RateLimit-* headers say, and when 429 comes."""

from __future__ import annotations

import pytest

from juststorage.api.errors import rate_limit_headers
from juststorage.application.ratelimit import Throttle
from juststorage.config import Settings, TenantLimits
from juststorage.domain.errors import TooManyRequests
from juststorage.domain.limits import RateLimitStatus


class Tick:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _throttle(settings: Settings, clock: Tick) -> Throttle:
    return Throttle(settings.limits_for, settings.max_concurrent_uploads, clock)


def test_unlimited_tenant_has_no_status() -> None:
    assert _throttle(Settings(), Tick()).admit_request("acme") is None


def test_request_bucket_counts_down_then_refuses_with_its_status() -> None:
    clock = Tick()
    throttle = _throttle(Settings(rate_limit_rps=2), clock)
    assert throttle.admit_request("acme") == RateLimitStatus("requests", 2, 1, 1)
    assert throttle.admit_request("acme") == RateLimitStatus("requests", 2, 0, 1)
    with pytest.raises(TooManyRequests) as refused:
        throttle.admit_request("acme")
    assert refused.value.retry_after_seconds == 1
    assert refused.value.limit == RateLimitStatus("requests", 2, 0, 1)
    assert rate_limit_headers(refused.value.limit) == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1",
        "X-RateLimit-Resource": "requests",
    }
    clock.now += 1.0
    assert throttle.admit_request("acme") == RateLimitStatus("requests", 2, 1, 1)
    assert throttle.admit_request("other") == RateLimitStatus("requests", 2, 1, 1)


def test_per_tenant_rate_overrides_the_default() -> None:
    settings = Settings(rate_limit_rps=100, tenants={"slow": TenantLimits(rate_limit_rps=0.5)})
    throttle = _throttle(settings, Tick())
    assert throttle.admit_request("slow") == RateLimitStatus("requests", 1, 0, 2)
    assert throttle.admit_request("fast") == RateLimitStatus("requests", 100, 99, 1)


def test_upload_debt_refuses_the_next_upload_until_paid() -> None:
    clock = Tick()
    throttle = _throttle(Settings(upload_bps=1000), clock)
    throttle.admit_upload("acme")
    throttle.count_upload_bytes("acme", 5000)
    throttle.upload_done()
    with pytest.raises(TooManyRequests) as refused:
        throttle.admit_upload("acme")
    assert refused.value.retry_after_seconds == 4
    assert refused.value.limit == RateLimitStatus("upload-bytes", 1000, 0, 5)
    clock.now += 4.0
    throttle.admit_upload("acme")
    assert throttle.uploads_in_flight == 1


def test_concurrency_cap_says_how_many_slots_there_are() -> None:
    throttle = _throttle(Settings(max_concurrent_uploads=1), Tick())
    throttle.admit_upload("a")
    with pytest.raises(TooManyRequests) as refused:
        throttle.admit_upload("b")
    assert refused.value.limit == RateLimitStatus("concurrent-uploads", 1, 0, 1)


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
