"""Prometheus instruments (`just_storage_*`) on a registry owned by one app instance.

Several server processes (`serve --workers N`) share one multiprocess directory
(prometheus-client's multiprocess mode, set up by `enable_multiprocess_metrics`
before the workers start): every process writes its counters and histograms to
its own memory-mapped file there, and a scrape answered by any process sums the
files of all of them. The object and byte gauges are not per process at all:
they are a census read at scrape time from the database's counter rows
(`census_counters`, kept by the transactions that change objects).

The per-request instruments (requests, their durations and times to first byte,
bytes up and down, dedup) count in plain values of this process first (`_Pending`)
and write them to the process's file once per turn of the event loop, so a request
costs a few dict updates instead of a locked, PID-checked write to the memory map
per value; a scrape writes this process's pending values before it reads the files.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal, cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from juststorage.adapters.process_metrics import BuildInfoCollector, ProcessesCollector
from juststorage.application.records import Census
from juststorage.application.scrub_records import ScrubPosition

_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_GC_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900)
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_MULTIPROC_FILE = re.compile(r"(counter|histogram|summary|gauge_[a-z]+)_\d+\.db")
# Where bytes failed their SHA-256: a client's declared digest (400 ChecksumMismatch),
# or bytes read back from storage that no longer hash to their record (data rot).
MismatchSource = Literal["upload", "stored"]


def enable_multiprocess_metrics(directory: Path) -> None:
    """Make every metric created from now on in this process (and in processes it
    forks or spawns) write to `directory`, emptied first.

    Call it in the parent before the server starts its workers. prometheus-client
    picks its value class when it is imported, which the CLI has already done, so
    the class is switched here too.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        # Files of an earlier run would be summed into this run's counters. Only
        # prometheus-client's own names: the directory may hold other files.
        if _MULTIPROC_FILE.fullmatch(stale.name):
            stale.unlink()
    os.environ[_MULTIPROC_ENV] = str(directory)
    values.ValueClass = cast(Callable[[], type], values.MultiProcessValue)()


