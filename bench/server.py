"""Start and stop a server process by PID, and watch its memory and CPU through /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Direct children of `pid` (all its threads), from /proc."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(x) for x in f.read().split()]
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (bounded depth: a server tree is shallow)."""
    found, frontier = [pid], [pid]
    for _ in range(4):
        frontier = [c for p in frontier for c in children(p)]
        if not frontier:
            break
        found += frontier
    return found


def status_kib(pid: int, field: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/<pid>/status in KiB, or 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of these processes (all threads), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except OSError:
            pass
    return total / CLK_TCK


class RssSampler:
    """Samples VmRSS of a process tree every `interval` s in a thread, while in `with`."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_by_pid: dict[int, int] = {}
        self.peak_sum_kib = 0
        self.baseline_by_pid: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[int, int]:
        return {p: status_kib(p, "VmRSS") for p in tree(self.pid)}

    def _run(self) -> None:
        deadline = time.monotonic() + 600  # bounded even if never stopped
        while not self._stop.is_set() and time.monotonic() < deadline:
            rss = self._sample()
            self.samples += 1
            for p, kib in rss.items():
                self.peak_by_pid[p] = max(self.peak_by_pid.get(p, 0), kib)
            self.peak_sum_kib = max(self.peak_sum_kib, sum(rss.values()))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.baseline_by_pid = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    @property
    def worker_peak_mib(self) -> float:
        """Peak of the largest process other than the granian main process (the worker)."""
        workers = [kib for p, kib in self.peak_by_pid.items() if p != self.pid]
        return max(workers or [self.peak_by_pid.get(self.pid, 0)]) / 1024

    @property
    def worker_baseline_mib(self) -> float:
        workers = [kib for p, kib in self.baseline_by_pid.items() if p != self.pid]
        return max(workers or [self.baseline_by_pid.get(self.pid, 0)]) / 1024

    @property
    def tree_peak_mib(self) -> float:
        return self.peak_sum_kib / 1024


def _is_ours(pid: int, exe: str) -> bool:
    """Still a process of that program (guards against a reused PID)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return False
    return os.path.basename(exe).encode() in cmdline or b"granian" in cmdline


class Server:
    """A process we start; stopped by its PID (SIGTERM, then SIGKILL of the recorded tree)."""

    def __init__(self, argv: list[str], env: dict[str, str], port: int, log_path: Path) -> None:
        self.argv, self.env, self.port, self.log_path = argv, env, port, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, health_path: str = "/health", timeout_s: float = 30.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + health_path, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not healthy within {timeout_s} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pids = tree(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for p in pids:
                if p == self.proc.pid or _is_ours(p, self.argv[0]):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
            self.proc.wait(timeout=5)
        # workers end with their parent; make sure none of the recorded ones is left
        deadline = time.monotonic() + 5
        for p in pids[1:]:
            while time.monotonic() < deadline and Path(f"/proc/{p}").exists():
                time.sleep(0.05)
            if _is_ours(p, self.argv[0]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"
