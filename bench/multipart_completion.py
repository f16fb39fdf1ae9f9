"""Completion time of a multipart upload session on a filesystem root (SPEC §8.2).

Starts a real server on 127.0.0.1 (SQLite, a fresh data directory under --dir),
sends a session's parts from one in-memory buffer (in order; 4 at a time in order
of number; or shuffled: then the server has no running hash for most parts and
reads them once at completion), and
times `POST /v1/uploads/{id}/complete` alone. Bounded: one session per row,
removed with the server's data at the end.

    .venv/bin/python -m bench.multipart_completion --mib 4096 --part-mib 64
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench import procfs
from juststorage.testing import start


def _row(server_url: str, headers: dict[str, str], total: int, part: int, order: str) -> None:
    import httpx

    numbers = list(range(1, total // part + 1))
    if order == "shuffled":
        random.Random(1).shuffle(numbers)
    body = os.urandom(part)
    with (
        httpx.Client(base_url=server_url, timeout=600, trust_env=False) as client,
        concurrent.futures.ThreadPoolExecutor(4) as pool,
    ):
        created = client.post(
            "/v1/uploads",
            headers={**headers, "X-Tenant": "bench", "X-Namespace": "bench", "X-Key": order},
        )
        upload_id = created.json()["upload_id"]
        started = time.perf_counter()

        def send(number: int) -> None:
            # The same bytes in every part: the server still writes and hashes each.
            url = f"/v1/uploads/{upload_id}/parts/{number}"
            sent = client.put(url, headers=headers, content=body)
            assert sent.status_code == 200, sent.text

        if order == "4 in parallel":
            list(pool.map(send, numbers))  # in order of number, 4 at a time
        else:
            for number in numbers:
                send(number)
        parts_s = time.perf_counter() - started
        started = time.perf_counter()
        done = client.post(f"/v1/uploads/{upload_id}/complete", headers=headers)
        complete_s = time.perf_counter() - started
        assert done.status_code == 201, done.text
    print(
        f"| {total / 2**20:.0f} MiB | {part // 2**20} MiB x {len(numbers)} | {order} |"
        f" {total / parts_s / 1e6:.0f} MB/s | {complete_s:.2f} s |",
        flush=True,
    )


def _peak_rss_mib(pid: int) -> float:
    """The largest peak RSS of the server's processes (the worker serves)."""
    return max(procfs.status_kib(p, "VmHWM") for p in procfs.tree(pid)) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="object size")
    parser.add_argument("--part-mib", type=int, default=64)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-multipart-", dir=args.dir))
    part = args.part_mib * 2**20
    server = start(
        root,
        {"JUSTSTORAGE_GC_INTERVAL_S": "0", "JUSTSTORAGE_UPLOAD_PART_MIN_BYTES": str(part)},
    )
    try:
        headers = server.admin_headers()
        print("| object | parts | order | parts sent at | complete |")
        print("|---|---|---|---|---|")
        for order in ("in order", "4 in parallel", "shuffled"):
            _row(server.url, headers, args.mib * 2**20, part, order)
        print(f"server peak RSS: {_peak_rss_mib(server.pid):.0f} MiB")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
