"""Two (or more) builds of the server side by side: 4 KiB PUTs x16 in a loop against
each in turn, alternating the order every round, and the server's CPU per PUT by
thread (the event loop, the Python worker threads, granian's Rust threads).

    .venv/bin/python -m bench.ab_puts --seconds 6 --rounds 6 \\
        base=/tmp/base/src new=src [--database-url postgresql://.../db]

Each build is a `src` directory put first on PYTHONPATH of its server (`git archive
<commit> src | tar -x -C /tmp/base` makes one of a commit). Every run starts a fresh
server (SQLite in its own data dir, or the given PostgreSQL database, shared by the
runs: a bootstrap key from API_KEYS then authenticates). Medians per build at the end:
on a shared machine CPU per PUT is steadier than PUTs per second, and the alternation
spreads the machine's drifts over both builds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .context import Service
from .get_path import _put_loop
from .procfs import CLK_TCK, tree

_KEY = "ab-puts-bench-key-0123456789abcdef0123"


def thread_ticks(pid: int) -> collections.Counter[str]:
    """CPU clock ticks of the server tree `pid`, by kind of thread."""
    out: collections.Counter[str] = collections.Counter()
    for process in tree(pid):
        try:
            tasks = os.listdir(f"/proc/{process}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                comm = Path(f"/proc/{process}/task/{tid}/comm").read_text().strip()
                stat = Path(f"/proc/{process}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if comm.startswith("tokio"):
                kind = "rust"
            elif tid == str(process):
                kind = "loop"  # a process's main thread: the event loop in the worker
            else:
                kind = "threads"
            out[kind] += int(fields[11]) + int(fields[12])  # utime + stime
    return out


def measure(svc: Service, seconds: float) -> dict[str, float]:
    """PUT/s and CPU µs per PUT by kind of thread, over `seconds` of the PUT loop."""
    asyncio.run(_put_loop(svc.server.url, svc.token, 1.0))  # warm: connections, caches
    before = thread_ticks(svc.pid)
    started = time.perf_counter()
    done = asyncio.run(_put_loop(svc.server.url, svc.token, seconds))
    elapsed = time.perf_counter() - started
    after = thread_ticks(svc.pid)
    per_put = {k: (after[k] - before.get(k, 0)) * 1e6 / CLK_TCK / max(1, done) for k in after}
    per_put["total"] = sum(per_put.values())
    per_put["PUT/s"] = done / elapsed
    return per_put


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("builds", nargs="+", help="name=path of a src directory")
    ap.add_argument("--seconds", type=float, default=6.0, help="PUT loop per run [6]")
    ap.add_argument("--rounds", type=int, default=6, help="runs per build [6]")
    ap.add_argument("--database-url", default=None, help="PostgreSQL (else SQLite)")
    args = ap.parse_args(argv)
    builds = [b.split("=", 1) for b in args.builds]
    env = {}
    if args.database_url:
        env = {"DATABASE_URL": args.database_url, "API_KEYS": f"{_KEY}:*:admin"}
    tmp = Path(tempfile.mkdtemp(prefix="jsabputs-", dir="/tmp"))
    got: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
    try:
        for run in range(args.rounds):
            for name, src in builds if run % 2 == 0 else builds[::-1]:
                pythonpath = str(Path(src).resolve())
                svc = Service(tmp, f"{name}-{run}", extra_env={**env, "PYTHONPATH": pythonpath})
                svc.start()
                try:
                    figures = measure(svc, args.seconds)
                finally:
                    svc.stop()
                    shutil.rmtree(tmp / f"{name}-{run}", ignore_errors=True)
                got[name].append(figures)
                shown = "  ".join(f"{k} {v:.0f}" for k, v in sorted(figures.items()))
                print(f"round {run} {name:<10} {shown}", flush=True)
        print(f"medians of {args.rounds} runs, load {os.getloadavg()[0]:.2f} at the end:")
        for name, _ in builds:
            keys = sorted(got[name][0])
            shown = "  ".join(f"{k} {statistics.median(r[k] for r in got[name]):.0f}" for k in keys)
            print(f"  {name:<10} {shown}   (CPU: µs per PUT)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
