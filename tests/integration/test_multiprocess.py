"""Three server processes, one database, one data directory.

Many concurrent clients upload (with overlapping content, so dedup, deletes and
GC with grace 0 race each other), read back from a *different* process, delete
and re-upload, for a bounded time. Then every acknowledged, undeleted object
must read back bit-exact from every process, reference counts must equal the
live objects of each blob, and fsck must be clean after a final GC pass.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from juststorage.testing import Server, run_cli, start
from support.db_query import refcount_drift, usage_drift

pytestmark = pytest.mark.e2e

PROCESSES = 3
CLIENTS = 12
DURATION_S = 8.0
# Each client does at least this many operations, however slow a loaded machine is,
# so the race always has material; HARD_LIMIT_S bounds the run.
MIN_OPERATIONS_PER_CLIENT = 10
HARD_LIMIT_S = 120.0
BOOTSTRAP_KEY = "multiprocess-test-key-0123456789"
TENANT, NAMESPACE = "mp", "race"
# A small pool of bodies: uploads collide on content all the time. Most are kept
# inline (at most 64 KiB, the default), three are files.
BODIES = [hashlib.sha256(str(i).encode()).digest() * (1 + i * 37) for i in range(12)]
BODIES += [hashlib.sha256(str(i).encode()).digest() * (2050 + i) for i in range(3)]


@dataclass
class Acked:
    id: str
    key: str
    sha256: str


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared' / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def servers(tmp_path: Path, database_url: str) -> Iterator[list[Server]]:
    data_dir = tmp_path / "shared"
    data_dir.mkdir(exist_ok=True)
    env = {
        "DATABASE_URL": database_url,
        "API_KEYS": f"{BOOTSTRAP_KEY}:*:admin",
        "JUSTSTORAGE_GC_INTERVAL_S": "0.3",
        "JUSTSTORAGE_GC_GRACE_S": "0",
    }
    started: list[Server] = []
    try:
        for _ in range(PROCESSES):
            started.append(start(tmp_path, env, data_dir=data_dir))
        yield started
    finally:
        for server in started:
            server.stop()


async def _client_loop(
    worker: int, servers: list[Server], acked: dict[str, Acked], deadline: float
) -> int:
    rng = random.Random(worker)
    headers = {"Authorization": f"Bearer {BOOTSTRAP_KEY}", "X-Tenant": TENANT}
    clients = [
        httpx.AsyncClient(base_url=s.url, headers=headers, timeout=30.0, trust_env=False)
        for s in servers
    ]
    operations = 0
    try:
        while time.monotonic() < deadline or operations < MIN_OPERATIONS_PER_CLIENT:
            assert time.monotonic() < deadline + HARD_LIMIT_S, f"client {worker} stalled"
            operations += 1
            writer, reader = rng.sample(range(len(clients)), 2)
            mine = [a for a in acked.values() if a.key.startswith(f"w{worker}-")]
            if mine and rng.random() < 0.35:
                victim = rng.choice(mine)
                response = await clients[writer].delete(f"/v1/objects/{victim.id}")
                assert response.status_code == 204, response.text
                del acked[victim.id]
                # Invisible at once, from every process.
                gone = await clients[reader].get(f"/v1/objects/{victim.id}")
                assert gone.status_code == 404
                continue
            body = rng.choice(BODIES)
            key = f"w{worker}-{rng.randrange(6)}"
            response = await clients[writer].post(
                "/v1/objects",
                headers={"X-Namespace": NAMESPACE, "X-Key": key},
                content=body,
            )
            assert response.status_code == 201, response.text
            created = response.json()
            acked[created["id"]] = Acked(created["id"], key, hashlib.sha256(body).hexdigest())
            # Read-after-write from a different process.
            read = await clients[reader].get(f"/v1/objects/{created['id']}")
            assert read.status_code == 200, read.text
            assert read.content == body
    finally:
        for client in clients:
            await client.aclose()
    return operations


async def _run_clients(servers: list[Server]) -> tuple[dict[str, Acked], int]:
    acked: dict[str, Acked] = {}
    deadline = time.monotonic() + DURATION_S
    counts = await asyncio.gather(
        *(_client_loop(i, servers, acked, deadline) for i in range(CLIENTS))
    )
    return acked, sum(counts)


def test_three_processes_share_one_store_without_losing_data(
    servers: list[Server], database_url: str
) -> None:
    acked, operations = asyncio.run(_run_clients(servers))
    assert operations >= CLIENTS * MIN_OPERATIONS_PER_CLIENT

    for server in servers:
        for item in acked.values():
            response = server.client.get(
                f"/v1/objects/{item.id}",
                headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}", "X-Tenant": TENANT},
            )
            assert response.status_code == 200, (server.port, item, response.text)
            assert hashlib.sha256(response.content).hexdigest() == item.sha256

    assert refcount_drift(database_url) == []
    assert usage_drift(database_url) == []

    env = servers[0].env
    gc = run_cli(["gc"], env)
    assert gc.returncode in (0, 1), gc.stderr  # 1: a server's own GC pass held the lease
    fsck = run_cli(["fsck"], env)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    listed = _list_all_versions(servers[1])
    assert listed == set(acked), (len(listed), len(acked), sorted(listed ^ set(acked))[:10])


def _list_all_versions(server: Server) -> set[str]:
    """The ids of every listed version, page by page (a fast run acks more than a page)."""
    ids: set[str] = set()
    params = {"tenant": TENANT, "namespace": NAMESPACE, "versions": "true", "limit": "1000"}
    while True:
        response = server.client.get(
            "/v1/objects", params=params, headers={"Authorization": f"Bearer {BOOTSTRAP_KEY}"}
        )
        assert response.status_code == 200, response.text
        page = response.json()
        ids.update(item["id"] for item in page["items"])
        if not page.get("next_cursor"):
            return ids
        params["cursor"] = page["next_cursor"]
