"""Memory and CPU of process trees, and of the whole machine, read from /proc."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Sequence

from juststorage.testing import child_pids

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (bounded depth: a server tree is shallow)."""
    found, frontier = [pid], [pid]
    for _ in range(4):
        frontier = [c for p in frontier for c in child_pids(p)]
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

    def __init__(self, pid: int, interval: float = 0.02, max_seconds: float = 600.0) -> None:
        self.pid = pid
        self.interval = interval
        self.max_seconds = max_seconds
        self.peak_by_pid: dict[int, int] = {}
        self.peak_sum_kib = 0
        self.baseline_by_pid: dict[int, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[int, int]:
        return {p: status_kib(p, "VmRSS") for p in tree(self.pid)}

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds  # bounded even if never stopped
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


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def children_cpu() -> float:
    """CPU seconds of every child this process has waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ours_cpu_seconds() -> float:
    """This process plus every child it has waited for (servers, curl, granian)."""
    return time.process_time() + children_cpu()
