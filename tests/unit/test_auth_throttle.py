"""The failed-authentication brake: what counts as one address, and what a flood of
new addresses can and cannot make it forget."""

from __future__ import annotations

import pytest

from juststorage.application import auth_throttle
from juststorage.application.auth_throttle import FailedAuthentications, address_key
from juststorage.domain.errors import TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fail(failures: FailedAuthentications, address: str, times: int = 1) -> None:
    for _ in range(times):
        failures.failed(address)


def test_addresses_are_keyed_by_ipv6_64_and_the_ipv4_of_a_mapped_one() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("2001:DB8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("testclient") == "testclient"  # not an address: as it is


def test_rotating_ipv6_addresses_inside_a_64_shares_one_bucket() -> None:
    failures = FailedAuthentications(3, Clock())
    for host in range(3):
        failures.check(f"2001:db8:1:2::{host + 1:x}")
        failures.failed(f"2001:db8:1:2::{host + 1:x}")
    with pytest.raises(TooManyRequests):
        failures.check("2001:db8:1:2:dead:beef:0:1")  # a fresh address of the same /64
    failures.check("2001:db8:1:3::1")  # the next /64 is someone else


def test_an_ipv4_mapped_client_shares_the_bucket_of_its_ipv4_address() -> None:
    failures = FailedAuthentications(2, Clock())
    _fail(failures, "::ffff:198.51.100.9")
    _fail(failures, "198.51.100.9")
    with pytest.raises(TooManyRequests):
        failures.check("::ffff:198.51.100.9")
    with pytest.raises(TooManyRequests):
        failures.check("198.51.100.9")


def test_a_flood_of_new_addresses_does_not_reset_a_blocked_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The table is full of addresses with one failure each: the ones evicted to make
    room are those, never the address that used up its tries, however old."""
    monkeypatch.setattr(auth_throttle, "MAX_TRACKED_ADDRESSES", 50)
    failures = FailedAuthentications(3, Clock())
    _fail(failures, "203.0.113.1", 3)
    for host in range(500):
        _fail(failures, f"10.{host // 256}.{host % 256}.1")
    with pytest.raises(TooManyRequests):
        failures.check("203.0.113.1")
    assert len(failures._buckets) <= 50  # the memory bound holds


def test_eviction_drops_refilled_addresses_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth_throttle, "MAX_TRACKED_ADDRESSES", 10)
    clock = Clock()
    failures = FailedAuthentications(2, clock)
    _fail(failures, "203.0.113.1", 2)
    for host in range(9):
        _fail(failures, f"10.0.0.{host}")
    clock.now = 30.0  # the others refilled; the blocked one got one try back
    _fail(failures, "203.0.113.1")
    _fail(failures, "10.0.1.1")  # full: the nine refilled go
    assert set(failures._buckets) == {"203.0.113.1", "10.0.1.1"}
    with pytest.raises(TooManyRequests):
        failures.check("203.0.113.1")
