"""The real `juststorage serve` (and CLI) as subprocesses on 127.0.0.1, for tests.

Only processes started here are ever signalled, always by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent / "juststorage"
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# Settings read from the environment: never inherit them from the caller's shell.
_SETTING_NAMES = (
    "DATABASE_URL",
    "JWT_SECRET",
    "API_KEYS",
    "PROMETHEUS_MULTIPROC_DIR",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ALLOW_HTTP",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("JUSTSTORAGE_") and k not in _SETTING_NAMES
    }
    env["JUSTSTORAGE_DATA_DIR"] = str(data_dir)
    env["JUSTSTORAGE_LOG_LEVEL"] = "warning"
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(args: list[str], env: Mapping[str, str], timeout: float = 30.0) -> CliResult:
    proc = subprocess.run(
        [str(BIN), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Server:
    """One running server: its URL, data directory, environment and process."""

    port: int
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        """The server's metadata database (PostgreSQL when set, else its SQLite file)."""
        return self.env.get("DATABASE_URL") or f"sqlite:///{self.data_dir / 'meta.db'}"

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text("ascii").strip()

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def cli(self, *args: str) -> CliResult:
        """The CLI against the same settings (and so the same database) as the server."""
        return run_cli(list(args), self.env)

    def create_key(self, tenants: list[str], scopes: list[str]) -> dict[str, Any]:
        args = ["keys", "create", "--json"]
        for tenant in tenants:
            args += ["--tenant", tenant]
        for scope in scopes:
            args += ["--scope", scope]
        result = self.cli(*args)
        assert result.returncode == 0, result.stderr
        created: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return created

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def kill9(self) -> None:
        """SIGKILL the server and its workers at once, by PID: a crash, not a shutdown."""
        self.client.close()
        children = _child_pids(self.process.pid)
        # The main process first: it would respawn a worker killed before it.
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        for pid in children:
            if _is_ours(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)
        for pid in children:  # wait until no worker can still write to the store
            wait_until(lambda pid=pid: not _is_running(pid), STOP_TIMEOUT_S)

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is not None:
            return
        children = _child_pids(self.process.pid)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
        # Granian stops its workers itself; a straggler we spawned gets killed by PID.
        for pid in children:
            if _is_ours(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _is_running(pid: int) -> bool:
    """False once the process is gone or a zombie (it can no longer do anything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def _is_ours(pid: int) -> bool:
    """True while `pid` (recorded as a child of our server) still runs juststorage."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"juststorage" in cmdline


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def start(
    tmp_root: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    data_dir: Path | None = None,
) -> Server:
    """Start `juststorage serve` on a free port and wait for /health.

    A fresh data directory under `tmp_root` unless `data_dir` is given (several
    servers, or restarts, may share one).
    """
    if data_dir is None:
        data_dir = tmp_root / f"data-{uuid.uuid4().hex[:8]}"
        data_dir.mkdir(parents=True)
    env = clean_env(data_dir, extra_env)
    port = free_port()
    log_path = tmp_root / f"server-{port}-{uuid.uuid4().hex[:6]}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(port, data_dir, env, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if server.client.get("/health", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"server not healthy after {START_TIMEOUT_S}s:\n{server.log()}")
        time.sleep(0.05)


StartServer = Callable[..., Server]
