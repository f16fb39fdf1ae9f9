"""`multipart`: large transfers with the CLI, each against bounds measured in this run.

- `juststorage put` of one file in one request, then as a multipart session
  (SPEC §8.2) with 1, 4 and 8 parts in flight; each against min(SHA-256 speed,
  write + fsync speed) of the same file, measured in this process right before.
- The completion of a session whose parts arrived in order, timed alone.
- `juststorage get` of the object in one stream and in parallel ranges, against
  the slowest of: sendfile to a loopback reader, SHA-256 and write + fsync (what
  the CLI does with the bytes: it writes them and checks their hash).
- A `put` killed once 90 % of its parts are acknowledged, then run again: the bytes
  the second run sends, as a share of the file.
- Peak RSS of the server tree and of the CLI process during each transfer.

Its own server (SQLite) on a fresh data dir, stopped and removed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .. import bounds
from ..context import VENV_BIN, Bench, Service, free_bytes, server_cpu, size_label
from ..procfs import RssSampler, children_cpu
from ..table import Report, say
from .rss import RSS_TARGET_MIB, head_of

MIB = 1024 * 1024
CLI = VENV_BIN / "juststorage"
UPLOAD_TARGET = 0.90  # multipart upload vs min(SHA-256, write + fsync)
COMPLETION_TARGET_S = 3.0  # for 4 GiB; scaled by size for the smaller runs
RESEND_TARGET = 0.15  # a put killed at 90 % sends at most this share again
RESUME_PACE = 25 * MIB  # bytes/s per connection until the kill, so 90 % can be caught
# The number of files the section keeps on disk at once, in units of the object size:
# the source, the bound's copy, a download, and the objects stored (with the session's).
DISK_UNITS = 10


@dataclass
class Transfer:
    """One CLI run: wall seconds, CPU, peak RSS of the server tree and of the CLI."""

    seconds: float
    server_cpu_s: float
    cli_cpu_s: float
    server_peak_mib: float
    cli_peak_mib: float
    stdout: str

    def note(self) -> str:
        return (
            f"CPU s: server {self.server_cpu_s:.1f}, CLI {self.cli_cpu_s:.1f}; peak RSS"
            f" server {self.server_peak_mib:.0f} MiB, CLI {self.cli_peak_mib:.0f} MiB"
        )


def run(bench: Bench) -> Report:
    report = Report("multipart", "sqlite")
    size = bench.sizes.multipart_bytes
    label = size_label(size)
    if free_bytes() < DISK_UNITS * size + bench.sizes.min_free_bytes:
        report.skip(
            f"upload {label}, multipart", f"not enough free disk ({free_bytes() >> 30} GiB)"
        )
        return report
    part = bench.sizes.multipart_part_bytes
    env = {"JUSTSTORAGE_GC_INTERVAL_S": "0"}
    if part is not None:  # tiny sizes: parts under the server's default minimum
        env["JUSTSTORAGE_UPLOAD_PART_MIN_BYTES"] = str(part)
    svc = bench.start(Service(bench.tmp, "multipart", extra_env=env))
    work = bench.work / "multipart"
    work.mkdir()
    try:
        _measure(bench, svc, report, work, size, part)
    finally:
        svc.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(svc.home, ignore_errors=True)
    return report


def cli_env(svc: Service, config: Path, url: str | None = None) -> dict[str, str]:
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()  # named by JUSTSTORAGE_CLIENT_CONFIG, so it must exist (empty)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUSTSTORAGE_")}
    env.update(
        {
            "JUSTSTORAGE_URL": url or svc.server.url,
            "JUSTSTORAGE_TOKEN": svc.token,
            "JUSTSTORAGE_CLIENT_CONFIG": str(config),
        }
    )
    return env


def run_cli(svc: Service, env: dict[str, str], args: list[str]) -> Transfer:
    """`juststorage <args>`, sampling the RSS of the server tree and of the CLI."""
    cpu0, ccpu0 = server_cpu(svc.pid), children_cpu()
    with RssSampler(svc.pid) as server_rss:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(CLI), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        with RssSampler(proc.pid, interval=0.01) as cli_rss:
            out, err = proc.communicate(timeout=1800)
        seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"juststorage {' '.join(args[:2])} -> {proc.returncode}: {err[-400:]}")
    return Transfer(
        seconds,
        server_cpu(svc.pid) - cpu0,
        children_cpu() - ccpu0,
        server_rss.tree_peak_mib,
        cli_rss.tree_peak_mib,
        out,
    )


def _measure(
    bench: Bench, svc: Service, report: Report, work: Path, size: int, part: int | None
) -> None:
    label = size_label(size)
    src = work / "model.bin"
    bounds.make_source(src, size, uuid.uuid4().bytes)
    env = cli_env(svc, work / "config" / "client.toml")
    part_args = ["--part-size", str(part)] if part is not None else []
    server_peaks: dict[str, float] = {}
    cli_peaks: dict[str, float] = {}
    hash_s = write_s = 0.0
    last_key = last_hash = ""
    modes = [
        ("one request", 1, size + 1),
        *((f"multipart, {n} in flight", n, 1) for n in (1, 4, 8)),
    ]
    for i, (mode, parallel, threshold) in enumerate(modes):
        bounds.set_tag(src, f"mp{i}".encode() + uuid.uuid4().bytes)
        raw_out = work / "raw.bin"
        os.sync()
        hexd, hash_s, write_s = bounds.raw_upload(src, raw_out)
        bound_s = max(hash_s, write_s)  # min(SHA-256 speed, write + fsync speed)
        raw_out.unlink()
        os.sync()
        last_key = f"bench/multipart/model-{i}"
        args = ["put", str(src), last_key, "--json", "--no-progress"]
        args += ["--parallel", str(parallel), "--multipart-threshold", str(threshold)]
        done = run_cli(svc, env, args + part_args)
        doc = json.loads(done.stdout)
        if doc["content_hash"] != f"sha256:{hexd}" or int(doc["size_bytes"]) != size:
            raise RuntimeError(f"put ({mode}) stored {doc}, expected sha256:{hexd}")
        last_hash = doc["content_hash"]
        ratio = bound_s / done.seconds
        say(
            f"{label} put, {mode}: {size / 1e6 / done.seconds:.0f} MB/s, bound"
            f" {size / 1e6 / bound_s:.0f} MB/s, ratio {ratio:.2f}; {done.note()}"
        )
        server_peaks[f"upload, {mode}"] = done.server_peak_mib
        cli_peaks[f"upload, {mode}"] = done.cli_peak_mib
        report.row(
            f"put {label}, {mode}",
            f"{size / 1e6 / done.seconds:.0f} MB/s",
            f"min(sha256 {size / 1e6 / hash_s:.0f}, write+fsync {size / 1e6 / write_s:.0f}) MB/s",
            ratio,
            f">= {UPLOAD_TARGET:.2f}",
            ratio >= UPLOAD_TARGET,
            f"CLI wall time incl. its start and its SHA-256 pass; {done.note()}",
        )
    downloads(
        svc,
        env,
        report,
        work,
        src,
        (last_key, last_hash),
        (hash_s, write_s),
        server_peaks,
        cli_peaks,
    )
    completion(svc, report, work, src, size, part)
    for what, peaks in (("server tree", server_peaks), ("CLI", cli_peaks)):
        worst = max(peaks, key=lambda k: peaks[k])
        peak = peaks[worst]
        report.row(
            f"peak RSS {what}, {label} put and get",
            f"{peak:.0f} MiB",
            f"target < {RSS_TARGET_MIB:.0f} MiB" if what != "CLI" else "(no target)",
            peak / RSS_TARGET_MIB if what != "CLI" else None,
            "< 1.00" if what != "CLI" else "",
            peak < RSS_TARGET_MIB if what != "CLI" else None,
            f"highest during {worst}; " + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items()),
        )
    resume(svc, report, work, src, size, part)


def completion(
    svc: Service, report: Report, work: Path, src: Path, size: int, part: int | None
) -> None:
    """A session's parts sent in order, one at a time (from this process), then
    `POST …/complete` timed alone."""
    label = size_label(size)
    part_bytes = part or max(8 * MIB, -(-size // 10000))
    bounds.set_tag(src, b"complete" + uuid.uuid4().bytes)
    headers = svc.auth()
    with httpx.Client(base_url=svc.server.url, timeout=600, trust_env=False) as client:
        created = client.post(
            "/v1/uploads", headers={**headers, "X-Namespace": "multipart", "X-Key": "completion"}
        )
        created.raise_for_status()
        upload_id = created.json()["upload_id"]
        with open(src, "rb") as f:
            number = 0
            while body := f.read(part_bytes):
                number += 1
                sent = client.put(
                    f"/v1/uploads/{upload_id}/parts/{number}", headers=headers, content=body
                )
                if sent.status_code != 200:
                    raise RuntimeError(f"part {number} -> {sent.status_code} {sent.text[:200]}")
        with RssSampler(svc.pid) as rss:
            started = time.perf_counter()
            done = client.post(f"/v1/uploads/{upload_id}/complete", headers=headers)
            seconds = time.perf_counter() - started
    if done.status_code != 201 or int(done.json()["size_bytes"]) != size:
        raise RuntimeError(f"complete -> {done.status_code} {done.text[:300]}")
    target = COMPLETION_TARGET_S * size / (4 * 1024 * MIB)
    say(f"{label} session completion: {seconds:.2f} s ({number} parts in order)")
    report.row(
        f"complete a {label} session, parts in order",
        f"{seconds:.2f} s",
        f"target <= {target:.2f} s ({COMPLETION_TARGET_S:.0f} s per 4 GiB)",
        seconds / target,
        "<= 1.00",
        seconds <= target,
        f"{number} parts of {size_label(part_bytes)} sent one by one; peak RSS server"
        f" {rss.tree_peak_mib:.0f} MiB",
    )


def downloads(
    svc: Service,
    env: dict[str, str],
    report: Report,
    work: Path,
    src: Path,
    stored: tuple[str, str],
    upload_bound: tuple[float, float],
    server_peaks: dict[str, float],
    cli_peaks: dict[str, float],
) -> None:
    """`get` of the last uploaded object (the source as it is now) in one stream and in
    parallel ranges (the CLI's default count)."""
    key, content_hash = stored
    hash_s, write_s = upload_bound
    size = src.stat().st_size
    label = size_label(size)
    head = head_of(src)
    blob = svc.blob_path(content_hash)
    dest = work / "got.bin"
    for mode, args in (
        ("one stream", ["--parallel-threshold", str(size + 1)]),
        ("parallel ranges, 4 in flight", ["--parallel", "4", "--parallel-threshold", "1"]),
        ("parallel ranges, 8 in flight", ["--parallel", "8", "--parallel-threshold", "1"]),
    ):
        os.sync()
        send_s = bounds.sendfile_download(blob, head)
        bound_s = max(send_s, hash_s, write_s)
        done = run_cli(svc, env, ["get", key, str(dest), "--json", "--no-progress", *args])
        if dest.stat().st_size != size or head_of(dest) != head:
            raise RuntimeError(f"get ({mode}) wrote other bytes")
        dest.unlink()
        ratio = bound_s / done.seconds
        say(
            f"{label} get, {mode}: {size / 1e6 / done.seconds:.0f} MB/s, bound"
            f" {size / 1e6 / bound_s:.0f} MB/s, ratio {ratio:.2f}; {done.note()}"
        )
        server_peaks[f"download, {mode}"] = done.server_peak_mib
        cli_peaks[f"download, {mode}"] = done.cli_peak_mib
        report.row(
            f"get {label}, {mode}",
            f"{size / 1e6 / done.seconds:.0f} MB/s",
            f"min(sendfile {size / 1e6 / send_s:.0f}, sha256 {size / 1e6 / hash_s:.0f},"
            f" write+fsync {size / 1e6 / write_s:.0f}) MB/s",
            ratio,
            "(none set)",
            None,
            f"CLI wall time incl. its start; {done.note()}",
        )


def resume(
    svc: Service, report: Report, work: Path, src: Path, size: int, part: int | None
) -> None:
    """`put` through a proxy that paces each connection and counts the bytes it forwards;
    SIGKILL once 90 % of the parts are in the state file; the same `put` again."""
    from tests.sdk import proxy as proxy_module

    label = size_label(size)
    bounds.set_tag(src, b"resume" + uuid.uuid4().bytes)
    proxy_module._MAX_POLLS = 10**7  # the tests' bound on one connection's reads
    config = work / "resume-config" / "client.toml"
    state_dir = config.parent / "transfers"
    proxy = proxy_module.CuttingProxy(svc.port, 1 << 62, up_bytes_per_s=RESUME_PACE)
    proxy.__enter__()
    try:
        env = cli_env(svc, config, proxy.url)
        args = [str(CLI), "put", str(src), "bench/multipart/resumed", "--json", "--no-progress"]
        args += ["--multipart-threshold", "1"]
        args += ["--part-size", str(part)] if part is not None else []
        first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 1800
        while True:
            recorded, parts = _recorded(state_dir, size)
            if parts and recorded >= 0.9 * parts:
                break
            if first.poll() is not None or time.monotonic() > deadline:
                first.kill()
                raise RuntimeError(f"the first put ended before 90 % (exit {first.returncode})")
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        before = _settled(proxy)
        proxy.up_bytes_per_s = None
        started = time.perf_counter()
        again = subprocess.run(args, env=env, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - started
        resent = proxy.bytes_up - before
    finally:
        proxy.__exit__(None, None, None)
    if again.returncode != 0 or int(json.loads(again.stdout)["size_bytes"]) != size:
        raise RuntimeError(f"the resumed put failed: {again.stderr[-400:]}")
    share = resent / size
    say(f"{label} put killed at {recorded}/{parts} parts: the second run sent {share:.1%}")
    report.row(
        f"put {label} killed at 90 %, run again: bytes sent again",
        f"{share:.1%}",
        f"target <= {RESEND_TARGET:.0%} of the file",
        share / RESEND_TARGET,
        "<= 1.00",
        share <= RESEND_TARGET,
        f"killed with {recorded}/{parts} parts acknowledged ({before / size:.0%} of the file"
        f" sent); the second run took {seconds:.1f} s",
    )


def _recorded(state_dir: Path, size: int) -> tuple[int, int]:
    """(parts acknowledged, parts in all) from the CLI's upload state file."""
    try:
        (state_file,) = state_dir.glob("upload-*.json")
        state = json.loads(state_file.read_text())
        return len(state["parts"]), -(-size // int(state["part_bytes"]))
    except (OSError, ValueError, KeyError):
        return 0, 0


def _settled(proxy: Any) -> int:
    """The bytes forwarded once nothing more arrives (a dead client's buffers drain)."""
    last = -1
    while last != (now := int(proxy.bytes_up)):
        last = now
        time.sleep(0.5)
    return last
