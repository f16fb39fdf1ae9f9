"""Concurrent clients for the multi-host test, bounded in count and in time.

Each worker runs on a thread of the client namespace. It uploads fresh content to
one host (round robin; on a connection failure it moves on to the next host and
leaves the failed one out for a moment, as a load balancer's passive health check
would), and every acknowledged upload (201) is read back at once
from a *different* host: read-after-write across hosts. Every acknowledgement is
kept for the final check (`verify`): download by id + SHA-256.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
from mh_hosts import API_KEY
from mh_netns import NamespaceThreads

TENANT = "mh"
NAMESPACE = "load"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
EJECT_SECONDS = 5.0  # a host that just failed is tried last for this long
# Short enough to notice a host cut off (no answer ever comes) within a test's load.
TIMEOUT = httpx.Timeout(connect=1.0, read=5.0, write=5.0, pool=2.0)
# For loads where no host is cut off: a slow fsync on a busy machine is not an error.
PATIENT = httpx.Timeout(60.0, connect=5.0)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Ack:
    """An upload the service acknowledged (201): it must never be lost."""

    object_id: str
    key: str
    sha256: str
    size: int
    writer: str
    at: float  # when the request was sent (time.time())
    seconds: float  # how long it took until acknowledged


@dataclass
class Results:
    acks: list[Ack] = field(default_factory=list)
    # (writer, reader, key, what went wrong): a read-after-write that did not hold
    violations: list[tuple[str, str, str, str]] = field(default_factory=list)
    cross_host_reads: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # "<host> <kind>"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acks_after(self, moment: float) -> list[Ack]:
        """Acknowledged uploads whose request was sent after `moment`."""
        with self.lock:
            return [a for a in self.acks if a.at > moment]


def upload(
    client: httpx.Client,
    url: str,
    key: str,
    data: bytes,
    tenant: str = TENANT,
    timeout: httpx.Timeout = TIMEOUT,
) -> httpx.Response:
    headers = {**AUTH, "X-Tenant": tenant, "X-Namespace": NAMESPACE, "X-Key": key}
    return client.post(f"{url}/v1/objects", headers=headers, content=data, timeout=timeout)


def download(
    client: httpx.Client,
    url: str,
    object_id: str,
    tenant: str = TENANT,
    timeout: httpx.Timeout = TIMEOUT,
) -> httpx.Response:
    headers = {**AUTH, "X-Tenant": tenant}
    return client.get(f"{url}/v1/objects/{object_id}", headers=headers, timeout=timeout)


class Load:
    """`workers` clients writing and cross-reading until `stop()`, a count or a deadline."""

    def __init__(
        self,
        netns: str,
        urls: dict[str, str],
        *,
        workers: int,
        max_uploads: int,
        max_seconds: float,
        sizes: Sequence[int] = (1024, 4096, 16384, 65536),
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.threads = NamespaceThreads(netns, workers)
        self.urls = urls
        self.results = Results()
        self._stop = threading.Event()
        self._budget = itertools.count()
        self._max_uploads = max_uploads
        self._deadline = time.monotonic() + max_seconds
        self._sizes = sizes
        self._timeout = timeout
        self._down_until: dict[str, float] = {}
        self._futures = [self.threads.submit(self._worker, n) for n in range(workers)]

    def _more(self) -> bool:
        return (
            not self._stop.is_set()
            and time.monotonic() < self._deadline
            and next(self._budget) < self._max_uploads
        )

    def _worker(self, number: int) -> None:
        names = sorted(self.urls)
        with httpx.Client(trust_env=False) as client:
            for attempt in itertools.count():
                if not self._more():
                    return
                writer = names[(number + attempt) % len(names)]
                data = os.urandom(self._sizes[attempt % len(self._sizes)])
                key = f"w{number}/{attempt}"
                acked = self._upload_somewhere(client, names, writer, key, data)
                if acked is None:
                    continue
                self._read_elsewhere(client, names, acked, data)

    def _in_turn(
        self, names: list[str], first: str, *, other_than_first: bool = False
    ) -> list[str]:
        """Hosts from `first` on, without those that failed lately (a load balancer's
        choice); if every one failed lately, all of them (for uploads: keep trying)."""
        start = names.index(first)
        order = [names[(start + n) % len(names)] for n in range(len(names))]
        if other_than_first:
            order = order[1:]
        now = time.monotonic()
        with self.results.lock:
            healthy = [name for name in order if self._down_until.get(name, 0.0) <= now]
        return healthy if healthy or other_than_first else order

    def _upload_somewhere(
        self, client: httpx.Client, names: list[str], first: str, key: str, data: bytes
    ) -> Ack | None:
        for writer in self._in_turn(names, first):
            sent_at, started = time.time(), time.monotonic()
            try:
                response = upload(
                    client, self.urls[writer], f"{key}@{writer}", data, timeout=self._timeout
                )
            except httpx.TransportError as exc:
                self._error(writer, type(exc).__name__)
                continue
            if response.status_code != 201:
                self._error(writer, str(response.status_code))
                continue
            body = response.json()
            assert body["content_hash"] == f"sha256:{sha256_hex(data)}", body
            took = time.monotonic() - started
            ack = Ack(body["id"], body["key"], sha256_hex(data), len(data), writer, sent_at, took)
            with self.results.lock:
                self.results.acks.append(ack)
            return ack
        return None

    def _read_elsewhere(
        self, client: httpx.Client, names: list[str], ack: Ack, data: bytes
    ) -> None:
        for reader in self._in_turn(names, ack.writer, other_than_first=True):
            try:
                response = download(client, self.urls[reader], ack.object_id, timeout=self._timeout)
            except httpx.TransportError as exc:
                self._error(reader, type(exc).__name__)
                continue  # that host is unreachable: try the next one
            if response.status_code == 503:
                self._error(reader, "503")
                continue
            with self.results.lock:
                self.results.cross_host_reads += 1
                if response.status_code != 200:
                    self.results.violations.append(
                        (ack.writer, reader, ack.key, f"HTTP {response.status_code}")
                    )
                elif sha256_hex(response.content) != ack.sha256:
                    self.results.violations.append((ack.writer, reader, ack.key, "bytes differ"))
            return

    def _error(self, host: str, kind: str) -> None:
        with self.results.lock:
            self.results.errors[f"{host} {kind}"] += 1
            self._down_until[host] = time.monotonic() + EJECT_SECONDS

    def wait_for_acks(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.results.acks) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.results.acks)} acks in {timeout}s")
            if all(f.done() for f in self._futures):
                break
            time.sleep(0.02)

    def stop(self) -> Results:
        self._stop.set()
        try:
            for future in self._futures:
                future.result(timeout=60)  # re-raises a worker's assertion
        finally:
            self.threads.close()
        return self.results


def verify(threads: NamespaceThreads, url: str, acks: Sequence[Ack], workers: int = 4) -> list[str]:
    """Download every acknowledged object from `url`; the problems (should be none)."""

    def check(chunk: Sequence[Ack]) -> list[str]:
        problems = []
        with httpx.Client(trust_env=False) as client:
            for ack in chunk:
                response = download(client, url, ack.object_id)
                if response.status_code != 200:
                    problems.append(f"{ack.key}: HTTP {response.status_code} {response.text}")
                elif sha256_hex(response.content) != ack.sha256:
                    problems.append(f"{ack.key}: SHA-256 differs")
        return problems

    chunks = [acks[n::workers] for n in range(workers)]
    futures = [threads.submit(check, chunk) for chunk in chunks if chunk]
    return [p for f in futures for p in f.result(timeout=120)]


def poll(fn: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(interval)
    return fn()


class Phases:
    """When each step of a scenario happened (seconds from the start), for messages."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def mark(self, what: str) -> None:
        self.marks.append((what, time.monotonic() - self._start))

    def __str__(self) -> str:
        return ", ".join(f"{what} @{at:.1f}s" for what, at in self.marks)


def upload_one(url: str, key: str, data: bytes, timeout: float = 90.0) -> httpx.Response:
    """One upload with a fresh connection (call it on a client-namespace thread)."""
    headers = {**AUTH, "X-Tenant": TENANT, "X-Namespace": NAMESPACE, "X-Key": key}
    return httpx.post(f"{url}/v1/objects", headers=headers, content=data, timeout=timeout)
