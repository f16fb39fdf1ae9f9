"""Scrape-time collectors for what prometheus-client's multiprocess mode leaves out:
the processes' own figures (CPU, resident memory, open file descriptors) and the
build.

prometheus-client's ProcessCollector reports the process that answers the scrape
only, and its multiprocess exposition registers none. Here every live server
process is found by its files in the multiprocess directory (`*_<pid>.db`, one
set per process that counted anything) and read from /proc with that very
collector, each series labelled with its `pid`: one stuck or growing worker shows
as itself. Outside multiprocess mode, the one process is reported the same way.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_PID_FILE = re.compile(r"(?:counter|histogram|summary|gauge_[a-z]+)_(\d+)\.db")
_PROC = Path("/proc")


def _is_server_process(pid: int) -> bool:
    """Alive and a JustStorage process (a dead one's pid may have been reused)."""
    try:
        cmdline = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return b"juststorage" in cmdline


def server_pids(directory: Path | None) -> list[int]:
    """This process, and every live server process with files in `directory`."""
    pids = {os.getpid()}
    if directory is not None:
        for path in directory.glob("*.db"):
            match = _PID_FILE.fullmatch(path.name)
            if match:
                pids.add(int(match.group(1)))
    return sorted(pid for pid in pids if pid == os.getpid() or _is_server_process(pid))


class ProcessesCollector(Collector):
    """`process_*` metrics (CPU seconds, resident and virtual memory, open and max
    file descriptors, start time) of each live server process, labelled `pid`."""

    def __init__(self, multiprocess_dir: Path | None) -> None:
        self._directory = multiprocess_dir

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for pid in server_pids(self._directory):
            collector = ProcessCollector(pid=functools.partial(str, pid), registry=None)
            for family in collector.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type
                    )
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(families.values())

    def describe(self) -> Iterator[Metric]:
        return iter(())


def _installed_version() -> str:
    """The installed distribution's version (the package's own `__version__` is the
    entry points' to import: adapters stay below them)."""
    try:
        return importlib.metadata.version("juststorage")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


class BuildInfoCollector(Collector):
    """`just_storage_build_info{version, python_version} 1`."""

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            "just_storage_build_info",
            "Always 1; the labels name the running build.",
            labels=["version", "python_version"],
        )
        info.add_metric([_installed_version(), platform.python_version()], 1.0)
        yield info

    def describe(self) -> Iterator[Metric]:
        return iter(())
