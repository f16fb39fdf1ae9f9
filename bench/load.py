"""Small objects over HTTP with aiohttp: N uploads then N downloads, C concurrent clients.

Each body is random and distinct (no dedup); each download is compared byte for byte.
Every phase stops issuing requests after `phase_timeout_s`.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Phase:
    op: str
    planned: int
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timed_out: bool = False
    usage: dict[str, float] = field(default_factory=dict)  # probe deltas over the phase

    @property
    def ops_per_s(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct_ms(self, p: float) -> float:
        lat = sorted(self.latencies)
        if not lat:
            return float("nan")
        return lat[max(0, math.ceil(p / 100 * len(lat)) - 1)] * 1e3

    @property
    def complete(self) -> bool:
        return len(self.latencies) == self.planned and not self.errors


Probe = Callable[[], dict[str, float]]


async def _run(
    n: int, concurrency: int, op: Any, phase: Phase, timeout_s: float, probe: Probe | None = None
) -> Phase:
    it = iter(range(n))
    deadline = time.monotonic() + timeout_s

    async def worker() -> None:
        for i in it:
            if time.monotonic() > deadline:
                phase.timed_out = True
                return
            t0 = time.perf_counter()
            try:
                await op(i)
                phase.latencies.append(time.perf_counter() - t0)
            except Exception as exc:  # counted and reported, not hidden
                phase.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if len(phase.errors) > 20:
                    phase.timed_out = True
                    return

    before = probe() if probe else {}
    t0 = time.perf_counter()
    try:
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(concurrency))), timeout_s + 30
        )
    except TimeoutError:
        phase.timed_out = True
    phase.seconds = time.perf_counter() - t0
    if probe:
        after = probe()
        phase.usage = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return phase


async def small_objects(
    url: str | list[str],
    token: str | None,
    tenant: str,
    namespace: str,
    *,
    n: int,
    size: int,
    concurrency: int,
    phase_timeout_s: float = 60.0,
    probe: Probe | None = None,
) -> tuple[Phase, Phase]:
    """`probe()` returns cumulative counters (CPU seconds...); each phase keeps their deltas.

    Several URLs (hosts of one store): uploads go round robin, and each download to
    the host after the one that took the upload.
    """
    urls = [url] if isinstance(url, str) else url
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    bodies = [os.urandom(size) for _ in range(n)]
    ids: list[str | None] = [None] * n
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:

        async def put(i: int) -> None:
            headers = {
                **auth,
                "X-Tenant": tenant,
                "X-Namespace": namespace,
                "X-Key": f"small/{i:06d}",
                "Content-Type": "application/octet-stream",
            }
            base = urls[i % len(urls)]
            async with session.post(f"{base}/v1/objects", data=bodies[i], headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"POST -> {r.status} {(await r.read())[:200]!r}")
                ids[i] = (await r.json(content_type=None))["id"]

        async def get(i: int) -> None:
            if ids[i] is None:
                raise RuntimeError("not stored")
            headers = {**auth, "X-Tenant": tenant}
            base = urls[(i + 1) % len(urls)]
            async with session.get(f"{base}/v1/objects/{ids[i]}", headers=headers) as r:
                if r.status != 200:
                    raise RuntimeError(f"GET -> {r.status} {(await r.read())[:200]!r}")
                if await r.read() != bodies[i]:
                    raise RuntimeError(f"content mismatch on {i}")

        puts = await _run(n, concurrency, put, Phase("PUT", n), phase_timeout_s, probe)
        gets = await _run(n, concurrency, get, Phase("GET", n), phase_timeout_s, probe)
    return puts, gets


def run_small(
    url: str | list[str], token: str | None, tenant: str, namespace: str, **kw: Any
) -> tuple[Phase, Phase]:
    """`small_objects` from synchronous code."""
    return asyncio.run(small_objects(url, token, tenant, namespace, **kw))