def _forget_dead_processes(directory: Path) -> None:
    """Drop the live-gauge files of processes that are gone (a respawned worker's
    predecessor), as `multiprocess.mark_process_dead` would."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = path.stem.rpartition("_")[2]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            pass


class _CensusCollector(Collector):
    """Gauges taken at scrape time: the census of the database (objects, bytes),
    readiness, and the room left on each storage root."""

    def __init__(self) -> None:
        self.census: list[Census] = []
        self.ready: dict[str, bool] = {}
        self.disks: dict[str, tuple[int, int]] = {}
        self.corrupt_blobs: int | None = None
        self.scrub: ScrubPosition | None = None
        self.scrub_rate = 0.0

    def collect(self) -> Iterable[Metric]:
        objects = GaugeMetricFamily(
            "just_storage_objects_total",  # the SPEC's name, though it is a gauge
            "Object versions by state (from the database).",
            labels=["namespace", "tenant", "status"],
        )
        stored = GaugeMetricFamily(
            "just_storage_storage_bytes",
            "Logical bytes of committed versions (from the database).",
            labels=["storage_class", "namespace"],
        )
        by_state: dict[tuple[str, str, str], float] = {}
        by_class: dict[tuple[str, str], float] = {}
        for row in self.census:
            key = (row.namespace, row.tenant_id, row.state.value)
            by_state[key] = by_state.get(key, 0) + row.objects
            if row.state.value == "COMMITTED":
                where = (row.storage_class.value, row.namespace)
                by_class[where] = by_class.get(where, 0) + row.size_bytes
        for labels, count in sorted(by_state.items()):
            objects.add_metric(list(labels), count)
        for labels_, size in sorted(by_class.items()):
            stored.add_metric(list(labels_), size)
        yield objects
        yield stored
        if self.ready:
            ready = GaugeMetricFamily(
                "just_storage_ready",
                "1 while the check of /ready passes (database, hot, cold), else 0.",
                labels=["check"],
            )
            for check, ok in sorted(self.ready.items()):
                ready.add_metric([check], 1.0 if ok else 0.0)
            yield ready
        if self.disks:
            free = GaugeMetricFamily(
                "just_storage_root_free_bytes",
                "Bytes available to the service on the file system of each storage root.",
                labels=["storage_class"],
            )
            capacity = GaugeMetricFamily(
                "just_storage_root_size_bytes",
                "Size of the file system of each storage root.",
                labels=["storage_class"],
            )
            for storage_class, (available, total) in sorted(self.disks.items()):
                free.add_metric([storage_class], available)
                capacity.add_metric([storage_class], total)
            yield free
            yield capacity
        yield from self._scrub()

    def _scrub(self) -> Iterator[Metric]:
        """The scrub's state from the database: the same in every process's scrape."""
        if self.corrupt_blobs is None:
            return
        yield GaugeMetricFamily(
            "just_storage_scrub_corrupt_blobs",
            "Blobs known corrupt or missing now (from the database; 0 once repaired).",
            value=self.corrupt_blobs,
        )
        yield GaugeMetricFamily(
            "just_storage_scrub_rate_bytes_per_second",
            "The scrub rate this process is set to (JUSTSTORAGE_SCRUB_BYTES_PER_S; 0: off).",
            value=self.scrub_rate,
        )
        position = self.scrub
        yield GaugeMetricFamily(
            "just_storage_scrub_passes_completed",
            "Whole scrub passes over every blob completed (from the database).",
            value=position.passes_completed if position else 0,
        )
        yield GaugeMetricFamily(
            "just_storage_scrub_pass_bytes",
            "Bytes of blob rows checked so far in the scrub pass under way.",
            value=position.bytes_done if position else 0,
        )
        seconds = position.last_pass_seconds if position else None
        if seconds is not None and position is not None:
            yield GaugeMetricFamily(
                "just_storage_scrub_last_pass_seconds",
                "Duration of the last whole scrub pass.",
                value=seconds,
            )
            assert position.last_pass_ended_at is not None
            yield GaugeMetricFamily(
                "just_storage_scrub_last_pass_end_timestamp_seconds",
                "When the last whole scrub pass ended (Unix time).",
                value=position.last_pass_ended_at.timestamp(),
            )

    def describe(self) -> Iterator[Metric]:
        return iter(())


class _Pending:
    """Counts of this process not yet added to its prometheus-client values: written
    by `flush()`, which the first count after a flush schedules on the running event
    loop (or runs at once outside one). Counted from the event loop's thread only (every
    caller is: request handling, responses); a thread without a loop writes at once."""

    def __init__(
        self,
        requests: Counter,
        durations: Histogram,
        first_bytes: Histogram,
        buckets: tuple[float, ...],
    ) -> None:
        self._requests = requests
        self._durations = durations
        self._first_bytes = first_bytes
        self._bounds = buckets  # upper bounds, ascending; +Inf after the last (both)
        self.requests: dict[tuple[str, str, str], int] = {}
        # (method, namespace) -> [count per bucket, ..., count over the last, sum]
        self.durations: dict[tuple[str, str], list[float]] = {}
        self.first_bytes: dict[tuple[str, str], list[float]] = {}
        self.counters: dict[Counter, float] = {}
        self._scheduled = False

    def request(
        self, method: str, status: str, namespace: str, seconds: float, first_byte: float | None
    ) -> None:
        key = (method, status, namespace)
        self.requests[key] = self.requests.get(key, 0) + 1
        self._observe(self.durations, (method, namespace), seconds)
        if first_byte is not None:
            self._observe(self.first_bytes, (method, namespace), first_byte)
        self._schedule()

    def _observe(
        self, table: dict[tuple[str, str], list[float]], key: tuple[str, str], seconds: float
    ) -> None:
        slots = table.get(key)
        if slots is None:
            slots = table[key] = [0.0] * (len(self._bounds) + 2)
        slots[bisect.bisect_left(self._bounds, seconds)] += 1
        slots[-1] += seconds

    def add(self, counter: Counter, amount: float) -> None:
        self.counters[counter] = self.counters.get(counter, 0.0) + amount
        self._schedule()

    def _schedule(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()  # no loop in this thread: at once
            return
        self._scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Add every pending count to the instruments (their multiprocess files)."""
        self._scheduled = False
        requests, self.requests = self.requests, {}
        durations, self.durations = self.durations, {}
        first_bytes, self.first_bytes = self.first_bytes, {}
        counters, self.counters = self.counters, {}
        for labels, count in requests.items():
            self._requests.labels(*labels).inc(count)
        _add_to_histogram(self._durations, durations)
        _add_to_histogram(self._first_bytes, first_bytes)
        for counter, amount in counters.items():
            counter.inc(amount)


