"""Local `juststorage serve` processes for the tests, the benchmarks and the scripts.

The server never imports this module. It lives in the package so that `tests/`,
`bench/` and `scripts/` share one launcher without touching `sys.path`, the way
`starlette.testclient` ships with Starlette. Every process listens on 127.0.0.1 on
a free port, and only processes started here are ever signalled, always by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
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


# Ports handed to servers come from below Linux's ephemeral range (32768-60999), so
# an outgoing connection of another test cannot take one between the choice and the
# server's bind. Servers bind with SO_REUSEPORT, so two servers that chose the same
# port at the same moment would both start and split its connections: every choice
# is claimed in a file shared by all processes on the machine (parallel test workers,
# the scripts they run), and a claim is not handed out again for PORT_CLAIM_TTL_S.
# If a port is taken anyway, `start` tries another.
LISTEN_PORTS = range(20000, 32768)
PORT_CLAIMS = Path(tempfile.gettempdir()) / "juststorage-test-ports"
PORT_CLAIM_TTL_S = 900.0
PORT_TAKEN = b"another process holds the port"
START_ATTEMPTS = 4


def _claim_port(port: int) -> bool:
    """Claim `port` for this process: False if another claimed it within the TTL."""
    PORT_CLAIMS.mkdir(mode=0o1777, exist_ok=True)
    claim = PORT_CLAIMS / str(port)
    for _ in range(2):
        try:
            os.close(os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            pass
        try:
            if time.time() - claim.stat().st_mtime < PORT_CLAIM_TTL_S:
                return False
            # A stale claim: only one process renames it away, then creates its own.
            os.rename(claim, PORT_CLAIMS / f"{port}.{os.getpid()}.stale")
            os.unlink(PORT_CLAIMS / f"{port}.{os.getpid()}.stale")
        except FileNotFoundError:
            continue
        except OSError:
            return False
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1, outside the ephemeral range, that nothing holds now
    and no other process chose recently."""
    for _ in range(500):
        port = random.choice(LISTEN_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        if _claim_port(port):
            return port
    raise RuntimeError("no free port in 20000-32767 on 127.0.0.1")


def clean_env(data_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any JustStorage setting, plus the data
    directory, a quiet log level and `extra`."""
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
    """`juststorage <args>` in a subprocess with exactly `env`."""
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


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `predicate` until it holds or `timeout` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def is_running(pid: int) -> bool:
    """False once the process is gone or a zombie (it can no longer do anything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (of all its threads), from /proc."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                children = Path(f"/proc/{pid}/task/{task}/children").read_text()
                out += [int(x) for x in children.split()]
    return out


def runs_program(pid: int, marker: bytes = b"juststorage") -> bool:
    """True while `pid` (recorded as a child of our process) still runs that program:
    a guard against a reused PID."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return marker in cmdline


@dataclass
class Process:
    """A program we started on 127.0.0.1:`port`, its output in `log_path`."""

    argv: list[str]
    port: int
    log_path: Path
    popen: subprocess.Popen[bytes]
    marker: bytes  # in the command line of its workers, checked before a SIGKILL
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill9(self) -> None:
        """SIGKILL the process and its workers at once, by PID: a crash, not a shutdown."""
        children = child_pids(self.pid)
        # The main process first: it would respawn a worker killed before it.
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self._kill_workers(children)
        self.popen.wait(timeout=STOP_TIMEOUT_S)
        # Wait until no worker can still write to the store.
        wait_until(lambda: not any(is_running(pid) for pid in children), STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; workers left over are killed by PID."""
        if self.popen.poll() is not None:
            return
        children = child_pids(self.pid)
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=STOP_TIMEOUT_S)
        # Granian stops its workers itself; a straggler we spawned gets killed by PID.
        self._kill_workers(children)

    def _kill_workers(self, pids: Sequence[int]) -> None:
        for pid in pids:
            if runs_program(pid, self.marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def spawn(
    argv: list[str],
    env: Mapping[str, str],
    log_path: Path,
    port: int,
    *,
    health_path: str = "/health",
    timeout_s: float = START_TIMEOUT_S,
    marker: bytes | None = None,
    tls_ca: Path | None = None,
) -> Process:
    """Start `argv`, which listens on 127.0.0.1:`port`, and wait until `health_path`
    answers 200 (over HTTPS verified against `tls_ca` when given). Raises RuntimeError
    (after stopping it) if it exits or stays unhealthy."""
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            argv, env=dict(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    process = Process(
        argv,
        port,
        log_path,
        popen,
        marker or os.path.basename(argv[0]).encode(),
        scheme="http" if tls_ca is None else "https",
    )
    deadline = time.monotonic() + timeout_s
    verify: ssl.SSLContext | bool = (
        True if tls_ca is None else ssl.create_default_context(cafile=tls_ca)
    )
    with httpx.Client(base_url=process.url, timeout=1.0, trust_env=False, verify=verify) as client:
        while True:
            if popen.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {popen.returncode}:\n{process.log()}")
            try:
                if client.get(health_path).status_code == 200:
                    return process
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                process.stop()
                raise RuntimeError(f"{argv[0]} not healthy after {timeout_s} s:\n{process.log()}")
            time.sleep(0.05)


@dataclass
class Server:
    """One running `juststorage serve`: its URL, data directory, environment and process."""

    data_dir: Path
    env: dict[str, str]
    process: Process
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30.0, trust_env=False)

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def database_url(self) -> str:
        """The server's metadata database (PostgreSQL when set, else its SQLite file)."""
        return self.env.get("DATABASE_URL") or f"sqlite:///{self.data_dir / 'meta.db'}"

    @property
    def admin_key(self) -> str:
        """The key the server wrote to `admin.key` at its first start (no API_KEYS set)."""
        key_file = self.data_dir / "admin.key"
        wait_until(key_file.exists, START_TIMEOUT_S)
        return key_file.read_text("ascii").strip()

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}

    def cli(self, *args: str) -> CliResult:
        """The CLI against the same settings (and so the same database) as the server."""
        return run_cli(list(args), self.env)

    def create_key(self, tenants: list[str], scopes: list[str]) -> dict[str, Any]:
        """A new API key through `juststorage keys create --json`."""
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
        return self.process.log()

    def log_tail(self, lines: int = 20) -> str:
        return self.process.log_tail(lines)

    def kill9(self) -> None:
        """SIGKILL the server and its workers at once, by PID: a crash, not a shutdown."""
        self.client.close()
        self.process.kill9()

    def stop(self) -> None:
        self.client.close()
        self.process.stop()


def start(
    tmp_root: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    data_dir: Path | None = None,
    workers: int = 1,
    health_path: str = "/health",
) -> Server:
    """Start `juststorage serve` on a free port and wait for `health_path`.

    A fresh data directory under `tmp_root` unless `data_dir` is given (several
    servers, or restarts, may share one).
    """
    if data_dir is None:
        data_dir = tmp_root / f"data-{uuid.uuid4().hex[:8]}"
        data_dir.mkdir(parents=True)
    env = clean_env(data_dir, extra_env)
    for attempt in range(START_ATTEMPTS):
        port = free_port()
        argv = [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)]
        if workers != 1:
            argv += ["--workers", str(workers)]
        log_path = tmp_root / f"server-{port}-{uuid.uuid4().hex[:6]}.log"
        try:
            process = spawn(
                argv, env, log_path, port, health_path=health_path, marker=b"juststorage"
            )
        except RuntimeError:
            # Another test bound the same port first: choose again.
            if attempt + 1 < START_ATTEMPTS and PORT_TAKEN in log_path.read_bytes():
                continue
            raise
        return Server(data_dir, env, process)
    raise AssertionError("unreachable")


StartServer = Callable[..., Server]
