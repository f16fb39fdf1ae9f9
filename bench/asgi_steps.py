"""The server's Python CPU per 4 KiB GET, in process: one commit against another.

    .venv/bin/python -m bench.asgi_steps BEFORE AFTER [--rounds 7] [--gets 3000]
    .venv/bin/python -m bench.asgi_steps BEFORE AFTER --http [--rounds 5] [--n 2000]

BEFORE and AFTER are commits (or anything `git archive` takes); the `src/` of each
is extracted to a temporary directory. Each round runs one child process per commit,
alternating (A B, then B A, ...) so that a drift of a shared machine falls on both:
the child builds the app on SQLite (auth disabled, the access log at INFO into a
discarded stream in logging's plain format), uploads 200 objects of 4 KiB through the
app, then times `--gets` GETs by id called straight into the ASGI app (no HTTP, no
server): process CPU µs per GET. Printed: each round's figures, the medians and the
ratio AFTER / BEFORE of the medians (below 1: AFTER spends less).

What it leaves out is what the change does not touch: granian, the socket, the
client. Over HTTP the same change shows as a smaller share of a larger total:
`--http` runs `juststorage serve` (1 worker, SQLite, the benchmarks' log level
`warning`: no access log) from each commit's `src/` instead, alternating the same
way, each with `--n` uploads then `--n` GETs of 4 KiB from 16 aiohttp clients
(bench/load.py), and compares the GETs per second and the server tree's CPU µs
per GET (bench/get_path.py's figures).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from starlette.types import Message

REPO = Path(__file__).resolve().parent.parent
OBJECTS = 200
SIZE = 4096


def extract(commit: str, into: Path) -> Path:
    """`src/` of `commit` under `into`; its path, for PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def child(gets: int) -> None:
    """Runs in the child: prints the process CPU µs per GET."""
    import logging

    from juststorage.api.app import create_app
    from juststorage.bootstrap import build
    from juststorage.config import Settings

    discard = open(os.devnull, "w")  # noqa: SIM115 (open for the child's life)
    logging.basicConfig(level="INFO", handlers=[logging.StreamHandler(discard)], force=True)

    async def run(data_dir: Path) -> float:
        services = build(Settings(data_dir=data_dir, auth="disabled"))
        await services.metadata.migrate()
        app = create_app(services, run_startup=True, run_background=False)
        async with app.router.lifespan_context(app) as state:
            sent: list[Message] = []

            async def send(message: Message) -> None:
                sent.append(message)

            def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Any:
                return {
                    "type": "http",
                    "asgi": {"version": "3.0", "spec_version": "2.3"},
                    "http_version": "1.1",
                    "server": ("127.0.0.1", 8000),
                    "client": ("127.0.0.1", 50000),
                    "scheme": "http",
                    "method": method,
                    "root_path": "",
                    "path": path,
                    "raw_path": path.encode(),
                    "query_string": b"",
                    "headers": headers,
                    "state": dict(state or {}),
                    "extensions": {"http.response.pathsend": {}},
                }

            ids = []
            for i in range(OBJECTS):
                body = os.urandom(SIZE)
                delivered = False

                async def receive(body: bytes = body) -> dict[str, Any]:
                    nonlocal delivered
                    if delivered:
                        return {"type": "http.disconnect"}
                    delivered = True
                    return {"type": "http.request", "body": body, "more_body": False}

                headers = [
                    (b"x-tenant", b"bench"),
                    (b"x-namespace", b"steps"),
                    (b"x-key", f"k{i}".encode()),
                    (b"content-type", b"application/octet-stream"),
                    (b"content-length", str(SIZE).encode()),
                ]
                sent.clear()
                await app(scope("POST", "/v1/objects", headers), receive, send)
                ids.append(json.loads(b"".join(m.get("body", b"") for m in sent[1:]))["id"])

            async def no_body() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            get_headers = [(b"x-tenant", b"bench"), (b"host", b"127.0.0.1:8000")]

            async def get(i: int) -> None:
                sent.clear()
                path = f"/v1/objects/{ids[i % OBJECTS]}"
                await app(scope("GET", path, get_headers), no_body, send)

            for i in range(200):  # warm-up
                await get(i)
            assert sent[0]["status"] == 200, sent[0]
            started = time.process_time()
            for i in range(gets):
                await get(i)
            spent = time.process_time() - started
            assert sent[0]["status"] == 200, sent[0]
        await services.metadata.close()
        return 1e6 * spent / gets

    with tempfile.TemporaryDirectory(prefix="jssteps-") as tmp:
        print(f"{asyncio.run(run(Path(tmp))):.2f}")


