"""`rss`: peak RSS of the server tree during an upload and a download, at two sizes."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from .. import bounds
from ..context import Bench, Service, free_bytes, server_cpu, size_label
from ..procfs import RssSampler
from ..table import Report, say

RSS_TARGET_MIB = 150.0


def run(bench: Bench) -> Report:
    return measure(bench, bench.svc, "sqlite")


def head_of(path: Path, n: int = 64 * 1024) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def measure(bench: Bench, svc: Service, db: str) -> Report:
    """The rows of `svc` (SQLite or PostgreSQL), on the sizes' two object sizes."""
    report = Report("rss", db)
    results: dict[tuple[str, int], RssSampler] = {}
    small_size, big_size = bench.sizes.rss_bytes
    for size in (small_size, big_size):
        label = size_label(size)
        if free_bytes() < 2 * size + bench.sizes.min_free_bytes:
            for op in ("upload", "download"):
                report.skip(
                    f"peak RSS, {op} {label}", f"not enough free disk ({free_bytes() >> 30} GiB)"
                )
            continue
        src = bench.work / f"rss-{size}.bin"
        bounds.make_source(src, size, uuid.uuid4().bytes)
        os.sync()
        say(f"RSS: upload {label}")
        cpu0 = server_cpu(svc.pid)
        t0 = time.perf_counter()
        with RssSampler(svc.pid) as up:
            doc = svc.upload_curl(src, "rss", f"rss-{size}", bench.work / "resp.json")
        up_s = time.perf_counter() - t0
        up_cpu = server_cpu(svc.pid) - cpu0
        if int(doc["size_bytes"]) != size:
            raise RuntimeError(f"stored size {doc['size_bytes']} != {size}")
        say(f"RSS: download {label}")
        cpu0 = server_cpu(svc.pid)
        with RssSampler(svc.pid) as down:
            down_s = bounds.http_download(
                svc.port, f"/v1/objects/{doc['id']}", svc.auth(), size, head_of(src)
            )
        down_cpu = server_cpu(svc.pid) - cpu0
        src.unlink()
        results[("upload", size)] = up
        results[("download", size)] = down
        for op, sampler, secs, cpu in (
            ("upload", up, up_s, up_cpu),
            ("download", down, down_s, down_cpu),
        ):
            peak = sampler.tree_peak_mib
            report.row(
                f"peak RSS, {op} {label}",
                f"{peak:.0f} MiB",
                f"target < {RSS_TARGET_MIB:.0f} MiB",
                peak / RSS_TARGET_MIB,
                "< 1.00",
                peak < RSS_TARGET_MIB,
                f"worker {sampler.worker_baseline_mib:.0f}->{sampler.worker_peak_mib:.0f} MiB; "
                f"{size / 1e6 / secs:.0f} MB/s, server CPU {cpu:.1f} s",
            )
    for op in ("upload", "download"):
        small_s, big_s = results.get((op, small_size)), results.get((op, big_size))
        if small_s and big_s:
            growth = big_s.tree_peak_mib / small_s.tree_peak_mib
            report.row(
                f"RSS growth, {op} {size_label(big_size)} / {size_label(small_size)}",
                f"{big_s.tree_peak_mib - small_s.tree_peak_mib:+.0f} MiB",
                f"the {size_label(small_size)} peak (same run)",
                growth,
                "~1.00 (<= 1.10)",
                growth <= 1.10,
                f"object {big_size // small_size}x larger",
            )
    return report
