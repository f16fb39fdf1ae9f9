"""`make bench`: JustStorage against the physical bounds measured in the same run.

Starts its own servers (`juststorage serve`, granian) on temp data dirs under /tmp,
measures, stops them by PID and removes the temp dir. All traffic goes to 127.0.0.1.
PostgreSQL rows run against fresh databases `juststorage_bench_<random>` on the local
cluster (created here, dropped at the end); if it is not reachable they print as skipped.
Every figure in the final table is paired with its bound or target from this same run:
compare ratios, not absolute figures, on a shared machine.

    python -m bench                       # everything
    python -m bench --only small,list,pg  # a part: rss, large, small, list, pg, scale, s3,
                                          # s3gw, peers
    python -m bench --tiny                # every section on tiny sizes (figures mean nothing)
    BENCH_SIZE=small python -m bench      # a quarter of the counts: ratios in minutes

`peers` runs bench/peers.sh: the objbench client of bench/peers/ against
JustStorage, nginx (WebDAV) and OpenStack Swift, started and stopped in turn.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import postgres
from .context import SIZES, Bench, free_bytes
from .procfs import busy_cpu_seconds, ours_cpu_seconds
from .sections import SECTIONS
from .sections.small import compare_backends
from .table import Report, print_table, say


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").split("\n\n")[0]
    )
    ap.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY") or ",".join(SECTIONS),
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}"
        " [default: $BENCH_ONLY (`make bench BENCH_ONLY=small,pg`), else all]",
    )
    ap.add_argument(
        "--pg-url",
        default=None,
        help="PostgreSQL server to create the bench databases on (127.0.0.1 only)"
        f" [default: $JUSTSTORAGE_BENCH_PG_URL or {postgres.DEFAULT_ADMIN_URL}]",
    )
    ap.add_argument(
        "--tiny",
        action="store_true",
        default=os.environ.get("BENCH_SIZE") == "tiny",
        help="tiny sizes, to check that the sections run (the smoke tests); the figures"
        " mean nothing [default: $BENCH_SIZE == tiny; BENCH_SIZE=small: a quarter of the"
        " full counts, BENCH_SIZE=full: the default]",
    )
    args = ap.parse_args(argv)
    size = "tiny" if args.tiny else os.environ.get("BENCH_SIZE") or "full"
    if size not in SIZES:
        ap.error(f"BENCH_SIZE={size}: use one of {', '.join(SIZES)}")
    args.sizes = SIZES[size]
    args.size_name = size
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown or not args.sections:
        ap.error(f"--only: unknown {', '.join(unknown) or '(empty)'}; use {', '.join(SECTIONS)}")
    return args


def run_sections(bench: Bench, names: list[str]) -> tuple[Report, bool]:
    """Every selected section in turn; one that fails becomes a `failed` row and does
    not hide the others. The merged report, and whether any failed."""
    total = Report("failed", "sqlite")
    failed = False
    for name, section in SECTIONS.items():
        if name not in names:
            continue
        try:
            total.merge(section(bench))
        except Exception as exc:  # one broken section must not hide the others
            failed = True
            say(f"section {name} FAILED: {type(exc).__name__}: {exc}")
            db = "postgres" if name == "pg" else "sqlite"
            total.skip(f"section {name}", f"failed: {exc}"[:80], db=db)
            for svc in bench.services:
                say(f"server log tail ({svc.server.url}):\n" + svc.server.log_tail())
    return total, failed


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    sizes = args.sizes
    free = free_bytes()
    say(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, /tmp free {free / 2**30:.0f} GiB; "
        f"python {sys.version.split()[0]}; sections: {', '.join(args.sections)}"
        + (f"; {args.size_name} sizes" if args.size_name != "full" else "")
    )
    if free < sizes.min_free_bytes:
        print(
            f"less than {sizes.min_free_bytes >> 20} MiB free under /tmp: nothing can be measured",
            file=sys.stderr,
        )
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="jsbench-", dir="/tmp"))
    work = tmp / "work"
    work.mkdir()
    bench = Bench(tmp, work, args.pg_url, sizes)
    load0, busy0, ours0, wall0 = (
        os.getloadavg()[0],
        busy_cpu_seconds(),
        ours_cpu_seconds(),
        time.time(),
    )
    try:
        total, failed = run_sections(bench, args.sections)
    finally:
        try:
            bench.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = total.rows + compare_backends(total.small_ops)
    wall = time.time() - wall0
    others = max(0.0, busy_cpu_seconds() - busy0 - (ours_cpu_seconds() - ours0))
    print_table(
        rows,
        f"noise: load avg {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end; CPU used by"
        f" processes other than this bench and its children: {others:.0f} s over {wall:.0f} s"
        f" wall ({100 * others / wall / (os.cpu_count() or 1):.0f}% of {os.cpu_count()} CPUs;"
        f" includes kernel write-back threads, and PostgreSQL: its backends for the bench's"
        f" databases used {total.db_cpu_s:.0f} s during the 4 KiB phases)",
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
