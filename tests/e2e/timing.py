"""Does one kind of request take longer than another? A comparison for timing side
channels that a noisy, shared machine does not trip.

The two kinds are sent alternately, in a random order within each pair, so that
drift (other processes, CPU frequency, caches warming) hits both alike; the
statistic is the median of the paired differences, which a few stalls cannot move;
and the tolerance is relative to the requests' own latency, with a floor.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# A difference smaller than both of these is noise on a shared 2-core machine (medians
# of alternating requests moved by up to ~3 % between runs of the same build), and
# well under what a network adds between a client and the server.
RELATIVE_TOLERANCE = 0.10
ABSOLUTE_TOLERANCE_S = 100e-6


@dataclass(frozen=True, slots=True)
class Comparison:
    median_a_s: float
    median_b_s: float
    paired_difference_s: float  # median of (a_i - b_i)
    tolerance_s: float

    @property
    def differs(self) -> bool:
        return abs(self.paired_difference_s) > self.tolerance_s

    def __str__(self) -> str:
        return (
            f"median a {self.median_a_s * 1e6:.0f} µs, b {self.median_b_s * 1e6:.0f} µs,"
            f" paired a-b {self.paired_difference_s * 1e6:+.0f} µs"
            f" (tolerance {self.tolerance_s * 1e6:.0f} µs)"
        )


def compare(a: list[float], b: list[float]) -> Comparison:
    median_a, median_b = statistics.median(a), statistics.median(b)
    return Comparison(
        median_a,
        median_b,
        statistics.median(x - y for x, y in zip(a, b, strict=True)),
        max(ABSOLUTE_TOLERANCE_S, RELATIVE_TOLERANCE * min(median_a, median_b)),
    )


def _order(seed: int, pairs: int) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < 0.5 for _ in range(pairs)]


def measure(send_a: Callable[[], None], send_b: Callable[[], None], pairs: int) -> Comparison:
    """Time `pairs` alternating calls of each (after a few untimed ones)."""
    for _ in range(10):
        send_a()
        send_b()
    a: list[float] = []
    b: list[float] = []
    for a_first in _order(pairs, pairs):
        for send, into in [(send_a, a), (send_b, b)][:: 1 if a_first else -1]:
            start = time.perf_counter()
            send()
            into.append(time.perf_counter() - start)
    return compare(a, b)


async def measure_async(
    send_a: Callable[[], Awaitable[None]], send_b: Callable[[], Awaitable[None]], pairs: int
) -> Comparison:
    """`measure` for coroutines."""
    for _ in range(10):
        await send_a()
        await send_b()
    a: list[float] = []
    b: list[float] = []
    for a_first in _order(pairs, pairs):
        for send, into in [(send_a, a), (send_b, b)][:: 1 if a_first else -1]:
            start = time.perf_counter()
            await send()
            into.append(time.perf_counter() - start)
    return compare(a, b)
