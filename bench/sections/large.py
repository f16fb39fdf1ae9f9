"""`large`: a large upload vs min(SHA-256 speed, write + fsync speed); a large download
vs sendfile to a socket, from the server and through nginx."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import bounds
from ..context import Bench, Service, free_bytes, server_cpu, size_label
from ..procfs import children_cpu
from ..table import Report, say
from .rss import head_of


def run(bench: Bench) -> Report:
    return measure(bench, bench.svc, "sqlite")


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def measure(bench: Bench, svc: Service, db: str) -> Report:
    """The rows of `svc` (SQLite or PostgreSQL)."""
    report = Report("large", db)
    size, reps, work = bench.sizes.large_bytes, bench.sizes.large_reps, bench.work
    label = size_label(size)
    if free_bytes() < (2 * reps + 2) * size:
        report.skip(f"upload {label}", f"not enough free disk ({free_bytes() >> 30} GiB)")
        report.skip(f"download {label}", "no object uploaded")
        return report
    src = work / "large.bin"
    raw_outs: list[Path] = []
    try:
        _measure(bench, svc, report, src, raw_outs)
    finally:  # also after a failure: a later section writes the same names
        for path in (src, *raw_outs):
            path.unlink(missing_ok=True)
    return report


def _measure(bench: Bench, svc: Service, report: Report, src: Path, raw_outs: list[Path]) -> None:
    size, reps, work = bench.sizes.large_bytes, bench.sizes.large_reps, bench.work
    label = size_label(size)
    bounds.make_source(src, size, uuid.uuid4().bytes)
    up_ratios, up_http, up_raw, up_hash, up_write, notes = [], [], [], [], [], []
    stored: list[str] = []
    for rep in range(reps):
        bounds.set_tag(src, f"rep{rep}".encode() + uuid.uuid4().bytes)
        os.sync()
        out = work / f"raw-{rep}.bin"
        raw_outs.append(out)
        hexd, hash_s, write_s = bounds.raw_upload(src, out)
        raw_s = max(hash_s, write_s)  # min(SHA-256 speed, write + fsync speed)
        os.sync()
        cpu0, ccpu0 = server_cpu(svc.pid), children_cpu()
        t0 = time.perf_counter()
        doc = svc.upload_curl(src, "large", f"large-{rep}", work / "resp.json")
        http_s = time.perf_counter() - t0
        s_cpu, c_cpu = server_cpu(svc.pid) - cpu0, children_cpu() - ccpu0
        if doc["content_hash"] != f"sha256:{hexd}" or int(doc["size_bytes"]) != size:
            raise RuntimeError(f"upload returned {doc}, expected sha256:{hexd}")
        stored.append(doc["id"])
        up_raw.append(mbps(size, raw_s))
        up_hash.append(mbps(size, hash_s))
        up_write.append(mbps(size, write_s))
        up_http.append(mbps(size, http_s))
        up_ratios.append(raw_s / http_s)
        notes.append(f"server CPU {s_cpu:.1f} s, curl CPU {c_cpu:.1f} s")
        say(
            f"{label} rep {rep}: sha256 {up_hash[-1]:.0f} MB/s, write+fsync {up_write[-1]:.0f}"
            f" MB/s, HTTP {up_http[-1]:.0f} MB/s, "
            f"ratio {up_ratios[-1]:.2f} ({notes[-1]}); content_hash ok"
        )
    report.row(
        f"upload {label} (curl -T), median of {reps}",
        f"{statistics.median(up_http):.0f} MB/s",
        f"min(sha256 {statistics.median(up_hash):.0f}, write+fsync"
        f" {statistics.median(up_write):.0f}) MB/s",
        statistics.median(up_ratios),
        ">= 0.90",
        statistics.median(up_ratios) >= 0.90,
        f"per rep {min(up_ratios):.2f}-{max(up_ratios):.2f}; {notes[len(notes) // 2]}",
    )
    head = head_of(src)  # the last rep's content = the last stored object
    blob = svc.blob_path(json.loads((work / "resp.json").read_text())["content_hash"])
    got = download_reps(f"{label} download", bench, svc, svc.port, stored[-1], blob, head)
    download_row(report, f"download {label}, median of {reps}", got)
    report.merge(behind_nginx(bench, svc, report.db, stored[-1], blob, head))


@dataclass
class DownloadReps:
    """Downloads, each right after the sendfile bound it is compared with."""

    speeds: list[float]
    bounds: list[float]
    ratios: list[float]
    note: str


def download_reps(
    label: str, bench: Bench, svc: Service, port: int, object_id: str, blob: Path, head: bytes
) -> DownloadReps:
    reps = DownloadReps([], [], [], "")
    size = blob.stat().st_size
    for rep in range(bench.sizes.large_reps):
        bound_s = bounds.sendfile_download(blob, head)
        cpu0 = server_cpu(svc.pid)
        http_s = bounds.http_download(port, f"/v1/objects/{object_id}", svc.auth(), size, head)
        reps.note = f"server CPU {server_cpu(svc.pid) - cpu0:.2f} s"
        reps.bounds.append(mbps(size, bound_s))
        reps.speeds.append(mbps(size, http_s))
        reps.ratios.append(bound_s / http_s)
        say(
            f"{label} rep {rep}: sendfile {reps.bounds[-1]:.0f} MB/s, "
            f"HTTP {reps.speeds[-1]:.0f} MB/s, ratio {reps.ratios[-1]:.2f} ({reps.note})"
        )
    return reps


def download_row(report: Report, figure: str, reps: DownloadReps) -> None:
    report.row(
        figure,
        f"{statistics.median(reps.speeds):.0f} MB/s",
        f"sendfile to 127.0.0.1 reader {statistics.median(reps.bounds):.0f} MB/s",
        statistics.median(reps.ratios),
        ">= 0.90",
        statistics.median(reps.ratios) >= 0.90,
        f"per rep {min(reps.ratios):.2f}-{max(reps.ratios):.2f}; same 1 MiB reader; {reps.note}",
    )


def behind_nginx(
    bench: Bench, svc: Service, db: str, object_id: str, blob: Path, head: bytes
) -> Report:
    """The same download through nginx (deploy/nginx/juststorage.conf), which sends the
    file with sendfile after the server answered with X-Accel-Redirect."""
    report = Report("large", db)
    label = size_label(blob.stat().st_size)
    figure = f"download {label} behind nginx (X-Accel-Redirect), median of {bench.sizes.large_reps}"
    nginx = shutil.which("nginx")
    if nginx is None:
        report.skip(figure, "nginx not installed (`make bench BENCH_ONLY=peers` installs it)")
        return report
    from tests.support.nginx_proxy import running_nginx

    upstream = f"127.0.0.1:{svc.port}"
    root = bench.work / f"nginx-{db}"
    with running_nginx(nginx, root, upstream=upstream, data_dir=svc.data) as proxy:
        reps = download_reps(
            f"{label} download behind nginx", bench, svc, proxy.port, object_id, blob, head
        )
        served = proxy.access_log.read_text()
    if "/_juststorage_hot/" not in served:
        raise RuntimeError("nginx did not serve the blob itself: no X-Accel-Redirect taken")
    download_row(report, figure, reps)
    return report
