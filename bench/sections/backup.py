"""`backup`: `juststorage backup` and `juststorage restore` of a mixed store (SQLite,
blobs on the file system) into a directory target on the same disk.

A server fills the store over HTTP (uploads in parallel): `backup_objects` objects
of `backup_bytes` in all, most of them 4–64 KiB (inline blobs at the default
threshold), the rest equal large file blobs making up the total. Then, with the
server still running beside them (as a backup runs in production):

* the first backup, against min(SHA-256, write + fsync) measured right before it;
* a second backup with nothing changed: the blobs it copies (target 0) and its time
  over the first's (target < 5 %);
* a restore of the newest backup into an empty SQLite deployment, against write +
  fsync measured right before it (target >= 0.5);
* the peak RSS of each of the three processes.

Times are the CLI's wall time as a user sees it (process start included). Every
file the section writes is under one directory, removed at its end, also after a
failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from juststorage.testing import clean_env

from .. import bounds
from ..context import GIB, MIB, VENV_BIN, Bench, Service, free_bytes, size_label
from ..procfs import RssSampler
from ..table import Report, say

SMALL_MIN, SMALL_MAX = 4 * 1024, 64 * 1024  # at most the default inline threshold
FILL_CONCURRENCY = 8
CLI_TIMEOUT_S = 1800.0
SECOND_TARGET = 0.05
RESTORE_TARGET = 0.5


def run(bench: Bench) -> Report:
    report = Report("backup", "sqlite")
    sz = bench.sizes
    total, n = sz.backup_bytes, sz.backup_objects
    label = f"{n:,} objects / {size_label(total)}"
    bound_size = min(GIB, total)  # a smaller file flatters the disk (its write cache)
    # The store, the backup and the restored copy, the bound's two files, and slack.
    need = 3 * total + 2 * bound_size + sz.min_free_bytes
    if free_bytes() < need:
        why = f"not enough free disk ({free_bytes() >> 30} GiB, needs {need >> 30} GiB)"
        for figure in ("first backup", "second backup", "restore", "peak RSS"):
            report.skip(f"{figure}, {label}", why)
        return report
    root = bench.tmp / "backup"
    root.mkdir()
    svc = Service(root, "source", workers=2)
    try:
        _measure(bench, report, root, svc, label, bound_size)
    finally:  # also after a failure: 30 GiB must not stay behind
        svc.stop()
        if svc in bench.services:
            bench.services.remove(svc)
        shutil.rmtree(root, ignore_errors=True)
    return report


@dataclass
class CliRun:
    doc: dict[str, Any]
    seconds: float
    # VmRSS of the process tree sampled every 20 ms (not wait4's ru_maxrss: a forked
    # child starts with this process's pages and keeps that high-water mark past exec).
    peak_mib: float
    cpu_s: float  # user + system CPU seconds of the process (wait4)


def _measure(
    bench: Bench, report: Report, root: Path, svc: Service, label: str, bound_size: int
) -> None:
    sz = bench.sizes
    bench.start(svc)
    t0 = time.perf_counter()
    stored = fill(svc, sz.backup_objects, sz.backup_small_objects, sz.backup_bytes)
    fill_s = time.perf_counter() - t0
    say(
        f"backup: filled {sz.backup_objects} objects, {stored / 1e6:.0f} MB in {fill_s:.0f} s"
        f" ({stored / 1e6 / fill_s:.0f} MB/s)"
    )
    target = root / "target"
    src_env = clean_env(svc.data)
    src = root / "bound-src.bin"
    bounds.make_source(src, bound_size, uuid.uuid4().bytes)

    os.sync()
    _, hash_s, write_s = bounds.raw_upload(src, root / "bound-out-1.bin")
    hash_mbps, write_mbps = bound_size / 1e6 / hash_s, bound_size / 1e6 / write_s
    bound_mbps = min(hash_mbps, write_mbps)
    say(f"backup: bound sha256 {hash_mbps:.0f} MB/s, write+fsync {write_mbps:.0f} MB/s")
    os.sync()
    first = run_cli(["backup", str(target), "--json", "--no-progress"], src_env, root / "b1")
    if first.doc["blobs_present"] != 0 or first.doc["objects"] != sz.backup_objects:
        raise RuntimeError(f"first backup: {first.doc}")
    copied = int(first.doc["bytes_copied"])
    first_mbps = copied / 1e6 / first.seconds
    say(f"backup: first {first.seconds:.1f} s, {first_mbps:.0f} MB/s: {first.doc}")
    report.row(
        f"first backup, {label}",
        f"{first.seconds:.1f} s, {first_mbps:.0f} MB/s",
        f"min(sha256 {hash_mbps:.0f}, write+fsync {write_mbps:.0f}) MB/s",
        first_mbps / bound_mbps,
        "-",
        None,
        f"{first.doc['blobs_copied']} blobs, {copied / 1e6:.0f} MB copied;"
        f" CLI says {first.doc['seconds']:.1f} s; CPU {first.cpu_s:.1f} s",
    )

    os.sync()
    second = run_cli(["backup", str(target), "--json", "--no-progress"], src_env, root / "b2")
    fraction = second.seconds / first.seconds
    say(f"backup: second {second.seconds:.2f} s ({100 * fraction:.1f} %): {second.doc}")
    report.row(
        f"second backup, nothing changed, {label}",
        f"{second.doc['blobs_copied']} blobs copied, {second.seconds:.2f} s",
        f"the first backup's {first.seconds:.1f} s",
        fraction,
        "0 blobs, < 0.05",
        second.doc["blobs_copied"] == 0 and fraction < SECOND_TARGET,
        f"{second.doc['blobs_present']} blobs present; CLI says {second.doc['seconds']:.2f} s;"
        f" CPU {second.cpu_s:.1f} s",
    )

    svc.stop()  # the source is done with; its page cache and CPU are not restore's
    os.sync()
    first_write_mbps = write_mbps
    _, _, write_s = bounds.raw_upload(src, root / "bound-out-2.bin")
    write_mbps = bound_size / 1e6 / write_s
    say(f"restore: bound write+fsync {write_mbps:.0f} MB/s")
    dest = root / "restored"
    dest.mkdir()
    os.sync()
    rest = run_cli(["restore", str(target), "--json", "--no-progress"], clean_env(dest), root / "r")
    if rest.doc["id"] != second.doc["id"] or rest.doc["objects"] != sz.backup_objects:
        raise RuntimeError(f"restore: {rest.doc}, newest backup {second.doc['id']}")
    restored = int(rest.doc["blob_bytes"])
    rest_mbps = restored / 1e6 / rest.seconds
    say(f"restore: {rest.seconds:.1f} s, {rest_mbps:.0f} MB/s: {rest.doc}")
    report.row(
        f"restore, {label}",
        f"{rest.seconds:.1f} s, {rest_mbps:.0f} MB/s",
        f"write+fsync {write_mbps:.0f} MB/s",
        rest_mbps / write_mbps,
        f">= {RESTORE_TARGET:.2f}",
        rest_mbps / write_mbps >= RESTORE_TARGET,
        f"{rest.doc['blobs_stored']} blobs stored, {rest.doc['blobs_inline']} inline;"
        f" CLI says {rest.doc['seconds']:.1f} s; CPU {rest.cpu_s:.1f} s; write+fsync before"
        f" the first backup"
        f" {first_write_mbps:.0f} MB/s",
    )
    for what, r in (("first backup", first), ("second backup", second), ("restore", rest)):
        report.row(
            f"peak RSS, {what}",
            f"{r.peak_mib:.0f} MiB",
            "no target (information)",
            None,
            "-",
            None,
            f"the CLI process, {label}",
        )


def fill(svc: Service, n: int, n_small: int, total: int) -> int:
    """Upload n objects through the server: n_small of 4–64 KiB (sizes drawn with a fixed
    seed), the rest of equal size making up `total` bytes; every body distinct. Returns
    the bytes stored."""
    rng = random.Random(7)
    sizes = [rng.randint(SMALL_MIN, SMALL_MAX) for _ in range(n_small)]
    n_large = n - n_small
    large = (total - sum(sizes)) // max(1, n_large)
    if n_large and large <= SMALL_MAX:
        raise RuntimeError(f"large objects of {large} bytes would be inline: raise the total")
    sizes += [large] * n_large
    # A random block that each body slices, behind its own index: distinct hashes.
    block = os.urandom(16 * MIB)
    reps = max(1, -(-max(sizes) // len(block)))
    block = block * reps
    asyncio.run(_upload(svc, sizes, block))
    return sum(sizes)


async def _upload(svc: Service, sizes: list[int], block: bytes) -> None:
    # Large bodies first, so the small ones do not leave a long tail of big ones.
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i])
    it = iter(order)
    deadline = time.monotonic() + 1800
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
    connector = aiohttp.TCPConnector(limit=FILL_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for i in it:
                if time.monotonic() > deadline:
                    raise RuntimeError("fill took longer than 30 minutes")
                head = f"{i:016d}".encode()
                offset = (i * 4099) % (len(block) - sizes[i] + 1)
                body = head + block[offset : offset + sizes[i] - len(head)]
                headers = {
                    **svc.auth(),
                    "X-Namespace": "backup",
                    "X-Key": f"obj/{i:06d}",
                    "Content-Type": "application/octet-stream",
                }
                url = f"{svc.server.url}/v1/objects"
                async with session.post(url, data=body, headers=headers) as r:
                    if r.status != 201:
                        raise RuntimeError(f"POST -> {r.status} {(await r.read())[:200]!r}")
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(FILL_CONCURRENCY)))


def run_cli(args: list[str], env: dict[str, str], out: Path) -> CliRun:
    """`juststorage <args>` (which prints one JSON object) with exactly `env`: its
    answer, wall seconds and peak RSS. Killed (by its pid) after CLI_TIMEOUT_S."""
    stdout, stderr = out.with_suffix(".out"), out.with_suffix(".err")
    with open(stdout, "wb") as fo, open(stderr, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(VENV_BIN / "juststorage"), *args],
            env=env,
            stdout=fo,
            stderr=fe,
            stdin=subprocess.DEVNULL,
        )
        with RssSampler(proc.pid, interval=0.02, max_seconds=CLI_TIMEOUT_S) as sampler:
            status, cpu_s = _wait(proc, t0 + CLI_TIMEOUT_S)
        seconds = time.perf_counter() - t0
    if status != 0:
        raise RuntimeError(f"juststorage {args[0]} exited {status}: {stderr.read_text()[-1000:]!r}")
    doc: dict[str, Any] = json.loads(stdout.read_text())
    return CliRun(doc, seconds, sampler.tree_peak_mib, cpu_s)


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int, float]:
    """Reap `proc` with wait4: its exit status and CPU seconds (user + system); killed
    (by its pid) at `deadline`."""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.perf_counter() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{proc.args!r} killed after {CLI_TIMEOUT_S:.0f} s")
        time.sleep(0.01)
