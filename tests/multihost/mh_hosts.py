"""The processes of the multi-host test, each started inside its own namespace.

PostgreSQL is a throwaway cluster of its own (initdb in a temp dir, run as the
`postgres` user, listening on its namespace address only); the machine's own
cluster is never used. SeaweedFS is `weed mini` with a fresh data dir. The
JustStorage hosts are `juststorage serve` from this virtualenv. Every process is
stopped (or killed) by the PID this module got when it started it, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from mh_netns import Host, NamespaceThreads

from juststorage.testing import child_pids, is_running, runs_program, wait_until
from support.seaweedfs import weed_mini_args, write_s3_config

VENV_BIN = Path(sys.executable).parent
JUSTSTORAGE = VENV_BIN / "juststorage"
WEED = VENV_BIN / "weed"
PG_BIN = Path(os.environ.get("JUSTSTORAGE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_PORT = 5432
S3_PORT = 8333
S3_ACCESS_KEY = "multihost-access"
S3_SECRET_KEY = "multihost-secret-0123456789abcdef"
S3_BUCKET = "juststorage"
API_KEY = "multihost-test-key-0123456789abcdefgh"
STOP_TIMEOUT_S = 10.0


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal our own process by PID; SIGKILL if it does not exit in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def wait_for_port(clients: NamespaceThreads, address: str, port: int, timeout: float) -> None:
    """Until a TCP connect from the client namespace to address:port succeeds."""
    import socket

    def probe() -> bool:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            return False

    if not wait_until(lambda: clients.run(probe), timeout, interval=0.1):
        raise RuntimeError(f"{address}:{port} did not answer within {timeout}s")


@dataclass
class PostgresHost:
    """A throwaway PostgreSQL 15 cluster in `host`'s namespace (trust auth on the subnet)."""

    host: Host
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, host: Host, clients: NamespaceThreads, log_dir: Path) -> PostgresHost:
        # The postgres user must reach its files: a dir of its own, outside pytest's 0700 tree.
        workdir = Path(tempfile.mkdtemp(prefix="js-multihost-pg-"))
        shutil.chown(workdir, "postgres", "postgres")
        data = workdir / "data"
        initdb = subprocess.run(
            ["runuser", "-u", "postgres", "--", str(PG_BIN / "initdb"), "-D", str(data),
             "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        if initdb.returncode != 0:
            shutil.rmtree(workdir, ignore_errors=True)
            raise RuntimeError(f"initdb failed: {initdb.stderr}")
        subnet = host.address.rsplit(".", 1)[0] + ".0/24"
        with (data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {subnet} trust\n")
        log_path = log_dir / "postgres.log"
        server = cls(host, workdir, log_path)
        settings = {
            "listen_addresses": host.address,
            "port": str(PG_PORT),
            "unix_socket_directories": str(workdir),
            "max_connections": "200",
            "fsync": "off",  # a throwaway cluster that is never crashed itself
            "full_page_writes": "off",
            # A server host cut off mid-transaction must not hold row locks for
            # hours (the kernel's default keepalive): what a deployment sets too.
            "idle_in_transaction_session_timeout": "5s",
            "tcp_keepalives_idle": "2",
            "tcp_keepalives_interval": "1",
            "tcp_keepalives_count": "3",
            "tcp_user_timeout": "5000",
        }
        argv = [str(PG_BIN / "postgres"), "-D", str(data)]
        for name, value in settings.items():
            argv += ["-c", f"{name}={value}"]
        with log_path.open("wb") as log:
            server.process = subprocess.Popen(
                host.command("runuser", "-u", "postgres", "--", *argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            wait_for_port(clients, host.address, PG_PORT, 30)
        except RuntimeError:
            server.stop()
            raise RuntimeError(f"PostgreSQL did not start:\n{log_path.read_text()}") from None
        return server

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@{self.host.address}:{PG_PORT}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@{self.host.address}:{PG_PORT}/{database}"

    def stop(self) -> None:
        if self.process is not None:
            # The postmaster is a child of runuser, both ours; fast shutdown via its PID.
            postmaster = _postmaster_pid(self.workdir / "data")
            if postmaster is not None and postmaster in _descendants(self.process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(postmaster, signal.SIGINT)
                wait_until(lambda: not is_running(postmaster), STOP_TIMEOUT_S)
            _stop(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _postmaster_pid(data: Path) -> int | None:
    try:
        return int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in child_pids(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass
class SeaweedHost:
    """SeaweedFS (`weed mini`: master, volume, filer, S3) in `host`'s namespace."""

    host: Host
    workdir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, host: Host, clients: NamespaceThreads, log_dir: Path) -> SeaweedHost:
        workdir = Path(tempfile.mkdtemp(prefix="js-multihost-weed-"))
        config = write_s3_config(workdir / "s3.json", S3_ACCESS_KEY, S3_SECRET_KEY)
        args = weed_mini_args(str(WEED), workdir, host.address, config, S3_BUCKET)
        log_path = log_dir / "seaweedfs.log"
        server = cls(host, workdir, log_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["GOMEMLIMIT"] = "768MiB"
        with log_path.open("wb") as log:
            server.process = subprocess.Popen(
                host.command(*args),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        try:
            wait_for_port(clients, host.address, S3_PORT, 60)
            wait_until(lambda: clients.run(server._bucket_ready), 30, interval=0.2)
        except RuntimeError:
            server.stop()
            raise RuntimeError(f"SeaweedFS did not start:\n{log_path.read_text()}") from None
        return server

    def _bucket_ready(self) -> bool:
        # An unsigned request is refused (403) by a live S3 gateway: enough to know it serves.
        try:
            return httpx.get(f"{self.endpoint}/{S3_BUCKET}", timeout=2).status_code in (403, 200)
        except httpx.TransportError:
            return False

    @property
    def endpoint(self) -> str:
        return f"http://{self.host.address}:{S3_PORT}"

    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class StorageHost:
    """One `juststorage serve` in its own namespace, listening on its address."""

    host: Host
    env: dict[str, str]
    log_path: Path
    port: int = 8080
    process: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def url(self) -> str:
        return f"http://{self.host.address}:{self.port}"

    def launch(self) -> None:
        """Start the process (returns at once; `wait_healthy` waits for it)."""
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start {self.starts} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.host.command(
                    str(JUSTSTORAGE), "serve", "--host", self.host.address, "--port", str(self.port)
                ),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait_healthy(self, clients: NamespaceThreads, timeout: float = 30.0) -> None:
        process = self.process
        assert process is not None

        def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {process.returncode}:\n{self.log()}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        if not wait_until(lambda: clients.run(healthy), timeout, interval=0.1):
            raise RuntimeError(f"{self.name} not healthy after {timeout}s:\n{self.log()}")

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """`juststorage <args>` in this host's namespace with its settings (and `env`)."""
        return subprocess.run(
            self.host.command(str(JUSTSTORAGE), *args),
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def cli_popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.host.command(str(JUSTSTORAGE), *args),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )

    def kill9(self) -> None:
        """SIGKILL the server and its workers, by the PIDs we started: a host crash."""
        process = self.process
        assert process is not None
        children = child_pids(process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.kill()  # the main process first: it would respawn a killed worker
        for pid in children:
            if runs_program(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT_S)
        wait_until(lambda: not any(is_running(pid) for pid in children), STOP_TIMEOUT_S)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        children = child_pids(process.pid)
        _stop(process)
        for pid in children:
            if runs_program(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")[-6000:]
        except OSError:
            return ""


def stop_all(hosts: list[StorageHost]) -> None:
    """Stop several hosts at once (each shutdown waits for its requests to drain)."""
    with ThreadPoolExecutor(max_workers=len(hosts) or 1) as pool:
        list(pool.map(StorageHost.stop, hosts))


def wait_all(hosts: list[StorageHost], clients: NamespaceThreads) -> None:
    deadline = time.monotonic() + 30
    for host in hosts:
        host.wait_healthy(clients, max(1.0, deadline - time.monotonic()))
