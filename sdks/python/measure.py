"""Throughput and peak RSS of the SDK against curl on the same file (a manual run).

    .venv/bin/python sdks/python/measure.py --mib 1024

Starts a server on 127.0.0.1 with a fresh data directory under --tmp, writes a
file of --mib MiB, and uploads/downloads it once with each client, every client
in its own process (peak RSS from wait4). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from server_process import start  # noqa: E402

SDK_UP = """
import sys, juststorage_client as js
with js.Client(sys.argv[1], sys.argv[2]) as c:
    c.upload_file(sys.argv[3], tenant="bench", namespace="m", key=sys.argv[4])
"""
SDK_DOWN = """
import sys, juststorage_client as js
with js.Client(sys.argv[1], sys.argv[2]) as c:
    c.download_to_file(sys.argv[3], tenant="bench", namespace="m", key=sys.argv[4])
"""


def run(argv: list[str]) -> tuple[float, float]:
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {process.returncode}")
    return elapsed, usage.ru_maxrss / 1024  # MiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--tmp", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="js-measure-", dir=args.tmp))
    server = start(root)
    try:
        source = root / "source.bin"
        block = os.urandom(1024 * 1024)
        with source.open("wb") as handle:
            for _ in range(args.mib):
                handle.write(block)
        url, token, py = server.url, server.admin_key, sys.executable
        rows = []
        for name, up, down in (
            (
                "curl",
                [
                    "curl",
                    "-sf",
                    "-X",
                    "POST",
                    f"{url}/v1/objects",
                    "-H",
                    f"Authorization: Bearer {token}",
                    "-H",
                    "X-Tenant: bench",
                    "-H",
                    "X-Namespace: m",
                    "-H",
                    "X-Key: curl",
                    "-T",
                    str(source),
                ],
                [
                    "curl",
                    "-sf",
                    f"{url}/v1/objects/by-key/m/bench/curl",
                    "-H",
                    f"Authorization: Bearer {token}",
                    "-o",
                    str(root / "curl.out"),
                ],
            ),
            (
                "juststorage-client (sync)",
                [py, "-c", SDK_UP, url, token, str(source), "sdk"],
                [py, "-c", SDK_DOWN, url, token, str(root / "sdk.out"), "sdk"],
            ),
        ):
            up_s, up_rss = run(up)
            down_s, down_rss = run(down)
            rows.append((name, args.mib / up_s, up_rss, args.mib / down_s, down_rss))
            for leftover in root.glob("*.out"):
                leftover.unlink()
        print(
            f"| client ({args.mib} MiB) | upload MiB/s | upload peak RSS MiB "
            "| download MiB/s | download peak RSS MiB |"
        )
        print("|---|---|---|---|---|")
        for name, up_rate, up_rss, down_rate, down_rss in rows:
            print(f"| {name} | {up_rate:.0f} | {up_rss:.0f} | {down_rate:.0f} | {down_rss:.0f} |")
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
