"""Failed authentications per client address (a brute-force brake): after
`per_minute` failures from one address, every request from it is refused with 429
until its bucket refills, whatever credential it sends; other addresses are not
affected. Per process: with N workers an address gets up to N times as many tries.

An IPv6 client is counted by its /64 (one host's or site's usual allocation, which
it can rotate addresses within at will), an IPv4-mapped IPv6 one by its IPv4 address.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable

from juststorage.domain.errors import TooManyRequests
from juststorage.domain.limits import TokenBucket

MAX_TRACKED_ADDRESSES = 10_000  # memory bound under a flood from many addresses
# When the table is full, this share of it (the entries holding the fewest failures)
# is dropped at once, so that the sort is paid once per many new addresses.
EVICT_FRACTION = 0.1
IPV6_PREFIX = 64


def address_key(address: str) -> str:
    """The key failures are counted under: an IPv6 address's /64, the IPv4 address of
    an IPv4-mapped one, any other address (or a non-address) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class FailedAuthentications:
    """A token bucket of `per_minute` failures (refilling at that rate) per address;
    `per_minute` 0 turns it off."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._bucket = TokenBucket(per_minute / 60.0, float(per_minute))
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, stamp)

    def _tokens(self, address: str, now: float) -> float:
        tokens, stamp = self._buckets.get(address, (self._bucket.burst, now))
        return self._bucket.refilled(tokens, now - stamp)

    def check(self, address: str) -> None:
        """Raises TooManyRequests when `address` used up its failures."""
        if not self._bucket.burst or not self._buckets:
            return  # the usual case: no failures to remember, no address to parse
        address = address_key(address)
        if address not in self._buckets:
            return
        tokens = self._tokens(address, self._clock())
        if tokens < 1:
            raise TooManyRequests(
                "too many failed authentications from this address",
                math.ceil((1 - tokens) / self._bucket.rate),
                self._bucket.status("failed-authentications", tokens),
            )

    def failed(self, address: str) -> None:
        """Count one failed authentication from `address`."""
        if not self._bucket.burst:
            return
        address = address_key(address)
        now = self._clock()
        tokens = self._tokens(address, now) - 1
        if address not in self._buckets and len(self._buckets) >= MAX_TRACKED_ADDRESSES:
            self._evict(now)
        self._buckets[address] = (tokens, now)

    def _evict(self, now: float) -> None:
        """Make room: drop the addresses whose bucket is full again (they hold no
        failure), and at least a tenth of the table, those holding the fewest
        failures. An address that used up its tries goes only after every address
        with tries left, so a flood of new addresses does not reset it cheaply: that
        takes as many addresses as the table holds, each failing as often."""
        tokens = {address: self._tokens(address, now) for address in self._buckets}
        refilled = sum(1 for left in tokens.values() if left >= self._bucket.burst)
        count = max(refilled, int(MAX_TRACKED_ADDRESSES * EVICT_FRACTION), 1)
        for address in sorted(tokens, key=tokens.__getitem__, reverse=True)[:count]:
            del self._buckets[address]
