"""`make loadtest`: a bounded mixed workload against a fresh local server.

Starts `juststorage serve` on 127.0.0.1 (a free port, a temporary data directory,
SQLite unless DATABASE_URL is given, --workers 2), runs CLIENTS concurrent
clients for DURATION seconds doing small and large uploads, reads by id and by
key, lists and deletes, then prints throughput, p50/p99 latency and errors per
operation, and checks the server's /metrics (scraped before and after) against
the client's own counts. Exits 1 if any count disagrees or any request failed.

    python scripts/loadtest.py [--clients 16] [--duration 15] [--workers 2]
        [--client-processes 4] [--url URL --key KEY]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from juststorage import testing

NAMESPACE, TENANT = "load", "loadtest"
BOOTSTRAP_KEY = "loadtest-key-0123456789abcdef0123456789"
SMALL, LARGE = 4 * 1024, 4 * 1024 * 1024
# Operation mix (weights). Uploads of small bodies come from a pool: many dedup hits.
MIX = {
    "upload_small": 30,
    "upload_large": 4,
    "get_by_id": 26,
    "get_by_key": 20,
    "list": 10,
    "delete": 10,
}
SMALL_BODIES = [hashlib.sha256(str(i).encode()).digest() * (SMALL // 32) for i in range(64)]
# Large bodies are unique (a counter in front of shared random bytes): no dedup.
_LARGE_TAIL = os.urandom(LARGE - 32)
REQUEST_TIMEOUT_S = 60.0
_SAMPLE = re.compile(r"^([a-z_]+)\{([^}]*)\} (\S+)$|^([a-z_]+) (\S+)$")


@dataclass
class OpStats:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    bytes: int = 0


@dataclass
class Tally:
    ops: dict[str, OpStats] = field(default_factory=lambda: defaultdict(OpStats))
    # (method, status, namespace label) of every /v1 request answered, as the server
    # should count them: the namespace only on a success that touched an object
    answered: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    uploaded_bytes: int = 0
    downloaded_bytes: int = 0


def _parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        if match.group(1):
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2)))
            out[(match.group(1), labels)] = float(match.group(3))
        else:
            out[(match.group(4), frozenset())] = float(match.group(5))
    return out


def _total(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **want: str
) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(want.items()) <= ls)


async def _client(worker: int, client: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    rng = random.Random(worker)
    mine: list[tuple[str, str]] = []  # (id, key) of this client's live objects
    ops, weights = list(MIX), list(MIX.values())
    n = 0
    while time.monotonic() < deadline:
        op = rng.choices(ops, weights)[0]
        if op in ("get_by_id", "get_by_key", "delete") and not mine:
            op = "upload_small"
        n += 1
        started = time.perf_counter()
        try:
            if op.startswith("upload"):
                key = f"w{worker}/obj-{n}"
                body = (
                    rng.choice(SMALL_BODIES)
                    if op == "upload_small"
                    else hashlib.sha256(f"{key}/{time.time_ns()}".encode()).digest() + _LARGE_TAIL
                )
                response = await client.post(
                    "/v1/objects",
                    headers={"X-Tenant": TENANT, "X-Namespace": NAMESPACE, "X-Key": key},
                    content=body,
                )
                ok = response.status_code == 201
                if ok:
                    mine.append((response.json()["id"], key))
                    tally.uploaded_bytes += len(body)
                    tally.ops[op].bytes += len(body)
            elif op == "get_by_id":
                object_id, _ = rng.choice(mine)
                response = await client.get(
                    f"/v1/objects/{object_id}", headers={"X-Tenant": TENANT}
                )
                ok = response.status_code == 200
            elif op == "get_by_key":
                _, key = rng.choice(mine)
                response = await client.get(f"/v1/objects/by-key/{NAMESPACE}/{TENANT}/{key}")
                ok = response.status_code == 200
            elif op == "list":
                response = await client.get(
                    "/v1/objects",
                    params={
                        "tenant": TENANT,
                        "namespace": NAMESPACE,
                        "prefix": f"w{worker}/",
                        "limit": "100",
                    },
                )
                ok = response.status_code == 200
            else:
                object_id, _ = mine.pop(rng.randrange(len(mine)))
                response = await client.delete(
                    f"/v1/objects/{object_id}", headers={"X-Tenant": TENANT}
                )
                ok = response.status_code == 204
            if op.startswith("get") and ok:
                tally.downloaded_bytes += len(response.content)
                tally.ops[op].bytes += len(response.content)
            empty_page = op == "list" and ok and not response.json()["items"]
            label = NAMESPACE if ok and not empty_page else ""
            tally.answered[(response.request.method, response.status_code, label)] += 1
            if not ok:
                tally.ops[op].errors[str(response.status_code)] += 1
        except httpx.HTTPError as exc:
            tally.ops[op].errors[type(exc).__name__] += 1
            continue
        tally.ops[op].latencies.append(time.perf_counter() - started)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        response = await client.get(f"{url}/metrics")
        response.raise_for_status()
        return _parse_metrics(response.text)


async def _clients(url: str, key: str, workers: range, deadline: float) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=len(workers), max_keepalive_connections=len(workers))
    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {key}"},
        timeout=REQUEST_TIMEOUT_S,
        limits=limits,
        trust_env=False,
    ) as client:
        await asyncio.wait_for(
            asyncio.gather(*(_client(w, client, deadline, tally) for w in workers)),
            timeout=deadline - time.monotonic() + 2 * REQUEST_TIMEOUT_S,
        )
    return tally


def _client_process(url: str, key: str, workers: range, deadline: float) -> Tally:
    return asyncio.run(_clients(url, key, workers, deadline))


def _merge(parts: list[Tally]) -> Tally:
    total = Tally()
    for part in parts:
        for op, stats in part.ops.items():
            total.ops[op].latencies += stats.latencies
            total.ops[op].errors += stats.errors
            total.ops[op].bytes += stats.bytes
        total.answered += part.answered
        total.uploaded_bytes += part.uploaded_bytes
        total.downloaded_bytes += part.downloaded_bytes
    return total


async def run(url: str, key: str, clients: int, duration: float, processes: int) -> int:
    """`clients` concurrent clients spread over `processes` client processes (one
    Python process cannot drive the server: httpx costs more CPU than it)."""
    before = await _scrape(url)
    processes = max(1, min(processes, clients))
    started = time.monotonic()
    deadline = started + duration
    shares = [range(p, clients, processes) for p in range(processes)]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=processes) as pool:
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _client_process, url, key, share, deadline)
                for share in shares
            )
        )
    elapsed = time.monotonic() - started
    tally = _merge(list(parts))
    after = await _scrape(url)

    print(f"\nload test: {clients} clients in {processes} processes, {elapsed:.1f} s, {url}\n")
    head = ("operation", "count", "errors", "ops/s", "MB/s", "p50 ms", "p99 ms")
    print(f"{head[0]:<14}" + "".join(f"{h:>9}" for h in head[1:]))
    total_errors = 0
    for op in MIX:
        stats = tally.ops[op]
        count = len(stats.latencies) + sum(stats.errors.values())
        errors = sum(stats.errors.values())
        total_errors += errors
        p50 = _percentile(stats.latencies, 0.5) * 1000
        p99 = _percentile(stats.latencies, 0.99) * 1000
        print(
            f"{op:<14}{count:>9}{errors:>9}{count / elapsed:>9.1f}"
            f"{stats.bytes / elapsed / 1e6:>9.1f}{p50:>9.2f}{p99:>9.2f}"
            + (f"  {dict(stats.errors)}" if errors else "")
        )
    all_ops = sum(len(s.latencies) + sum(s.errors.values()) for s in tally.ops.values())
    print(f"{'all':<14}{all_ops:>9}{total_errors:>9}{all_ops / elapsed:>9.1f}")

    print("\n/metrics after minus before, against the client's counts:")
    mismatches = 0

    def check(label: str, server: float, client_count: float) -> None:
        nonlocal mismatches
        ok = server == client_count
        mismatches += not ok
        verdict = "ok  " if ok else "DIFF"
        print(f"  {verdict} {label:<44} server {server:>12.0f}  client {client_count:>12.0f}")

    expected = Counter(tally.answered)
    expected[("GET", 200, "")] += 1  # the /metrics scrape that took `before` counts in `after`
    for (method, status, namespace), count in sorted(expected.items()):
        labels = {"method": method, "status": str(status), "namespace": namespace}
        delta = _total(after, "just_storage_requests_total", **labels) - _total(
            before, "just_storage_requests_total", **labels
        )
        check(f"requests_total{{{method},{status},namespace={namespace!r}}}", delta, count)
    for name, client_bytes in (
        ("just_storage_uploaded_bytes_total", tally.uploaded_bytes),
        ("just_storage_downloaded_bytes_total", tally.downloaded_bytes),
    ):
        check(name, _total(after, name) - _total(before, name), client_bytes)
    hits = _total(after, "just_storage_dedup_hits_total") - _total(
        before, "just_storage_dedup_hits_total"
    )
    print(
        f"  info dedup hits: {hits:.0f} of {len(tally.ops['upload_small'].latencies)} small uploads"
    )
    gc_runs = _total(after, "just_storage_gc_runs_total") - _total(
        before, "just_storage_gc_runs_total"
    )
    gc_blobs = _total(after, "just_storage_gc_deleted_blobs_total") - _total(
        before, "just_storage_gc_deleted_blobs_total"
    )
    print(f"  info gc passes: {gc_runs:.0f}, blobs deleted by gc: {gc_blobs:.0f}")
    print(f"\n{mismatches} metric mismatches, {total_errors} request errors")
    return 1 if mismatches or total_errors else 0


def _start_server(tmp: Path, workers: int) -> testing.Server:
    extra = {
        "API_KEYS": f"{BOOTSTRAP_KEY}:*:admin",
        "JUSTSTORAGE_GC_INTERVAL_S": "2",
        "JUSTSTORAGE_GC_GRACE_S": "0",
    }
    if os.environ.get("DATABASE_URL"):
        extra["DATABASE_URL"] = os.environ["DATABASE_URL"]
    return testing.start(tmp, extra, workers=workers, health_path="/ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds (at most 300)")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--client-processes", type=int, default=4, help="load client processes")
    parser.add_argument("--url", help="use a running server on 127.0.0.1 instead of starting one")
    parser.add_argument("--key", default=BOOTSTRAP_KEY, help="API key with the admin scope")
    args = parser.parse_args()
    duration = min(max(args.duration, 1.0), 300.0)
    if args.url:
        if not re.match(r"^http://(127\.0\.0\.1|localhost)(:\d+)?$", args.url):
            raise SystemExit("--url must be http://127.0.0.1:<port>")
        return asyncio.run(run(args.url, args.key, args.clients, duration, args.client_processes))
    tmp = Path(tempfile.mkdtemp(prefix="juststorage-loadtest-"))
    try:
        server = _start_server(tmp, args.workers)
        try:
            return asyncio.run(
                run(server.url, args.key, args.clients, duration, args.client_processes)
            )
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
