"""`small`: 4 KiB objects, 16 concurrent clients, vs the durable-commit bound and the
HTTP ceiling (an in-memory ASGI app on granian, the same client)."""

from __future__ import annotations

from ..context import SMALL_CONCURRENCY, Bench, Service, cpu_note, lat, run_small_on
from ..table import Report, Row, say

SQLITE_PUT_TARGET = 1500
PG_PUT_TARGET = 1000  # the limits README's budget for 4 KiB uploads on PostgreSQL


def run(bench: Bench) -> Report:
    return measure(bench, bench.svc, "sqlite")


def measure(bench: Bench, svc: Service, db: str) -> Report:
    """The rows of `svc` (SQLite or PostgreSQL); keeps its ops/s for compare_backends."""
    report = Report("small", db)
    commit_ops, fputs, fgets = bench.small_bounds()
    n = bench.sizes.small_n
    say(f"4 KiB on {db}: {n} PUT then {n} GET, concurrency {SMALL_CONCURRENCY}")
    puts, gets, report.db_cpu_s = run_small_on(svc, "small", n)
    say(f"4 KiB on {db}: PUT {puts.ops_per_s:.0f}/s ({cpu_note(puts)})")
    say(f"4 KiB on {db}: GET {gets.ops_per_s:.0f}/s ({cpu_note(gets)})")
    for ph in (fputs, fgets):
        if not ph.complete:
            say(f"WARNING ceiling {ph.op}: {len(ph.latencies)}/{ph.planned} ok")
    report.small_ops[(db, "PUT")] = puts.ops_per_s
    report.small_ops[(db, "GET")] = gets.ops_per_s
    target = SQLITE_PUT_TARGET if db == "sqlite" else PG_PUT_TARGET
    report.row(
        "4 KiB PUT x16 vs durable commit",
        f"{puts.ops_per_s:.0f} /s",
        f"file commit, no HTTP/DB {commit_ops:.0f} /s",
        puts.ops_per_s / commit_ops,
        f"target >= {target} /s",
        puts.ops_per_s >= target,
        f"{lat(puts)}; {len(puts.errors)} errors; {cpu_note(puts)}",
    )
    report.row(
        "4 KiB PUT x16 vs HTTP ceiling",
        f"{puts.ops_per_s:.0f} /s",
        f"in-memory ASGI app {fputs.ops_per_s:.0f} /s",
        puts.ops_per_s / fputs.ops_per_s,
        "(information)",
        None,
        f"ceiling {lat(fputs)}",
    )
    report.row(
        "4 KiB GET x16 vs HTTP ceiling",
        f"{gets.ops_per_s:.0f} /s",
        f"in-memory ASGI app {fgets.ops_per_s:.0f} /s",
        gets.ops_per_s / fgets.ops_per_s,
        ">= 0.50 (no target given)",
        gets.ops_per_s / fgets.ops_per_s >= 0.5,
        f"{lat(gets)}; bytes compared; {len(gets.errors)} errors; {cpu_note(gets)}",
    )
    return report


def compare_backends(small_ops: dict[tuple[str, str], float]) -> list[Row]:
    """PostgreSQL / SQLite for the 4 KiB figures, when both were measured in this run."""
    report = Report("small", "both")
    for op in ("PUT", "GET"):
        lite, post = small_ops.get(("sqlite", op)), small_ops.get(("postgres", op))
        if lite and post:
            report.row(
                f"4 KiB {op} x16, PostgreSQL / SQLite",
                f"{post:.0f} / {lite:.0f} /s",
                "SQLite (same run)",
                post / lite,
                "(information)",
                None,
                "1 worker each; same client, same disk",
            )
    return report.rows
