"""`scrub`: the background re-hash of every blob (SPEC §8.9) at a configured rate.

One server on one data dir: `scrub_bulk_bytes` of 1 MiB blob files and
`scrub_get_objects` 4 KiB objects. The server is restarted between phases with
`JUSTSTORAGE_SCRUB_BYTES_PER_S` set or 0, alternately (off, on, off, on, ...), so
idle and scrubbing are measured on the same server, data and cache state. While
each phase runs, a thread evicts the 1 MiB blob files from the page cache
(posix_fadvise DONTNEED on each file, every `_EVICT_EVERY_S`), in both modes, so
that the scrub reads the disk and not memory.

- The rate: `just_storage_scrub_bytes_total` over a window against the byte rate
  the configured rate gives on this store (target: within 10 %): each blob costs
  at least `ScrubPolicy.blob_cost_bytes` of the rate, so the 4 KiB objects take
  more of it than their bytes; and against this machine's SHA-256 rate.
- The cost to a GET: p99 of `scrub_get_n` 4 KiB GETs x16 per phase (enough that
  at least 50 samples lie above the p99), scrubbing against idle in each round;
  the figure is the median of the rounds' ratios (target: at most 2x), every round
  listed.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx

from juststorage.application.scrub import ScrubPolicy

from .. import bounds, load
from ..context import MIB, SMALL_CONCURRENCY, TENANT, Bench, Service, cpu_note, lat, probe_for
from ..table import Report, say

RATE_TOLERANCE = 0.10
LATENCY_TARGET = 2.0
GET_SIZE = 4096
_COUNTER = re.compile(r"^just_storage_scrub_bytes_total (\S+)$", re.MULTILINE)
_EVICT_EVERY_S = 0.5
_NAMESPACE = "scrub-gets"


def run(bench: Bench) -> Report:
    report = Report("scrub", "sqlite")
    sizes = bench.sizes
    rate = sizes.scrub_rate
    svc = Service(bench.tmp, "scrub", None, 1, {"JUSTSTORAGE_SCRUB_BYTES_PER_S": "0"})
    bench.start(svc)
    rounds: list[tuple[load.Phase, load.Phase, float]] = []
    try:
        _fill(svc, sizes.scrub_bulk_bytes)
        objects = asyncio.run(_put_small(svc, sizes.scrub_get_objects))
        bulk = _blob_files(svc.data, min_bytes=MIB)
        say(f"scrub: {len(bulk)} blob files of 1 MiB evicted from the page cache per phase")
        sha_bytes_per_s = _sha256_rate(bench, sizes.scrub_bulk_bytes)
        measured = window = 0.0
        for index in range(sizes.scrub_rounds):
            phases = []
            for scrub_rate in (0, rate):
                _restart(svc, scrub_rate)
                with _evicting(bulk):
                    if scrub_rate:
                        _wait_for_scrub(svc)
                    if scrub_rate and index == 0:
                        measured, window = _scrub_rate(svc, sizes.scrub_window_s)
                    before = _scrub_bytes(svc)
                    gets = asyncio.run(_get_small(svc, objects, sizes.scrub_get_n))
                    scrubbed = (_scrub_bytes(svc) - before) / (gets.seconds or 1.0)
                phases.append((gets, scrubbed))
            (idle, _), (busy, busy_rate) = phases
            rounds.append((idle, busy, busy_rate))
            say(
                f"scrub round {index + 1}: GET p99 idle {idle.pct_ms(99):.1f} ms,"
                f" scrubbing {busy.pct_ms(99):.1f} ms (scrub read {busy_rate / MIB:.1f} MiB/s"
                " meanwhile)"
            )
        say(
            f"scrub: {measured / MIB:.1f} MiB/s over {window:.1f} s at a rate of"
            f" {rate / MIB:.1f} MiB/s; SHA-256 alone {sha_bytes_per_s / MIB:.0f} MiB/s"
        )
    finally:
        svc.stop()
    # The bytes a pass reads against what the pacing charges for them.
    cost = ScrubPolicy(bytes_per_second=rate).blob_cost_bytes
    small = sizes.scrub_get_objects
    stored = sizes.scrub_bulk_bytes + small * GET_SIZE
    expected = rate * stored / (sizes.scrub_bulk_bytes + small * max(GET_SIZE, cost))
    ratio = measured / expected
    report.row(
        f"scrub throughput at {rate / MIB:g} MiB/s",
        f"{measured / MIB:.1f} MiB/s",
        f"expected {expected / MIB:.1f} MiB/s",
        ratio,
        f"{1 - RATE_TOLERANCE:g}-{1 + RATE_TOLERANCE:g}",
        abs(ratio - 1) <= RATE_TOLERANCE,
        f"{sizes.scrub_bulk_bytes // MIB} MiB of 1 MiB blobs evicted from the page cache"
        f" every {_EVICT_EVERY_S:g} s and {small} 4 KiB objects (inline, each paced as"
        f" {cost // 1024} KiB): {rate / MIB:g} MiB/s of pacing reads"
        f" {expected / MIB:.1f} MiB/s of bytes; {window:.0f} s window",
    )
    report.row(
        "scrub throughput vs SHA-256",
        f"{measured / MIB:.1f} MiB/s",
        f"SHA-256 in one thread {sha_bytes_per_s / MIB:.0f} MiB/s",
        measured / sha_bytes_per_s,
        "(information)",
        None,
        "the rate, not the hash, bounds the scrub",
    )
    ratios = [busy.pct_ms(99) / idle.pct_ms(99) for idle, busy, _ in rounds]
    median = statistics.median(ratios)
    clean = all(idle.complete and busy.complete for idle, busy, _ in rounds)
    above = min(len(p.latencies) - round(0.99 * len(p.latencies)) for r in rounds for p in r[:2])
    each = "; ".join(
        f"round {i + 1}: idle {lat(idle)}, scrubbing {lat(busy)} ({r:.2f}, scrub"
        f" {busy_rate / MIB:.1f} MiB/s)"
        for i, ((idle, busy, busy_rate), r) in enumerate(zip(rounds, ratios, strict=True))
    )
    last_busy = rounds[-1][1]
    report.row(
        f"4 KiB GET x{SMALL_CONCURRENCY} p99, scrubbing vs idle (median of {len(rounds)} rounds)",
        f"{statistics.median(b.pct_ms(99) for _, b, _ in rounds):.1f} ms",
        f"idle {statistics.median(i.pct_ms(99) for i, _, _ in rounds):.1f} ms",
        median,
        f"<= {LATENCY_TARGET:g}",
        clean and median <= LATENCY_TARGET,
        f"same server restarted with the scrub off/on, {sizes.scrub_get_n} GETs a phase"
        f" ({above} samples above p99); {each}; last scrubbing phase {cpu_note(last_busy)}",
    )
    return report


def _restart(svc: Service, scrub_rate: int) -> None:
    svc.stop()
    svc.env["JUSTSTORAGE_SCRUB_BYTES_PER_S"] = str(scrub_rate)
    svc.start()


def _blob_files(data: Path, min_bytes: int) -> list[Path]:
    return [
        Path(folder) / name
        for folder, _, names in os.walk(data)
        for name in names
        if "sha256" in folder and (Path(folder) / name).stat().st_size >= min_bytes
    ]


def _evict(files: list[Path]) -> None:
    for path in files:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


@contextmanager
def _evicting(files: list[Path]) -> Iterator[None]:
    """Keep `files` out of the page cache while the block runs."""
    _evict(files)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(_EVICT_EVERY_S):
            _evict(files)

    thread = threading.Thread(target=loop, name="evict", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _wait_for_scrub(svc: Service, timeout_s: float = 30.0) -> None:
    """Until the restarted server's scrub has read something (it took the lease)."""
    deadline = time.monotonic() + timeout_s
    while _scrub_bytes(svc) <= 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the scrub did not start")
        time.sleep(0.1)


