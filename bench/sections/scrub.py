"""`scrub`: the background re-hash of every blob (SPEC §8.9) at a configured rate.

One server with `JUSTSTORAGE_SCRUB_BYTES_PER_S` set, holding `scrub_bulk_bytes` of
1 MiB objects: its `just_storage_scrub_bytes_total` over a window against the rate
(target: within 10 %) and against this machine's SHA-256 rate (bench/bounds.py:
what the scrub could read at most). Then 4 KiB GETs x16 on a second server without
scrub (idle) and on the scrubbing one, same data, one after the other: p99 while
scrubbing against idle (target: at most 2x).
"""

from __future__ import annotations

import os
import re
import time

import httpx

from .. import bounds
from ..context import MIB, SMALL_CONCURRENCY, TENANT, Bench, Service, cpu_note, lat, run_small_on
from ..table import Report, say
from .inline import start_together, stop_together

RATE_TOLERANCE = 0.10
LATENCY_TARGET = 2.0
_COUNTER = re.compile(r"^just_storage_scrub_bytes_total (\S+)$", re.MULTILINE)


def run(bench: Bench) -> Report:
    report = Report("scrub", "sqlite")
    sizes = bench.sizes
    rate = sizes.scrub_rate
    scrubbing = Service(
        bench.tmp, "scrub-on", None, 1, {"JUSTSTORAGE_SCRUB_BYTES_PER_S": str(rate)}
    )
    idle = Service(bench.tmp, "scrub-off")
    start_together(bench, [scrubbing, idle])
    try:
        for svc in (scrubbing, idle):
            _fill(svc, sizes.scrub_bulk_bytes)
        sha_bytes_per_s = _sha256_rate(bench, sizes.scrub_bulk_bytes)
        measured, window = _scrub_rate(scrubbing, sizes.scrub_window_s)
        say(
            f"scrub: {measured / MIB:.1f} MiB/s over {window:.1f} s at a rate of"
            f" {rate / MIB:.1f} MiB/s; SHA-256 alone {sha_bytes_per_s / MIB:.0f} MiB/s"
        )
        _, idle_gets, _ = run_small_on(idle, "scrub-gets", sizes.scrub_get_n)
        _, busy_gets, _ = run_small_on(scrubbing, "scrub-gets", sizes.scrub_get_n)
        during, _ = _scrub_rate(scrubbing, 0.0)  # the counter kept moving meanwhile
    finally:
        stop_together([scrubbing, idle])
    ratio = measured / rate
    report.row(
        f"scrub throughput at {rate / MIB:g} MiB/s",
        f"{measured / MIB:.1f} MiB/s",
        f"configured {rate / MIB:g} MiB/s",
        ratio,
        f"{1 - RATE_TOLERANCE:g}-{1 + RATE_TOLERANCE:g}",
        abs(ratio - 1) <= RATE_TOLERANCE,
        f"{sizes.scrub_bulk_bytes // MIB} MiB of 1 MiB blobs, {window:.0f} s window",
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
    idle_p99, busy_p99 = idle_gets.pct_ms(99), busy_gets.pct_ms(99)
    clean = idle_gets.complete and busy_gets.complete
    latency_ratio = busy_p99 / idle_p99 if idle_p99 else None
    report.row(
        f"4 KiB GET x{SMALL_CONCURRENCY} p99, scrubbing vs idle",
        f"{busy_p99:.1f} ms",
        f"idle {idle_p99:.1f} ms",
        latency_ratio,
        f"<= {LATENCY_TARGET:g}",
        clean and latency_ratio is not None and latency_ratio <= LATENCY_TARGET,
        f"scrubbing: {lat(busy_gets)}, {cpu_note(busy_gets)}; idle: {lat(idle_gets)};"
        f" scrub counter at {during / MIB:.0f} MiB after",
    )
    return report


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


def _scrub_bytes(svc: Service) -> float:
    text = svc.server.client.get("/metrics", headers={"Authorization": f"Bearer {svc.token}"}).text
    match = _COUNTER.search(text)
    return float(match.group(1)) if match else 0.0


def _scrub_rate(svc: Service, window_s: float) -> tuple[float, float]:
    """Bytes per second the scrub counter moved over `window_s` (with 0: the counter
    itself, and 0)."""
    if window_s <= 0:
        return _scrub_bytes(svc), 0.0
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
