"""Crash tests of multipart upload sessions (SPEC §8.2): kill -9 the real server
while parts are being received and sessions completed, restart, verify.

Each round starts the server on the same data; clients open sessions, send parts
(in order, out of order, in parallel, some sent twice) and complete them, and every server
process is SIGKILLed after a random delay. At the end:
- every part acknowledged with 200 is still in its session (same digest), unless a
  completion of that session may have committed (its response was cut off);
- nothing half-done is visible: every object is the whole of a session that was
  asked to complete, bit-exact;
- completing the sessions left open with their acknowledged parts gives their
  whole, and completing a completed one again answers the same object;
- after a GC pass with grace 0 no part, temp file or session row is left over,
  fsck is clean, reference counts and usage agree.
The seed is printed; replay with JUSTSTORAGE_CRASH_SEED=<seed>.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from juststorage.testing import Server, run_cli, start
from support.db_query import query, refcount_drift, usage_drift

pytestmark = pytest.mark.e2e

KILL_POINTS = 8
CLIENTS = 4
KEY = "crash-test-key-abcdefghijklmnopqrstuvwxyz"
TENANT, NAMESPACE = "crash", "sessions"
AUTH = {"Authorization": f"Bearer {KEY}"}
PART_MIN = 64 * 1024
PART_SIZES = [PART_MIN, PART_MIN + 1, 300_000, 1_000_003]


@dataclass
class Session:
    upload_id: str
    parts: dict[int, bytes]  # what the client means to send
    acked: dict[int, str] = field(default_factory=dict)  # part -> sha256 acknowledged
    completing: bool = False  # a completion was sent (its outcome may be unknown)
    object_id: str | None = None  # acknowledged completion

    @property
    def whole(self) -> bytes:
        return b"".join(self.parts[n] for n in sorted(self.parts))


@dataclass
class Ledger:
    sessions: dict[str, Session] = field(default_factory=dict)
    wholes: dict[str, bytes] = field(default_factory=dict)  # sha256 of a whole -> bytes


async def _put(client: httpx.AsyncClient, session: Session, number: int) -> None:
    data = session.parts[number]
    response = await client.put(
        f"/v1/uploads/{session.upload_id}/parts/{number}", headers=AUTH, content=data
    )
    assert response.status_code == 200, response.text
    digest = hashlib.sha256(data).hexdigest()
    assert response.json()["sha256"] == digest
    session.acked[number] = digest


async def _client(rng: random.Random, url: str, ledger: Ledger) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=20.0, trust_env=False) as client:
        while True:
            count = rng.randint(1, 4)
            parts = {n: rng.randbytes(rng.choice(PART_SIZES)) for n in range(1, count + 1)}
            response = await client.post(
                "/v1/uploads",
                headers={
                    **AUTH,
                    "X-Tenant": TENANT,
                    "X-Namespace": NAMESPACE,
                    "X-Key": f"k{rng.randrange(20)}",
                },
            )
            assert response.status_code == 201, response.text
            session = Session(response.json()["upload_id"], parts)
            ledger.sessions[session.upload_id] = session
            order = list(parts)
            if rng.random() < 0.5:
                rng.shuffle(order)
            if rng.random() < 0.4:
                # In parallel: they share the session's stream, in slots.
                await asyncio.gather(*(_put(client, session, n) for n in order))
            else:
                for number in order:
                    await _put(client, session, number)
                    if rng.random() < 0.15:
                        await _put(client, session, number)  # sent again: replaces it
            whole = session.whole
            ledger.wholes[hashlib.sha256(whole).hexdigest()] = whole
            session.completing = True
            done = await client.post(f"/v1/uploads/{session.upload_id}/complete", headers=AUTH)
            assert done.status_code == 201, done.text
            assert done.json()["content_hash"] == f"sha256:{hashlib.sha256(whole).hexdigest()}"
            session.object_id = done.json()["id"]


async def _round(seed: int, url: str, ledger: Ledger, kill_after: float, server: Server) -> None:
    rng = random.Random(seed)
    tasks = [
        asyncio.create_task(_client(random.Random(rng.random()), url, ledger))
        for _ in range(CLIENTS)
    ]
    acked_before = sum(len(s.acked) for s in ledger.sessions.values())
    deadline = time.monotonic() + 10
    while (
        sum(len(s.acked) for s in ledger.sessions.values()) == acked_before
        and time.monotonic() < deadline
    ):
        await asyncio.sleep(0.01)
    await asyncio.sleep(kill_after)
    server.kill9()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(result, BaseException) and not isinstance(result, httpx.TransportError):
            raise result


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'meta.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def _verify_sessions(server: Server, ledger: Ledger, seed: int) -> None:
    """Acknowledged parts survived; sessions left open complete into their whole."""
    for session in ledger.sessions.values():
        got = server.client.get(f"/v1/uploads/{session.upload_id}", headers=AUTH)
        assert got.status_code == 200, (seed, session.upload_id, got.text)
        state = got.json()
        if state["state"] == "completed":
            assert session.completing, (seed, session.upload_id)
            continue
        assert session.object_id is None, (seed, session.upload_id, "completed, then lost")
        stored = {p["part"]: p["sha256"] for p in state["parts"]}
        for number, digest in session.acked.items():
            # A part sent again may have been cut off mid-way: the earlier copy stays.
            assert stored.get(number) == digest, (seed, session.upload_id, number)
        missing = [n for n in session.parts if n not in stored]
        for number in missing:  # the client resumes: sends only what is missing
            response = server.client.put(
                f"/v1/uploads/{session.upload_id}/parts/{number}",
                headers=AUTH,
                content=session.parts[number],
            )
            assert response.status_code == 200, (seed, response.text)
        whole = session.whole
        ledger.wholes[hashlib.sha256(whole).hexdigest()] = whole
        session.completing = True
        done = server.client.post(f"/v1/uploads/{session.upload_id}/complete", headers=AUTH)
        assert done.status_code == 201, (seed, done.text)
        assert done.json()["content_hash"] == f"sha256:{hashlib.sha256(whole).hexdigest()}"
        session.object_id = done.json()["id"]
        again = server.client.post(f"/v1/uploads/{session.upload_id}/complete", headers=AUTH)
        assert again.status_code == 200 and again.json()["id"] == session.object_id


def _verify_objects(server: Server, ledger: Ledger, seed: int) -> None:
    """Every visible object is a session's whole, bit-exact."""
    headers = {**AUTH, "X-Tenant": TENANT}
    cursor = None
    while True:
        params = {"tenant": TENANT, "namespace": NAMESPACE, "versions": "true", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = server.client.get("/v1/objects", params=params, headers=AUTH).json()
        for item in page["items"]:
            digest = item["content_hash"].removeprefix("sha256:")
            assert digest in ledger.wholes, (seed, item)
            body = server.client.get(f"/v1/objects/{item['id']}", headers=headers).content
            assert body == ledger.wholes[digest], (seed, item["id"])
            # A whole some session was asked to complete (possibly unacknowledged).
            assert any(
                s.completing and hashlib.sha256(s.whole).hexdigest() == digest
                for s in ledger.sessions.values()
            ), (seed, item["id"])
        cursor = page["next_cursor"]
        if cursor is None:
            return


def test_kill9_during_parts_and_completion_loses_nothing_acknowledged(
    tmp_path: Path, database_url: str
) -> None:
    seed = int(
        os.environ.get("JUSTSTORAGE_CRASH_SEED", str(random.SystemRandom().randrange(10**9)))
    )
    print(f"crash test seed: {seed} (replay: JUSTSTORAGE_CRASH_SEED={seed})")
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        "DATABASE_URL": database_url,
        "API_KEYS": f"{KEY}:*:admin",
        "JUSTSTORAGE_GC_INTERVAL_S": "0.3",
        "JUSTSTORAGE_GC_GRACE_S": "0",
        "JUSTSTORAGE_UPLOAD_PART_MIN_BYTES": str(PART_MIN),
    }
    ledger = Ledger()
    started = time.monotonic()
    for point in range(KILL_POINTS):
        server = start(tmp_path, env, data_dir=data_dir)
        asyncio.run(
            _round(rng.randrange(10**9), server.url, ledger, rng.uniform(0.05, 0.8), server)
        )
        assert time.monotonic() - started < 600, f"too slow at kill point {point}"

    server = start(tmp_path, {**env, "JUSTSTORAGE_GC_INTERVAL_S": "0"}, data_dir=data_dir)
    try:
        _verify_objects(server, ledger, seed)
        _verify_sessions(server, ledger, seed)
        _verify_objects(server, ledger, seed)
    finally:
        server.stop()

    env = server.env
    gc = run_cli(["gc"], env)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    fsck = run_cli(["fsck"], env)
    assert fsck.returncode == 0, (seed, fsck.stdout + fsck.stderr)
    for storage_class in ("hot", "cold"):
        root = data_dir / storage_class
        assert [p.name for p in (root / "tmp").iterdir()] == [], seed
        parts_dir = root / "parts"
        leftovers = list(parts_dir.rglob("*")) if parts_dir.exists() else []
        assert leftovers == [], (seed, "leaked parts", leftovers)
    assert query(database_url, "SELECT session_id FROM upload_parts") == []
    assert query(database_url, "SELECT id FROM quota_reservations") == []
    assert refcount_drift(database_url) == []
    assert usage_drift(database_url) == []
    acked = sum(len(s.acked) for s in ledger.sessions.values())
    assert acked >= KILL_POINTS, "the rounds acknowledged almost nothing"
