"""Where 4 KiB GETs and PUTs stop: the HTTP ceilings of granian's two Python interfaces
and the server with 1, 2, 3 workers, in one run, with the same client.

    .venv/bin/python -m bench.get_path [--n 2000] [--workers 1,2,3,3,2,1] [--py-spy 6]

Rows, each as ops/s, as a ratio to the 1-worker server of this run, and as the
server tree's CPU µs per request (all its processes: granian's Rust threads too):
- `ceiling asgi` / `ceiling rsgi`: bench/floor_app.py and bench/floor_rsgi.py (the
  service's URL shapes, objects in a dict) on granian, 1 worker, uvloop;
- `server xN`: `juststorage serve --workers N` on SQLite (one data dir for every run,
  a fresh namespace per run), in the order given: drifts of a shared machine cancel
  in the mean of a mirrored order.
Every phase: n uploads then n downloads of distinct random 4 KiB bodies, 16
concurrent aiohttp clients, each download compared byte for byte (bench/load.py).
`--py-spy S`: afterwards, S seconds of `py-spy record --gil --format raw` on a
1-worker server's process while 16 clients GET by id in a loop, summarised as the
share of samples per frame (own and cumulative); needs py-spy on PATH.
`--py-spy-put S`: the same while 16 clients PUT distinct 4 KiB bodies in a loop
(inline blobs at the server's default threshold); `--only-spy` skips the rows;
`--native`: `py-spy --native --threads` instead of `--gil`, summarised for the
event loop's thread only (its samples while it runs: where its CPU goes).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from juststorage import testing

from . import load
from .context import SMALL_CONCURRENCY, SMALL_SIZE, TENANT, VENV_BIN, Service
from .procfs import cpu_seconds, tree

HERE = Path(__file__).resolve().parent


def server_probe(pid: int) -> load.Probe:
    """CPU seconds of the server tree `pid` (all its processes), for a phase's delta."""
    return lambda: {"server": cpu_seconds(tree(pid))}


def cpu_us(ph: load.Phase) -> float:
    """The server's CPU per completed request, µs."""
    return 1e6 * ph.usage.get("server", 0.0) / max(1, len(ph.latencies))


def ceiling(tmp: Path, interface: str, n: int) -> tuple[load.Phase, load.Phase]:
    """4 KiB PUT and GET x16 against the in-memory app of `interface` on granian."""
    module = "floor_app:app" if interface == "asgi" else "floor_rsgi:app"
    port = testing.free_port()
    argv = [str(VENV_BIN / "granian"), "--interface", interface, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--loop", "uvloop", "--no-access-log", "--log-level"]
    argv += ["warning", "--workers", "1", "--working-dir", str(HERE), module]
    floor = testing.spawn(argv, dict(os.environ), tmp / f"floor-{interface}.log", port)
    try:
        return load.run_small(
            floor.url,
            None,
            TENANT,
            "s",
            n=n,
            size=SMALL_SIZE,
            concurrency=SMALL_CONCURRENCY,
            probe=server_probe(floor.pid),
        )
    finally:
        floor.stop()


async def _get_loop(url: str, token: str, ids: list[str], seconds: float) -> int:
    headers = {"Authorization": f"Bearer {token}", "X-Tenant": TENANT}
    done = 0
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SMALL_CONCURRENCY)
    ) as session:

        async def worker(k: int) -> None:
            nonlocal done
            i = k
            while time.monotonic() < deadline:
                async with session.get(
                    f"{url}/v1/objects/{ids[i % len(ids)]}", headers=headers
                ) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"GET -> {r.status}")
                done += 1
                i += SMALL_CONCURRENCY

        await asyncio.gather(*(worker(k) for k in range(SMALL_CONCURRENCY)))
    return done


async def _put_some(url: str, token: str, n: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}", "X-Tenant": TENANT, "X-Namespace": "spy"}
    ids = []
    async with aiohttp.ClientSession() as session:
        for i in range(n):
            h = {**headers, "X-Key": f"spy/{i}", "Content-Type": "application/octet-stream"}
            async with session.post(
                f"{url}/v1/objects", data=os.urandom(SMALL_SIZE), headers=h
            ) as r:
                ids.append((await r.json(content_type=None))["id"])
    return ids


