"""Crash tests: kill -9 the real server at random moments, restart, verify.

Each round starts the server on the same data, runs concurrent uploads (0 B to a
few MiB around the inline threshold, with and without a declared length, duplicate
contents included, in both classes), deletes and GC passes, and SIGKILLs every
server process after a random delay. At the end:
- every upload that got 201, and was not deleted, reads back bit-exact;
- every visible object is one we sent (acknowledged, or in flight at a kill) and
  its bytes are exactly what was sent;
- after a GC pass with grace 0, fsck is clean and no temp file or orphan blob is left:
  the blobs of at most INLINE_MAX_BYTES are inline rows, the others files.
The seed is printed; replay with JUSTSTORAGE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from juststorage.testing import Server, run_cli, start
from support.db_query import query, refcount_drift, usage_drift

pytestmark = pytest.mark.e2e

KILL_POINTS = 20
CLIENTS = 6
KEY = "crash-test-key-abcdefghijklmnopqrstuvwxyz"
TENANT, NAMESPACE = "crash", "kill9"
AUTH = {"Authorization": f"Bearer {KEY}"}
INLINE_MAX_BYTES = 65_536  # the default: blobs up to it are kept in the database
SIZES = [0, 1, 4096, INLINE_MAX_BYTES, INLINE_MAX_BYTES + 1, 1_000_003, 3 * 1024 * 1024]


@dataclass
class Ledger:
    """What the clients know: acknowledged uploads and deletes, and what was in flight."""

    sent: dict[str, bytes] = field(default_factory=dict)  # sha256 hex -> body
    acked: dict[str, str] = field(default_factory=dict)  # object id -> sha256 hex
    deleted: set[str] = field(default_factory=set)
    uncertain_deletes: set[str] = field(default_factory=set)


def _body(rng: random.Random, pool: list[bytes]) -> bytes:
    if pool and rng.random() < 0.3:
        return rng.choice(pool)  # a duplicate: dedup races delete and GC
    size = rng.choice(SIZES)
    return rng.randbytes(size)


async def _chunked(body: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, max(len(body), 1), 16_384):
        yield body[offset : offset + 16_384]


async def _client(rng: random.Random, url: str, ledger: Ledger, pool: list[bytes]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10.0, trust_env=False) as client:
        while True:
            settled = ledger.deleted | ledger.uncertain_deletes
            live = [i for i in ledger.acked if i not in settled]
            if live and rng.random() < 0.25:
                victim = rng.choice(live)
                # Until an answer arrives the outcome is unknown (a kill may cut it off).
                ledger.uncertain_deletes.add(victim)
                response = await client.delete(
                    f"/v1/objects/{victim}", headers={**AUTH, "X-Tenant": TENANT}
                )
                assert response.status_code in (204, 404), response.text
                # 204, or 404 because another client's delete got there first: gone either way.
                ledger.deleted.add(victim)
                ledger.uncertain_deletes.discard(victim)
                continue
            body = _body(rng, pool)
            digest = hashlib.sha256(body).hexdigest()
            ledger.sent[digest] = body
            pool.append(body)
            # Sometimes chunked, no length declared: the server decides inline or file
            # as the bytes arrive.
            content = _chunked(body) if rng.random() < 0.3 else body
            response = await client.post(
                "/v1/objects",
                headers={
                    **AUTH,
                    "X-Tenant": TENANT,
                    "X-Namespace": NAMESPACE,
                    "X-Key": f"k{rng.randrange(50)}",
                    "X-Storage-Class": rng.choice(["hot", "cold"]),
                },
                content=content,
            )
            if response.status_code == 201:
                created = response.json()
                assert created["content_hash"] == f"sha256:{digest}"
                ledger.acked[created["id"]] = digest


async def _round(seed: int, url: str, ledger: Ledger, kill_after: float, server: Server) -> None:
    rng = random.Random(seed)
    pool: list[bytes] = []
    tasks = [
        asyncio.create_task(_client(random.Random(rng.random()), url, ledger, pool))
        for _ in range(CLIENTS)
    ]
    # The random moment counts from the round's first acknowledgement, so a slow,
    # loaded machine still kills mid-traffic rather than before any (bounded wait).
    acked_before, deadline = len(ledger.acked), time.monotonic() + 10
    while len(ledger.acked) == acked_before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    await asyncio.sleep(kill_after)
    server.kill9()  # every process of the server, by PID, mid-flight
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        # Connection errors are the expected effect of the kill; anything else is a bug.
        if isinstance(result, BaseException) and not isinstance(result, httpx.TransportError):
            raise result


def _server_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "API_KEYS": f"{KEY}:*:admin",
        "JUSTSTORAGE_GC_INTERVAL_S": "0.2",
        "JUSTSTORAGE_GC_GRACE_S": "0",
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def test_kill9_at_random_points_loses_nothing_acknowledged(
    tmp_path: Path, database_url: str
) -> None:
    seed = int(
        os.environ.get("JUSTSTORAGE_CRASH_SEED", str(random.SystemRandom().randrange(10**9)))
    )
    print(f"crash test seed: {seed} (replay: JUSTSTORAGE_CRASH_SEED={seed})")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = _server_env(database_url)
    ledger = Ledger()
    started = time.monotonic()
    for point in range(KILL_POINTS):
        server = start(tmp_path, env, data_dir=data_dir)
        asyncio.run(
            _round(rng.randrange(10**9), server.url, ledger, rng.uniform(0.05, 0.6), server)
        )
        # A guard against a hang, not a speed test: rounds take 2-12 s each, up to
        # 30 s when a slow machine restarts the server on PostgreSQL.
        assert time.monotonic() - started < 900, f"too slow at kill point {point}"

    server = start(tmp_path, {**env, "JUSTSTORAGE_GC_INTERVAL_S": "0"}, data_dir=data_dir)
    try:
        headers = {**AUTH, "X-Tenant": TENANT}
        for object_id, digest in ledger.acked.items():
            if object_id in ledger.deleted or object_id in ledger.uncertain_deletes:
                continue
            response = server.client.get(f"/v1/objects/{object_id}", headers=headers)
            assert response.status_code == 200, (seed, object_id, response.text)
            assert hashlib.sha256(response.content).hexdigest() == digest, (seed, object_id)

        live_blobs: set[tuple[str, str, int]] = set()
        unacknowledged = 0
        cursor = None
        while True:
            params = {"tenant": TENANT, "namespace": NAMESPACE, "versions": "true", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = server.client.get("/v1/objects", params=params, headers=AUTH).json()
            for item in page["items"]:
                digest = item["content_hash"].removeprefix("sha256:")
                assert digest in ledger.sent, (seed, item)  # never anything we did not send
                assert item["id"] not in ledger.deleted, (seed, item)
                # Not acknowledged yet visible: only an upload whose commit finished just
                # before a kill cut its response off; at most one per client per kill.
                unacknowledged += item["id"] not in ledger.acked
                body = server.client.get(f"/v1/objects/{item['id']}", headers=headers).content
                assert body == ledger.sent[digest], (seed, item["id"])
                live_blobs.add((item["storage_class"], digest, item["size_bytes"]))
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert unacknowledged <= CLIENTS * KILL_POINTS, (seed, unacknowledged)
    finally:
        server.stop()

    env = server.env  # the server's own settings: same database, same data directory
    gc = run_cli(["gc"], env)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    fsck = run_cli(["fsck"], env)
    assert fsck.returncode == 0, (seed, fsck.stdout + fsck.stderr)
    files = set()
    for storage_class in ("hot", "cold"):
        root = data_dir / storage_class
        leftovers = [p.name for p in (root / "tmp").iterdir()]
        assert leftovers == [], (seed, leftovers)
        files |= {(storage_class, p.name) for p in (root / "sha256").rglob("*") if p.is_file()}
    expected_files = {(c, d) for c, d, size in live_blobs if size > INLINE_MAX_BYTES}
    assert files == expected_files, (seed, "orphan or missing blob files")
    inline = {
        tuple(r)
        for r in query(database_url, "SELECT storage_class, content_hash FROM inline_blobs")
    }
    expected_inline = {(c, d) for c, d, size in live_blobs if size <= INLINE_MAX_BYTES}
    assert inline == expected_inline, (seed, "orphan or missing inline blobs")
    assert query(database_url, "SELECT id FROM objects WHERE state = 'WRITING'") == []
    assert refcount_drift(database_url) == []
    assert usage_drift(database_url) == []
    assert len(ledger.acked) >= KILL_POINTS, "the rounds acknowledged almost nothing"
