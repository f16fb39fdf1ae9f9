"""`pg`: the rss, large, small and list rows again, on a fresh PostgreSQL database
(1 worker), printed beside the SQLite rows."""

from __future__ import annotations

import time

from .. import postgres
from ..context import Bench, size_label
from ..table import Report, say
from . import large, listing, rss, small


def run(bench: Bench) -> Report:
    report = Report("small", "postgres")
    if not bench.pg.available:
        why = bench.pg.reason
        report.skip("peak RSS", why, group="rss")
        report.skip(
            f"upload and download {size_label(bench.sizes.large_bytes)}", why, group="large"
        )
        for figure in (
            "4 KiB PUT x16 vs durable commit",
            "4 KiB PUT x16 vs HTTP ceiling",
            "4 KiB GET x16 vs HTTP ceiling",
        ):
            report.skip(figure, why)
        report.skip(f"list {listing.count_label(bench.sizes.list_n)}", why, group="list")
        return report
    svc = bench.pg_svc
    # RSS and the large-object ratios are asked for on both databases.
    report.merge(rss.measure(bench, svc, "postgres"))
    report.merge(large.measure(bench, svc, "postgres"))
    report.merge(small.measure(bench, svc, "postgres"))
    n = bench.sizes.list_n
    say(f"list: committing {n} objects through the PostgreSQL repositories, server running")
    t0 = time.perf_counter()
    listing.fill(svc, n)
    assert svc.database is not None
    postgres.analyze(postgres.with_database(bench.pg.url, svc.database))
    say(f"list: filled + ANALYZE in {time.perf_counter() - t0:.1f} s (not through HTTP)")
    note = "filled through the repositories, one transaction, then ANALYZE"
    report.merge(listing.measure(bench, svc, "postgres", note))
    return report