async def _put_loop(url: str, token: str, seconds: float) -> int:
    headers = {"Authorization": f"Bearer {token}", "X-Tenant": TENANT, "X-Namespace": "spyput"}
    headers["Content-Type"] = "application/octet-stream"
    done = 0
    deadline = time.monotonic() + seconds
    bodies = [os.urandom(SMALL_SIZE) for _ in range(SMALL_CONCURRENCY)]
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=SMALL_CONCURRENCY)
    ) as session:

        async def worker(k: int) -> None:
            nonlocal done
            i = 0
            body = bytearray(bodies[k])
            while time.monotonic() < deadline:
                body[:8] = i.to_bytes(8, "little")  # distinct content: no dedup hits
                h = {**headers, "X-Key": f"spy/{k}/{i}"}
                async with session.post(f"{url}/v1/objects", data=bytes(body), headers=h) as r:
                    await r.read()
                    if r.status != 201:
                        raise RuntimeError(f"POST -> {r.status}")
                done += 1
                i += 1

        await asyncio.gather(*(worker(k) for k in range(SMALL_CONCURRENCY)))
    return done


def profile_gets(svc: Service, seconds: float, out: Path, native: bool = False) -> str:
    """py-spy on the server's process during a GET loop: the frames with most samples."""
    ids = asyncio.run(_put_some(svc.server.url, svc.token, 200))
    return _profile(
        svc,
        seconds,
        out / "gets.raw",
        "GET",
        lambda s: _get_loop(svc.server.url, svc.token, ids, s),
        native,
    )


def profile_puts(svc: Service, seconds: float, out: Path, native: bool = False) -> str:
    """py-spy on the server's process during a 4 KiB PUT loop."""
    return _profile(
        svc,
        seconds,
        out / "puts.raw",
        "PUT",
        lambda s: _put_loop(svc.server.url, svc.token, s),
        native,
    )


def _profile(
    svc: Service,
    seconds: float,
    raw: Path,
    op: str,
    loop: Callable[[float], Coroutine[Any, Any, int]],
    native: bool,
) -> str:
    spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    # Blocking sampling (the process paused per sample, slower under py-spy): the
    # non-blocking mode attributed a quarter of the samples to the frame that calls
    # granian's `send`, which a paused process's stacks do not confirm.
    argv = [spy, "record", "--format", "raw", "--rate", "200"]
    # --native: the event loop thread's samples when it runs (not idle), with the C
    # and Rust frames under each Python frame: where its CPU goes. Otherwise the
    # samples in which some thread holds the GIL, attributed to that thread.
    argv += ["--native", "--threads"] if native else ["--gil"]
    worker = tree(svc.pid)[-1]  # the granian worker that runs the app (1 worker)
    argv += ["--duration", str(int(seconds)), "--output", str(raw), "--pid", str(worker)]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # py-spy attached before the load starts
    done = asyncio.run(loop(seconds + 2))
    _, err = recorder.communicate(timeout=seconds + 60)
    if recorder.returncode != 0 or not raw.exists():
        return f"py-spy failed ({recorder.returncode}): {err.decode()[-500:]}"
    keep = os.environ.get("GET_PATH_KEEP_RAW")
    if keep:
        shutil.copy(raw, keep)
    return f"{done / (seconds + 2):.0f} {op}/s under py-spy\n" + summarise(
        raw, thread="MainThread" if native else None
    )


def summarise(raw: Path, top: int = 30, thread: str | None = None) -> str:
    """Share of samples per function: own (leaf) and cumulative (anywhere in the stack),
    the `top` by cumulative share without the launcher's frames (every stack has them).
    `thread`: only the stacks of the thread of that name (`--threads` recordings)."""
    own: collections.Counter[str] = collections.Counter()
    cum: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if thread is not None:
            first, _, stack = stack.partition(";")
            if not first.endswith(f": {thread}"):
                continue
        frames = [f.split(" (")[0] + " " + _file(f) for f in stack.split(";")]
        frames = [f for f in frames if not any(d in f for d in _LAUNCH_FILES)] or frames
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            cum[frame] += int(count)
    kind = f"{thread} running" if thread else "GIL held"
    lines = [f"{total} samples ({kind}); own % / cumulative %, top {top} by cumulative"]
    lines += [f"{100 * c / total:5.1f} own  {f}" for f, c in own.most_common(12)]
    lines.append("---")
    shown = [(f, c) for f, c in cum.most_common() if not f.startswith(_LAUNCH)][:top]
    for frame, c in shown:
        lines.append(f"{100 * own[frame] / total:5.1f} {100 * c / total:5.1f}  {frame}")
    return "\n".join(lines)


