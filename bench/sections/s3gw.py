"""`s3gw`: boto3 and rclone against our S3 gateway (`JUSTSTORAGE_S3_ADDR`, one worker,
SQLite, blobs on the file system) and against SeaweedFS's own S3 endpoint (`weed
mini`), in the same run, one after the other for each figure: 4 KiB PUT/GET (ops/s,
THREADS threads), a large PUT/GET (MB/s), ListObjectsV2 of every 4 KiB key (keys/s),
and the peak RSS of each server's process tree over the whole section. Every ratio
is ours / SeaweedFS (higher is better for throughput, lower for RSS)."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from juststorage.testing import free_port, wait_until

from .. import bounds, s3_clients, scaleout
from ..context import TENANT, Bench, Service, size_label
from ..procfs import RssSampler
from ..s3_clients import THREADS, Endpoint, Rclone
from ..table import Report, say

NAMESPACE = "s3bench"
RSS_TARGET_MIB = 150.0
T = TypeVar("T")


def _gateway(bench: Bench) -> tuple[Service, Endpoint]:
    """Our server with the S3 listener, and an S3 pair for tenant `bench`."""
    port = free_port()
    env = {"JUSTSTORAGE_S3_ADDR": f"127.0.0.1:{port}", "JUSTSTORAGE_GC_INTERVAL_S": "0"}
    svc = bench.start(Service(bench.tmp, "s3gw", None, 1, env))
    if not wait_until(lambda: _accepts(port), 20.0):
        raise RuntimeError(f"the S3 listener on {port} never answered:\n{svc.server.log_tail()}")
    argv = ["keys", "create", "--s3", "--json", "--tenant", TENANT]
    argv += ["--scope", "objects:read", "--scope", "objects:write", "--scope", "objects:delete"]
    done = svc.server.cli(*argv)
    if done.returncode != 0:
        raise RuntimeError(f"keys create --s3: {done.stderr[-300:]}")
    doc = json.loads(done.stdout.strip().splitlines()[-1])
    s3 = doc.get("s3") if isinstance(doc.get("s3"), dict) else doc
    key_id = s3.get("access_key_id") or doc["id"]
    secret = s3.get("secret_access_key") or s3.get("s3_secret")
    if not secret:
        raise RuntimeError(f"keys create --s3 --json printed no secret: {sorted(doc)}")
    ep = Endpoint("ours", f"http://127.0.0.1:{port}", key_id, secret, f"{TENANT}.{NAMESPACE}", "b")
    return svc, ep


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _rclone(bench: Bench) -> Rclone | str:
    """rclone (installed from Debian when missing and allowed), or why not."""
    binary = s3_clients.rclone_binary()
    if binary is None:
        script = Path(__file__).resolve().parents[2] / "scripts" / "ensure-rclone.sh"
        subprocess.run([str(script)], check=False, timeout=300, stdin=subprocess.DEVNULL)
        binary = s3_clients.rclone_binary()
    if binary is None:
        return "rclone is not installed (scripts/ensure-rclone.sh says why)"
    home = bench.tmp / "rclone-home"
    home.mkdir(exist_ok=True)
    return Rclone(binary, home)


def run(bench: Bench) -> Report:
    report = Report("s3gw", "sqlite")
    n, size = bench.sizes.s3gw_keys, bench.sizes.s3_large_bytes
    label = size_label(size)
    rclone_n = min(n, bench.sizes.s3gw_rclone_files)
    rc = _rclone(bench)
    src = bench.work / "s3gw-large.bin"
    bounds.make_source(src, size, uuid.uuid4().bytes)
    small_dir = bench.work / "s3gw-small"
    s3_clients.make_small_dir(small_dir, rclone_n)
    with scaleout.seaweedfs(bench.tmp) as weed:
        svc, ours = _gateway(bench)
        env = weed.env()
        theirs = Endpoint(
            "seaweedfs",
            weed.endpoint_url,
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            weed.bucket,
            f"b-{uuid.uuid4().hex[:8]}",
        )
        say(f"s3gw: ours {ours.url} (pid {svc.pid}), SeaweedFS {theirs.url} (pid {weed.pid})")
        try:
            # Sampled every 0.1 s for at most an hour: the section's whole length.
            with (
                RssSampler(svc.pid, 0.1, 3600.0) as our_rss,
                RssSampler(weed.pid, 0.1, 3600.0) as weed_rss,
            ):
                rows = _measure(bench, ours, theirs, rc, n, rclone_n, src, small_dir)
        finally:
            svc.stop()
    src.unlink(missing_ok=True)
    for figure, unit, (mine, peer), note in rows:
        ratio = mine / peer if peer else None
        report.row(
            figure,
            f"{mine:.1f} {unit}",
            f"SeaweedFS S3 {peer:.1f} {unit}",
            ratio,
            ">= 1.0x",
            None if ratio is None else ratio >= 1.0,
            note,
        )
    if isinstance(rc, str):
        for what in ("4 KiB PUT", "4 KiB GET", f"{label} PUT", f"{label} GET", "list"):
            report.skip(f"rclone {what}", rc)
    mine_mib, peer_mib = our_rss.peak_sum_kib / 1024, weed_rss.peak_sum_kib / 1024
    report.row(
        "peak RSS server tree, all s3gw rows",
        f"{mine_mib:.0f} MiB",
        f"SeaweedFS {peer_mib:.0f} MiB",
        mine_mib / peer_mib if peer_mib else None,
        f"< {RSS_TARGET_MIB:.0f} MiB",
        mine_mib < RSS_TARGET_MIB,
        "ours / SeaweedFS: lower is better",
    )
    return report


Row = tuple[str, str, tuple[float, float], str]


def _both(ours: Endpoint, theirs: Endpoint, what: str, op: Callable[[Endpoint], T]) -> list[T]:
    say(f"s3gw: {what}")
    return [op(ours), op(theirs)]


def _measure(
    bench: Bench,
    ours: Endpoint,
    theirs: Endpoint,
    rc: Rclone | str,
    n: int,
    rclone_n: int,
    src: Path,
    small_dir: Path,
) -> list[Row]:
    """Every figure, each measured on ours then on SeaweedFS."""
    label = size_label(src.stat().st_size)
    work = bench.work
    rows: list[Row] = []
    small = _both(ours, theirs, f"boto3 {n} x 4 KiB", lambda ep: s3_clients.boto3_small(ep, n))
    threads = f"{THREADS} threads"
    rows.append(("boto3 4 KiB PUT", "/s", (small[0][0], small[1][0]), f"{n} objects, {threads}"))
    rows.append(("boto3 4 KiB GET", "/s", (small[0][1], small[1][1]), f"{n} objects, {threads}"))
    listed = _both(ours, theirs, f"boto3 list {n}", lambda ep: s3_clients.boto3_list(ep, n))
    rows.append(
        (
            f"boto3 ListObjectsV2 {n} keys",
            "keys/s",
            (n / listed[0], n / listed[1]),
            f"{listed[0]:.2f} s vs {listed[1]:.2f} s, 1000 a page",
        )
    )
    large = _both(ours, theirs, f"boto3 {label}", lambda ep: s3_clients.boto3_large(ep, src, work))
    rows.append((f"boto3 {label} PUT", "MB/s", (large[0][0], large[1][0]), "upload_file"))
    rows.append((f"boto3 {label} GET", "MB/s", (large[0][1], large[1][1]), "download_file"))
    if isinstance(rc, str):
        return rows
    rsmall = _both(
        ours,
        theirs,
        f"rclone {rclone_n} x 4 KiB",
        lambda ep: s3_clients.rclone_small(rc, ep, small_dir, rclone_n, work),
    )
    note = f"{rclone_n} files, --transfers {THREADS}, process start included"
    rows.append(("rclone 4 KiB PUT", "/s", (rsmall[0][0], rsmall[1][0]), note))
    rows.append(("rclone 4 KiB GET", "/s", (rsmall[0][1], rsmall[1][1]), note))
    rlist = _both(ours, theirs, f"rclone lsf {n}", lambda ep: s3_clients.rclone_list(rc, ep, n))
    rows.append(
        (
            f"rclone lsf {n} keys",
            "keys/s",
            (n / rlist[0], n / rlist[1]),
            f"{rlist[0]:.2f} s vs {rlist[1]:.2f} s",
        )
    )
    rlarge = _both(
        ours, theirs, f"rclone {label}", lambda ep: s3_clients.rclone_large(rc, ep, src, work)
    )
    rows.append((f"rclone {label} PUT", "MB/s", (rlarge[0][0], rlarge[1][0]), "copyto"))
    rows.append((f"rclone {label} GET", "MB/s", (rlarge[0][1], rlarge[1][1]), "copyto"))
    return rows
