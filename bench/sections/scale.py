"""`scale`: 4 KiB PUT and GET x16 with `serve --workers 1/2/3` (one port), per backend;
each figure as a ratio to the 1-worker figure of this run. Each count runs twice, in
the order 1,2,3,3,2,1, on one data dir (and one database) per backend."""

from __future__ import annotations

import statistics

from .. import load
from ..context import Bench, Service, cpu_note, run_small_on
from ..table import Report, say


def run(bench: Bench) -> Report:
    report = Report("scale", "sqlite")
    workers_counts = bench.sizes.scale_workers
    for db in ("sqlite", "postgres"):
        if db == "postgres" and not bench.pg.available:
            for op in ("PUT", "GET"):
                for w in workers_counts:
                    report.skip(f"4 KiB {op} x16, {w} process(es)", bench.pg.reason, db=db)
            continue
        url = None
        if db == "postgres":
            url = bench.pg.create_database()
            say(f"created database {url.rsplit('/', 1)[1]} for the scaling runs")
        got: dict[tuple[str, int], list[load.Phase]] = {}
        for rep, workers in enumerate(bench.sizes.scale_order):
            svc = bench.start(Service(bench.tmp, f"scale-{db}", url, workers))
            try:
                puts, gets, db_cpu = run_small_on(svc, f"scale-{rep}", bench.sizes.scale_n)
            finally:
                svc.stop()
            report.db_cpu_s += db_cpu
            say(
                f"scale {db} x{workers}: PUT {puts.ops_per_s:.0f}/s ({cpu_note(puts)}); "
                f"GET {gets.ops_per_s:.0f}/s ({cpu_note(gets)})"
            )
            got.setdefault(("PUT", workers), []).append(puts)
            got.setdefault(("GET", workers), []).append(gets)
        for op in ("PUT", "GET"):
            base = statistics.mean(p.ops_per_s for p in got[(op, 1)])
            for w in workers_counts:
                phases = got[(op, w)]
                rates = [p.ops_per_s for p in phases]
                mean = statistics.mean(rates)
                errors = sum(len(p.errors) for p in phases)
                report.row(
                    f"4 KiB {op} x16, {w} process{'es' if w > 1 else ''}",
                    f"{mean:.0f} /s",
                    f"1 process {base:.0f} /s (same run)",
                    mean / base,
                    "(information)",
                    None if errors == 0 else False,
                    f"runs {' / '.join(f'{r:.0f}' for r in rates)}; {errors} errors; "
                    f"1st run {cpu_note(phases[0])}",
                    db=db,
                )
    return report
