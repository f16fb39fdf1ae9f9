"""Where a large `juststorage put` spends CPU: one request against multipart sessions.

    .venv/bin/python scripts/multipart_cpu.py --mib 4096 one 1x8 4x8 1x64 4x64
    .venv/bin/python scripts/multipart_cpu.py --mib 1024 8x8 --server-env MALLOC_ARENA_MAX=2

Starts a server on 127.0.0.1 (SQLite, a fresh data dir, removed at the end), writes
a file of `--mib` MiB, and runs `juststorage put` once per configuration, in the
order given: `one` is one request, `PxM` a multipart session with P parts in
flight of M MiB each. Each run changes the file's first bytes, so nothing is
deduplicated. Per run: wall time, the server worker's user and system CPU
seconds, the CLI's CPU seconds, and the peak RSS of the server tree and of its
worker (sampled every 20 ms).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import bounds, procfs  # noqa: E402 (the repository's bench package)

from juststorage.testing import BIN, clean_env, start  # noqa: E402

MiB = 1024 * 1024


def _times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / procfs.CLK_TCK, int(fields[12]) / procfs.CLK_TCK


def _args(config: str, size: int) -> list[str]:
    if config == "one":
        return ["--multipart-threshold", str(size + 1)]
    parallel, _, part = config.partition("x")
    if not (parallel.isdigit() and part.isdigit()):
        raise SystemExit(f"{config!r}: use `one` or PxM (P parts in flight of M MiB)")
    return ["--multipart-threshold", "1", "--parallel", parallel, "--part-size", f"{part}MiB"]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("configs", nargs="+", help="`one`, or PxM: P parts in flight of M MiB")
    parser.add_argument("--mib", type=int, default=1024, help="file size in MiB")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    options = parser.parse_args()
    size = options.mib * MiB
    runs = [(config, _args(config, size)) for config in options.configs]
    server_env = {"JUSTSTORAGE_GC_INTERVAL_S": "0"}
    server_env.update(item.split("=", 1) for item in options.server_env)
    tmp = Path(tempfile.mkdtemp(prefix="multipart-cpu-"))
    server = start(tmp / "server", server_env)
    try:
        source = tmp / "model.bin"
        bounds.make_source(source, size, os.urandom(8))
        (tmp / "config").mkdir(parents=True, exist_ok=True)
        (tmp / "config" / "client.toml").touch()  # named, so it must exist (empty)
        env = clean_env(
            tmp / "unused",
            {
                "JUSTSTORAGE_URL": server.url,
                "JUSTSTORAGE_TOKEN": server.admin_key,
                "JUSTSTORAGE_CLIENT_CONFIG": str(tmp / "config" / "client.toml"),
            },
        )
        (worker,) = [p for p in procfs.tree(server.pid) if p != server.pid][:1]
        print(f"{options.mib} MiB: wall, server worker user + system CPU s, CLI CPU s, peak RSS")
        for i, (config, extra) in enumerate(runs):
            bounds.set_tag(source, os.urandom(8))
            os.sync()
            argv = [str(BIN), "put", str(source), f"bench/cpu/model-{i}", "--json"]
            user0, system0 = _times(worker)
            cli0 = procfs.children_cpu()
            started = time.perf_counter()
            with procfs.RssSampler(server.pid) as rss:
                done = subprocess.run(argv + extra, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - started
            if done.returncode != 0:
                raise SystemExit(f"put {config} failed: {done.stderr[-400:]}")
            user, system = _times(worker)
            print(
                f"{config:>5}: {wall:6.2f} s {size / 1e6 / wall:5.0f} MB/s; server user"
                f" {user - user0:5.1f} system {system - system0:5.1f}; CLI"
                f" {procfs.children_cpu() - cli0:4.1f}; RSS tree {rss.tree_peak_mib:.0f} MiB,"
                f" worker {rss.worker_baseline_mib:.0f}->{rss.worker_peak_mib:.0f} MiB",
                flush=True,
            )
        return 0
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