_LAUNCH = ("<module>", "process ") + tuple(
    f"{name} "
    for name in (
        "Group.invoke",
        "Command.main",
        "Command.invoke",
        "Context.invoke",
        "main",
        "_Cli.invoke",
        "serve",
        "pass_context.<locals>.new_func",
    )
)
_LAUNCH_FILES = ("click/", "multiprocessing/", "granian/server/")


def _file(frame: str) -> str:
    where = frame.split(" (", 1)[1].rstrip(")") if " (" in frame else ""
    return where.rsplit("site-packages/", 1)[-1].rsplit("/src/", 1)[-1].split(":")[0]


def print_rows(tmp: Path, n: int, order: list[int]) -> None:
    """The ceilings and the server with each worker count of `order`, in that order."""
    rates: dict[str, list[tuple[float, float]]] = {}
    cpu: dict[str, list[tuple[float, float]]] = {}
    for interface in ("asgi", "rsgi"):
        puts, gets = ceiling(tmp, interface, n)
        rates[f"ceiling {interface}"] = [(puts.ops_per_s, gets.ops_per_s)]
        cpu[f"ceiling {interface}"] = [(cpu_us(puts), cpu_us(gets))]
    for run, workers in enumerate(order):
        svc = Service(tmp, "sqlite", workers=workers)
        svc.start()
        try:
            puts, gets = load.run_small(
                svc.server.url,
                svc.token,
                TENANT,
                f"run-{run}",
                n=n,
                size=SMALL_SIZE,
                concurrency=SMALL_CONCURRENCY,
                probe=server_probe(svc.pid),
            )
        finally:
            svc.stop()
        for ph in (puts, gets):
            if not ph.complete:
                print(f"WARNING x{workers} {ph.op}: {len(ph.latencies)}/{ph.planned} ok")
        rates.setdefault(f"server x{workers}", []).append((puts.ops_per_s, gets.ops_per_s))
        cpu.setdefault(f"server x{workers}", []).append((cpu_us(puts), cpu_us(gets)))
    base_put = statistics.mean(p for p, _ in rates.get("server x1", [(1.0, 1.0)]))
    base_get = statistics.mean(g for _, g in rates.get("server x1", [(1.0, 1.0)]))
    print(
        f"4 KiB x{SMALL_CONCURRENCY}, n={n}, {os.cpu_count()} CPUs,"
        f" load {os.getloadavg()[0]:.2f} at the end"
    )
    print(
        "row          PUT /s  GET /s  PUT / x1  GET / x1  server CPU µs/op PUT GET  runs (PUT/GET)"
    )
    for name, runs in rates.items():
        put = statistics.mean(p for p, _ in runs)
        get = statistics.mean(g for _, g in runs)
        each = ", ".join(f"{p:.0f}/{g:.0f}" for p, g in runs)
        put_us = statistics.mean(p for p, _ in cpu[name])
        get_us = statistics.mean(g for _, g in cpu[name])
        print(
            f"{name:<12} {put:6.0f}  {get:6.0f}  {put / base_put:8.2f}  {get / base_get:8.2f}"
            f"  {put_us:20.0f} {get_us:4.0f}  {each}"
        )


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="objects per phase [2000]")
    ap.add_argument("--workers", default="1,2,3,3,2,1", help="server runs, in order")
    ap.add_argument("--py-spy", type=float, default=0.0, help="seconds of py-spy [off]")
    ap.add_argument("--py-spy-put", type=float, default=0.0, help="seconds, PUT loop [off]")
    ap.add_argument("--only-spy", action="store_true", help="no rows, only the profiles")
    ap.add_argument("--native", action="store_true", help="py-spy --native: the loop's CPU")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="jsgetpath-", dir="/tmp"))
    try:
        if not args.only_spy:
            print_rows(tmp, args.n, [int(w) for w in args.workers.split(",")])
        for seconds, profile in ((args.py_spy, profile_gets), (args.py_spy_put, profile_puts)):
            if seconds:
                svc = Service(tmp, f"spy-{profile.__name__}")
                svc.start()
                try:
                    print(profile(svc, seconds, tmp, args.native))
                finally:
                    svc.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