def _fill(svc: Service, total: int) -> None:
    """`total` bytes of distinct 1 MiB objects."""
    headers = {"Authorization": f"Bearer {svc.token}", "X-Tenant": TENANT}
    with httpx.Client(base_url=svc.server.url, timeout=60.0, trust_env=False) as client:
        for index in range(max(1, total // MIB)):
            response = client.post(
                "/v1/objects",
                headers={**headers, "X-Namespace": "scrub", "X-Key": f"bulk/{index:06d}"},
                content=os.urandom(MIB),
            )
            response.raise_for_status()


async def _put_small(svc: Service, n: int) -> list[tuple[str, bytes]]:
    """n distinct 4 KiB objects: their ids and bodies."""
    bodies = [os.urandom(GET_SIZE) for _ in range(n)]
    ids: list[str] = [""] * n
    async with aiohttp.ClientSession() as session:

        async def put(i: int) -> None:
            headers = {**svc.auth(), "X-Namespace": _NAMESPACE, "X-Key": f"small/{i:06d}"}
            url = f"{svc.server.url}/v1/objects"
            async with session.post(url, data=bodies[i], headers=headers) as r:
                if r.status != 201:
                    raise RuntimeError(f"POST -> {r.status}")
                ids[i] = (await r.json(content_type=None))["id"]

        phase = await load._run(n, SMALL_CONCURRENCY, put, load.Phase("PUT", n), 120.0)
    if not phase.complete:
        raise RuntimeError(f"PUT of the GET objects failed: {phase.errors[:2]}")
    return list(zip(ids, bodies, strict=True))


async def _get_small(svc: Service, objects: list[tuple[str, bytes]], n: int) -> load.Phase:
    """n GETs x16 over `objects` in turn, each body compared."""
    connector = aiohttp.TCPConnector(limit=SMALL_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as session:

        async def get(i: int) -> None:
            object_id, body = objects[i % len(objects)]
            url = f"{svc.server.url}/v1/objects/{object_id}"
            async with session.get(url, headers=svc.auth()) as r:
                if r.status != 200 or await r.read() != body:
                    raise RuntimeError(f"GET -> {r.status}")

        return await load._run(
            n, SMALL_CONCURRENCY, get, load.Phase("GET", n), 120.0, probe_for(svc)
        )


def _scrub_bytes(svc: Service) -> float:
    text = svc.server.client.get("/metrics", headers={"Authorization": f"Bearer {svc.token}"}).text
    match = _COUNTER.search(text)
    return float(match.group(1)) if match else 0.0


def _scrub_rate(svc: Service, window_s: float) -> tuple[float, float]:
    """Bytes per second the scrub counter moved over `window_s`."""
    start, began = _scrub_bytes(svc), time.monotonic()
    time.sleep(window_s)
    end, took = _scrub_bytes(svc), time.monotonic() - began
    return (end - start) / took, took


def _sha256_rate(bench: Bench, size: int) -> float:
    """SHA-256 of `size` bytes from the page cache, in this process: the hash bound."""
    source = bench.work / "scrub-sha-source"
    bounds.make_source(source, size, b"scrub")
    try:
        return size / bounds.sha256_seconds(source)
    finally:
        source.unlink()