def _add_to_histogram(histogram: Histogram, table: dict[tuple[str, str], list[float]]) -> None:
    for labels, slots in table.items():
        child = histogram.labels(*labels)
        # A histogram's values: one per bucket (not cumulative) and the sum, as
        # `Histogram.observe` adds to them.
        for index, observed in enumerate(slots[:-1]):
            if observed:
                child._buckets[index].inc(observed)
        child._sum.inc(slots[-1])


class _BufferedCounter:
    """A counter without labels whose `inc` goes through `_Pending`."""

    def __init__(self, counter: Counter, pending: _Pending) -> None:
        self.counter = counter
        self._pending = pending

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self._pending.add(self.counter, amount)


class Metrics:
    """Every metric the service exports. Label values are bounded: methods, statuses,
    names of tenants and namespaces that hold objects; never keys, ids or paths."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        # `_created` series only add noise to every counter (the function is untyped).
        cast(Callable[[], None], disable_created_metrics)()
        if multiprocess_dir is not None and not getattr(values.ValueClass, "_multiprocess", False):
            raise RuntimeError("call enable_multiprocess_metrics() before creating Metrics")
        self.multiprocess_dir = multiprocess_dir
        if multiprocess_dir is not None:
            multiprocess_dir.mkdir(parents=True, exist_ok=True)
        r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "just_storage_requests",
            "HTTP requests answered.",
            ["method", "status", "namespace"],
            registry=r,
        )
        self.request_duration = Histogram(
            "just_storage_request_duration_seconds",
            "Time to answer a request.",
            ["method", "namespace"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        # The latency of a download or a list, whatever its size: the request's
        # duration grows with the bytes sent, its first byte does not.
        self.time_to_first_byte = Histogram(
            "just_storage_time_to_first_byte_seconds",
            "Time from a request's arrival to the start of its answer (status and headers).",
            ["method", "namespace"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.checksum_mismatches = Counter(
            "just_storage_checksum_mismatches",
            "Bytes that did not match their SHA-256: an upload's declared digest (upload),"
            " or stored bytes read back (stored: data rot).",
            ["source"],
            registry=r,
        )
        for source in ("upload", "stored"):
            # At 0 from the start: an alert's increase() misses a series' first sample.
            self.checksum_mismatches.labels(source)
        # The S3 gateway's requests by operation (they count in `requests` too).
        self.s3_requests = Counter(
            "just_storage_s3_requests",
            "S3 gateway requests answered.",
            ["operation", "status"],
            registry=r,
        )
        # Bytes re-hashed by the scrub (SPEC §8.9), counted as they are read.
        self.scrub_bytes = Counter(
            "just_storage_scrub_bytes", "Blob bytes read and re-hashed by the scrub.", registry=r
        )
        self.gc_runs = Counter("just_storage_gc_runs", "GC passes run.", registry=r)
        self.gc_deleted_blobs = Counter(
            "just_storage_gc_deleted_blobs", "Blob files removed by GC.", registry=r
        )
        self.gc_duration = Histogram(
            "just_storage_gc_duration_seconds",
            "Time of one GC pass.",
            buckets=_GC_BUCKETS,
            registry=r,
        )
        self._pending = _Pending(
            self.requests, self.request_duration, self.time_to_first_byte, _DURATION_BUCKETS
        )
        self.uploaded_bytes = _BufferedCounter(
            Counter(
                "just_storage_uploaded_bytes", "Bytes received in committed uploads.", registry=r
            ),
            self._pending,
        )
        self.downloaded_bytes = _BufferedCounter(
            Counter("just_storage_downloaded_bytes", "Bytes sent in object downloads.", registry=r),
            self._pending,
        )
        self.dedup_hits = _BufferedCounter(
            Counter(
                "just_storage_dedup_hits", "Uploads whose bytes were already stored.", registry=r
            ),
            self._pending,
        )
        self.dedup_bytes_saved = _BufferedCounter(
            Counter(
                "just_storage_dedup_bytes_saved",
                "Bytes not stored again thanks to dedup.",
                registry=r,
            ),
            self._pending,
        )
        self.throttled = Counter(
            "just_storage_throttled_requests", "Requests answered 429.", ["tenant"], registry=r
        )
        # Sampled every second by each process; summed over the live ones.
        self.db_connections_in_use = Gauge(
            "just_storage_db_connections_in_use",
            "Database connections checked out of the pools (all processes).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.db_connections_max = Gauge(
            "just_storage_db_connections_max",
            "Size limit of the database connection pools (all processes).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.uploads_in_flight = Gauge(
            "just_storage_uploads_in_flight",
            "Uploads being received (all processes).",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._census = _CensusCollector()
        if multiprocess_dir is None:
            self.registry = r
        else:
            # Exposition sums the files of every process; the instruments' own
            # registry would show only this one.
            self.registry = CollectorRegistry(auto_describe=True)
            cast(Callable[..., object], MultiProcessCollector)(
                self.registry, path=str(multiprocess_dir)
            )
        self.registry.register(self._census)
        # Multiprocess mode registers no process collector: this one reads every
        # live server process.
        self.registry.register(ProcessesCollector(multiprocess_dir))
        self.registry.register(BuildInfoCollector())

    def observe_request(
        self, method: str, status: int, namespace: str, seconds: float, first_byte: float | None
    ) -> None:
        """One answered HTTP request: counted by status, timed to its end and to the
        start of its answer (`first_byte`; None when no answer started)."""
        self._pending.request(method, str(status), namespace, seconds, first_byte)

    def observe_checksum_mismatch(self, source: MismatchSource) -> None:
        """Bytes that failed their SHA-256 (rare: counted at once)."""
        self.checksum_mismatches.labels(source).inc()

    def observe_s3_request(self, operation: str, status: int) -> None:
        """One answered S3 gateway request, by its S3 operation."""
        self.s3_requests.labels(operation, str(status)).inc()

    def observe_census(self, census: list[Census]) -> None:
        """Replace the object and byte gauges with a fresh count from the database."""
        self._census.census = list(census)

    def observe_scrub(
        self, corrupt_blobs: int, position: ScrubPosition | None, rate: float = 0.0
    ) -> None:
        """Replace the scrub gauges with a fresh read of the database (and the rate
        this process scrubs at, set or not, for the stalled-scrub alert)."""
        self._census.corrupt_blobs = corrupt_blobs
        self._census.scrub = position
        self._census.scrub_rate = rate

    def observe_readiness(self, checks: dict[str, str]) -> None:
        """The checks of /ready ("ok" or why not) as 1/0 gauges."""
        self._census.ready = {name: result == "ok" for name, result in checks.items()}

    def observe_disk(self, storage_class: str, available_bytes: int, total_bytes: int) -> None:
        self._census.disks[storage_class] = (available_bytes, total_bytes)

    def flush(self) -> None:
        """Write this process's pending counts to its instruments now."""
        self._pending.flush()

    def render(self) -> bytes:
        self._pending.flush()
        if self.multiprocess_dir is not None:
            _forget_dead_processes(self.multiprocess_dir)
        return generate_latest(self.registry)