def over_http(before: str, after: str, rounds: int, n: int) -> int:
    from . import load
    from .context import SMALL_CONCURRENCY, SMALL_SIZE, TENANT, Service
    from .get_path import cpu_us, server_probe

    rates: dict[str, list[float]] = {before: [], after: []}
    cpu: dict[str, list[float]] = {before: [], after: []}
    with tempfile.TemporaryDirectory(prefix="jssteps-http-") as tmp:
        sources = {c: extract(c, Path(tmp) / f"v{i}") for i, c in enumerate(rates)}
        for r in range(rounds):
            order = list(rates) if r % 2 == 0 else list(reversed(rates))
            for commit in order:
                name = f"{commit}-{r}"
                svc = Service(Path(tmp), name, extra_env={"PYTHONPATH": str(sources[commit])})
                svc.start()
                try:
                    _, gets = load.run_small(
                        svc.server.url,
                        svc.token,
                        TENANT,
                        f"r{r}",
                        n=n,
                        size=SMALL_SIZE,
                        concurrency=SMALL_CONCURRENCY,
                        probe=server_probe(svc.pid),
                    )
                finally:
                    svc.stop()
                if not gets.complete:
                    print(f"WARNING {commit}: {len(gets.latencies)}/{gets.planned} GETs ok")
                rates[commit].append(gets.ops_per_s)
                cpu[commit].append(cpu_us(gets))
            print(
                f"round {r}: "
                + "  ".join(f"{c} {rates[c][-1]:.0f}/s {cpu[c][-1]:.0f} µs" for c in rates)
            )
    rate = {c: statistics.median(v) for c, v in rates.items()}
    us = {c: statistics.median(v) for c, v in cpu.items()}
    print(
        f"median GET/s: {before} {rate[before]:.0f}, {after} {rate[after]:.0f}, after / before"
        f" {rate[after] / rate[before]:.3f}; server CPU µs per GET: {before} {us[before]:.0f},"
        f" {after} {us[after]:.0f}, after / before {_ratio(us[after], us[before])}"
        f" (load {os.getloadavg()[0]:.2f})"
    )
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--gets", type=int, default=3000)
    ap.add_argument("--http", action="store_true", help="through the server, over HTTP")
    ap.add_argument("--n", type=int, default=2000, help="objects per HTTP phase [2000]")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.gets)
        return 0
    if args.http:
        return over_http(args.before, args.after, args.rounds, args.n)
    figures: dict[str, list[float]] = {args.before: [], args.after: []}
    with tempfile.TemporaryDirectory(prefix="jssteps-src-") as tmp:
        sources = {c: extract(c, Path(tmp) / f"v{i}") for i, c in enumerate(figures)}
        for r in range(args.rounds):
            order = list(figures) if r % 2 == 0 else list(reversed(figures))
            for commit in order:
                env = {**os.environ, "PYTHONPATH": f"{sources[commit]}:{REPO}"}
                out = subprocess.run(
                    [sys.executable, "-m", "bench.asgi_steps", "x", "y", "--child"]
                    + ["--gets", str(args.gets)],
                    env=env,
                    cwd=REPO,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                figures[commit].append(float(out.strip().splitlines()[-1]))
            print(f"round {r}: " + "  ".join(f"{c} {v[-1]:.1f}" for c, v in figures.items()))
    medians = {c: statistics.median(v) for c, v in figures.items()}
    print(
        f"median CPU µs per GET: {args.before} {medians[args.before]:.1f}, "
        f"{args.after} {medians[args.after]:.1f}; "
        f"after / before {medians[args.after] / medians[args.before]:.3f}"
        f" (load {os.getloadavg()[0]:.2f})"
    )
    return 0


def _ratio(after: float, before: float) -> str:
    """AFTER / BEFORE, or "n/a" when BEFORE read no CPU at all (a short run can spend
    less than one 10 ms clock tick of the server's CPU)."""
    return f"{after / before:.3f}" if before > 0 else "n/a"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
