"""Who owns an upload or a lease, and whether that owner is certainly dead.

An owner id is `<boot id>/<pid namespace>:<pid>:<start time>`. Another process
on the same machine and in the same PID namespace can tell for sure whether the
owner still runs (its PID gone, or reused by a process that started later).
Owners elsewhere are never declared dead here; GC falls back on their age.
"""

from __future__ import annotations

import os
from pathlib import Path


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "unknown"


def _start_time(pid: int) -> str | None:
    """The start time (clock ticks since boot) of a running process; None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return None if fields[0] == "Z" else fields[19]


def _machine() -> str:
    boot = _read("/proc/sys/kernel/random/boot_id")
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = "unknown"
    return f"{boot}/{namespace}"


class LocalProcessLiveness:
    """Identity of this process, and liveness checks of owners on this machine."""

    def __init__(self) -> None:
        self._machine = _machine()
        pid = os.getpid()
        self._identity = f"{self._machine}:{pid}:{_start_time(pid)}"

    def identity(self) -> str:
        return self._identity

    def is_dead(self, owner: str) -> bool:
        parts = owner.rsplit(":", 2)
        if len(parts) != 3:
            return False
        machine, pid_text, started = parts
        if machine != self._machine or "unknown" in machine or not pid_text.isdigit():
            return False  # not ours to judge: the caller relies on age instead
        return _start_time(int(pid_text)) != started
