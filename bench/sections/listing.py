"""`list`: one list page at 100k objects, limit 1000 and 100, first and deep page.

The objects are committed through the repositories (bench/fill.py), not over HTTP.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from urllib.parse import urlencode

from ..context import TENANT, Bench, Service
from ..fill import fill_listing
from ..table import Report, say

NAMESPACE = "list100k"
TARGET_MS = 20.0


def run(bench: Bench) -> Report:
    svc = bench.svc
    n = bench.sizes.list_n
    say(f"list: stopping the server, committing {n} objects through the SQLite repositories")
    svc.stop()
    t0 = time.perf_counter()
    fill(svc, n)
    say(f"list: filled in {time.perf_counter() - t0:.1f} s (not through HTTP); restarting")
    svc.start()
    return measure(bench, svc, "sqlite", "filled through the repositories, one transaction")


def fill(svc: Service, n: int) -> None:
    """n objects in NAMESPACE, on the service's database."""
    fill_listing({"JUSTSTORAGE_DATA_DIR": str(svc.data), **svc.env}, TENANT, NAMESPACE, n)


def count_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def measure(bench: Bench, svc: Service, db: str, fill_note: str) -> Report:
    """Walk the namespace, then time the first and a deep page at limit 1000 and 100."""
    report = Report("list", db)
    n, samples = bench.sizes.list_n, bench.sizes.list_samples
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
    auth = {"Authorization": f"Bearer {svc.token}"}

    def page(limit: int, cursor: str | None) -> tuple[float, dict[str, object]]:
        q = {"namespace": NAMESPACE, "tenant": TENANT, "limit": str(limit)}
        if cursor:
            q["cursor"] = cursor
        t = time.perf_counter()
        conn.request("GET", "/v1/objects?" + urlencode(q), headers=auth)
        resp = conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t
        if resp.status != 200:
            raise RuntimeError(f"list -> {resp.status} {body[:200]!r}")
        return elapsed, json.loads(body)

    last = f"items {n - 999:,}-{n:,}"
    deep = f"items {n - 999:,}-{n - 900:,}"
    try:
        # walk everything with limit=1000 (checks completeness, finds the deep cursors)
        cursors: list[str | None] = [None]
        count, last_key, walk0 = 0, "", time.perf_counter()
        for _ in range(n // 1000 + 5):
            _, doc = page(1000, cursors[-1])
            items = doc["items"]
            assert isinstance(items, list)
            for it in items:
                if it["key"] <= last_key:
                    raise RuntimeError("listing out of order")
                last_key = it["key"]
            count += len(items)
            if not doc["next_cursor"]:
                break
            cursors.append(str(doc["next_cursor"]))
        walk_s = time.perf_counter() - walk0
        if count != n:
            raise RuntimeError(f"listed {count}, inserted {n}")
        say(f"list on {db}: walked {count} objects in {len(cursors)} pages, {walk_s:.2f} s")
        last_cursor = cursors[-1]  # the last page of 1000
        deep_cursor_100 = cursors[-1]  # the first 100 of that last 1000

        def median_ms(limit: int, cursor: str | None) -> tuple[float, float]:
            for _ in range(2):
                page(limit, cursor)  # warm
            times = [page(limit, cursor)[0] for _ in range(samples)]
            return statistics.median(times) * 1e3, max(times) * 1e3

        results = {
            "limit=1000, first page": median_ms(1000, None),
            f"limit=1000, last page ({last})": median_ms(1000, last_cursor),
            "limit=100, first page": median_ms(100, None),
            f"limit=100, deep page ({deep})": median_ms(100, deep_cursor_100),
        }
    finally:
        conn.close()
    label = f"list {count_label(n)}"
    for name, (med, worst) in results.items():
        report.row(
            f"{label}, {name}",
            f"{med:.1f} ms",
            f"target {TARGET_MS:.0f} ms",
            med / TARGET_MS,
            "< 1.00",
            med < TARGET_MS,
            f"median of {samples}, max {worst:.1f} ms",
        )
    for limit, first_name, deep_name in (
        (1000, "limit=1000, first page", f"limit=1000, last page ({last})"),
        (100, "limit=100, first page", f"limit=100, deep page ({deep})"),
    ):
        ratio = results[deep_name][0] / results[first_name][0]
        report.row(
            f"{label}, limit={limit}: deep / first",
            f"{results[deep_name][0]:.1f} / {results[first_name][0]:.1f} ms",
            "first page (same run)",
            ratio,
            "~1.00 (<= 1.25)",
            ratio <= 1.25,
            f"full walk of {label[5:]} at limit=1000: {walk_s:.2f} s; {fill_note}",
        )
    return report
