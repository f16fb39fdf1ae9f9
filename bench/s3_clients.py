"""Workloads of the `s3gw` section (bench/sections/s3gw.py): boto3 and rclone against
an S3 endpoint, the same calls whichever server answers (our gateway or SeaweedFS's
own S3 endpoint), all on 127.0.0.1.

- boto3 (default configuration: checksums on, its transfer manager's 8 MiB parts,
  10 in flight): 4 KiB PUTs then GETs from THREADS threads sharing one client
  (each GET checked); ListObjectsV2 of those keys, 1000 a page; one large file
  up with upload_file and down with download_file.
- rclone: a directory of 4 KiB files copied up and down (--transfers THREADS); the
  same large file up and down (copyto: rclone's own multipart above 200 MiB);
  `lsf` of the boto3 keys (ListObjectsV2 pages of 1000).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SMALL_SIZE = 4096
THREADS = 4
REGION = "us-east-1"
CLIENT_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Endpoint:
    """One S3 server: where, with which pair, in which bucket and key prefix."""

    name: str
    url: str
    access_key: str
    secret: str
    bucket: str
    prefix: str

    def key(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))


def _client(ep: Endpoint) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=ep.url,
        aws_access_key_id=ep.access_key,
        aws_secret_access_key=ep.secret,
        region_name=REGION,
        config=Config(max_pool_connections=THREADS * 2, retries={"max_attempts": 1}),
    )


def small_body(i: int, block: bytes) -> bytes:
    """Distinct 4 KiB bodies (the index in front), so no layer dedups them."""
    return i.to_bytes(8, "big") + block[8:SMALL_SIZE]


def _timed_pool(n: int, op: Any) -> float:
    """`op(i)` for i < n on THREADS threads; ops per second."""
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        for _ in pool.map(op, range(n)):
            pass
    return n / (time.perf_counter() - started)


def boto3_small(ep: Endpoint, n: int) -> tuple[float, float]:
    """n 4 KiB PUTs, then n GETs (each checked): (PUT/s, GET/s)."""
    client = _client(ep)
    block = os.urandom(SMALL_SIZE)

    def put(i: int) -> None:
        client.put_object(
            Bucket=ep.bucket, Key=ep.key("small", f"{i:06d}"), Body=small_body(i, block)
        )

    def get(i: int) -> None:
        got = client.get_object(Bucket=ep.bucket, Key=ep.key("small", f"{i:06d}"))["Body"].read()
        if got != small_body(i, block):
            raise RuntimeError(f"{ep.name}: GET small/{i:06d} differs")

    return _timed_pool(n, put), _timed_pool(n, get)


def boto3_list(ep: Endpoint, n: int) -> float:
    """Seconds to list the n small keys with ListObjectsV2, 1000 a page."""
    client = _client(ep)
    started = time.perf_counter()
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=ep.bucket, Prefix=ep.key("small", "")
    ):
        count += len(page.get("Contents", []))
    seconds = time.perf_counter() - started
    if count != n:
        raise RuntimeError(f"{ep.name}: listed {count} keys, expected {n}")
    return seconds


def boto3_large(ep: Endpoint, src: Path, work: Path) -> tuple[float, float]:
    """upload_file then download_file of `src`: (MB/s up, MB/s down)."""
    client = _client(ep)
    size = src.stat().st_size
    key = ep.key("large", "boto3.bin")
    started = time.perf_counter()
    client.upload_file(str(src), ep.bucket, key)
    up = size / (time.perf_counter() - started) / 1e6
    out = work / f"boto3-{ep.name}.out"
    started = time.perf_counter()
    client.download_file(ep.bucket, key, str(out))
    down = size / (time.perf_counter() - started) / 1e6
    got = out.stat().st_size
    out.unlink()
    if got != size:
        raise RuntimeError(f"{ep.name}: downloaded {got} bytes of {size}")
    return up, down


# ------------------------------------------------------------------ rclone
def rclone_binary() -> str | None:
    return shutil.which("rclone")


@dataclass(frozen=True)
class Rclone:
    """rclone with a config file of its own (remote `ep`: provider Other, path style)."""

    binary: str
    home: Path

    def run(self, ep: Endpoint, *args: str) -> subprocess.CompletedProcess[str]:
        conf = self.home / f"rclone-{ep.name}.conf"
        conf.write_text(
            f"[ep]\ntype = s3\nprovider = Other\naccess_key_id = {ep.access_key}\n"
            f"secret_access_key = {ep.secret}\nendpoint = {ep.url}\nregion = {REGION}\n"
            "force_path_style = true\n"
        )
        conf.chmod(0o600)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_"))}
        env["HOME"] = str(self.home)
        argv = [self.binary, "--config", str(conf), "--retries", "1", "--low-level-retries", "1"]
        done = subprocess.run(
            [*argv, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLIENT_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rclone {' '.join(args[:2])} on {ep.name}: {done.stderr[-500:]}")
        return done

    def remote(self, ep: Endpoint, *parts: str) -> str:
        return f"ep:{ep.bucket}/{ep.key(*parts)}"


def make_small_dir(path: Path, n: int) -> None:
    """n distinct 4 KiB files in `path`."""
    path.mkdir(parents=True, exist_ok=True)
    block = os.urandom(SMALL_SIZE)
    for i in range(n):
        (path / f"{i:06d}").write_bytes(small_body(i, block))


def rclone_small(rc: Rclone, ep: Endpoint, src: Path, n: int, work: Path) -> tuple[float, float]:
    """The n files of `src` up, then down into a fresh directory: (PUT/s, GET/s)."""
    flags = ("--transfers", str(THREADS), "--checkers", str(THREADS), "--no-check-dest")
    started = time.perf_counter()
    rc.run(ep, "copy", *flags, "--s3-no-check-bucket", str(src), rc.remote(ep, "rclone-small"))
    up = n / (time.perf_counter() - started)
    out = work / f"rclone-small-{ep.name}"
    started = time.perf_counter()
    rc.run(ep, "copy", *flags, rc.remote(ep, "rclone-small"), str(out))
    down = n / (time.perf_counter() - started)
    got = len(list(out.iterdir()))
    shutil.rmtree(out)
    if got != n:
        raise RuntimeError(f"{ep.name}: rclone fetched {got} files of {n}")
    return up, down


def rclone_list(rc: Rclone, ep: Endpoint, n: int) -> float:
    """Seconds for `rclone lsf` of the n small keys."""
    started = time.perf_counter()
    done = rc.run(ep, "lsf", "--files-only", rc.remote(ep, "small"))
    seconds = time.perf_counter() - started
    if len(done.stdout.split()) != n:
        raise RuntimeError(f"{ep.name}: rclone listed {len(done.stdout.split())} keys of {n}")
    return seconds


def rclone_large(rc: Rclone, ep: Endpoint, src: Path, work: Path) -> tuple[float, float]:
    """copyto up and down of `src`: (MB/s up, MB/s down)."""
    size = src.stat().st_size
    started = time.perf_counter()
    rc.run(ep, "copyto", "--s3-no-check-bucket", str(src), rc.remote(ep, "large", "rclone.bin"))
    up = size / (time.perf_counter() - started) / 1e6
    out = work / f"rclone-{ep.name}.out"
    started = time.perf_counter()
    rc.run(ep, "copyto", rc.remote(ep, "large", "rclone.bin"), str(out))
    down = size / (time.perf_counter() - started) / 1e6
    got = out.stat().st_size
    out.unlink()
    if got != size:
        raise RuntimeError(f"{ep.name}: rclone downloaded {got} bytes of {size}")
    return up, down
