"""A tenant's request rate holds across server processes sharing one database (SPEC
§4): three `juststorage serve` processes together admit the configured rate, within
10 %, not three times it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from juststorage.testing import Server, start

pytestmark = pytest.mark.e2e

PROCESSES = 3
CLIENTS = 6
DURATION_S = 3.0
RATE = 40.0  # requests a second; the burst is as many
KEY = "shared-limits-test-key-0123456789"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[Server]]:
    data_dir = tmp_path / "shared"
    data_dir.mkdir()
    if request.param == "sqlite":
        database_url = f"sqlite:///{data_dir / 'meta.db'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
    env = {
        "DATABASE_URL": database_url,
        "API_KEYS": f"{KEY}:*:admin",
        "JUSTSTORAGE_RATE_LIMIT_RPS": str(RATE),
        "JUSTSTORAGE_GC_INTERVAL_S": "0",
    }
    started: list[Server] = []
    try:
        for _ in range(PROCESSES):
            started.append(start(tmp_path, env, data_dir=data_dir))
        yield started
    finally:
        for server in started:
            server.stop()


def test_three_processes_admit_the_tenant_rate_once(servers: list[Server]) -> None:
    answers: list[tuple[float, int]] = []  # (when it came, status)
    lock = threading.Lock()
    deadline = time.monotonic() + DURATION_S

    def hammer(worker: int) -> None:
        clients = [
            httpx.Client(
                base_url=s.url,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=10,
                trust_env=False,
            )
            for s in servers
        ]
        try:
            turn = worker
            while time.monotonic() < deadline:
                client = clients[turn % len(clients)]  # every process in turn
                turn += 1
                status = client.get("/v1/usage", params={"tenant": "rated"}).status_code
                with lock:
                    answers.append((time.monotonic(), status))
        finally:
            for client in clients:
                client.close()

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_S + 20)
    statuses = [status for _, status in answers]
    admitted = statuses.count(200)
    # The bucket is created full by the first request admitted (connections and the
    # servers' first database connections take a while before it), then refills.
    first = min(when for when, status in answers if status == 200)
    expected = RATE + RATE * (time.monotonic() - first)
    assert set(statuses) <= {200, 429}, set(statuses)
    assert statuses.count(429) > admitted, "the clients must ask for more than the rate"
    assert abs(admitted - expected) <= 0.1 * expected, (admitted, expected, len(statuses))
