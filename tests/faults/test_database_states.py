"""The database refusing work because of its state: 503 with Retry-After on every
route within 5 s, `/ready` says so, and the server recovers by itself within 5 s.

Each cause is produced on a real PostgreSQL of this module's own (a throwaway
cluster it may stop, start and freeze): connections not allowed and backends
terminated, a restart, every connection slot taken by another client, a hung
server. SQLite's equivalent (its write lock held by another process) is here too.
Answers never carry the database's own text, hosts or paths; the log has the
details under the request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata.postgres import PostgresMetadataStore
from juststorage.cli.errors import EXIT_CODES
from juststorage.testing import CliResult, Server, clean_env, run_cli, start
from support.pg_cluster import PgCluster, connection_hog, throwaway_cluster

BUDGET_S = 5.0  # every answer during an outage, and recovery after it, within this
PAYLOAD = b"acknowledged before the outage"


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    with throwaway_cluster() as running:
        yield running


@pytest.fixture
def pg_server(cluster: PgCluster, tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A server on a fresh database of the cluster (its first admin key stored there:
    every request's key check reads the database), and the database's name."""
    name = f"js_{uuid.uuid4().hex[:12]}"
    server = start(tmp_path, {"DATABASE_URL": cluster.create_database(name)})
    yield server, name
    server.stop()


def _headers(server: Server) -> dict[str, str]:
    return {**server.admin_headers(), "X-Tenant": "t", "X-Namespace": "n"}


def _upload(server: Server, key: str) -> httpx.Response:
    headers = {**_headers(server), "X-Key": key}
    return server.client.post("/v1/objects", headers=headers, content=PAYLOAD)


def _every_route(server: Server, object_id: str) -> dict[str, Callable[[], httpx.Response]]:
    """One call per route; each names the tenant, so each needs the key check too."""
    client, headers = server.client, _headers(server)
    return {
        "upload": lambda: _upload(server, f"during-{uuid.uuid4().hex}"),
        "get by id": lambda: client.get(f"/v1/objects/{object_id}", headers=headers),
        "get by key": lambda: client.get("/v1/objects/by-key/n/t/before", headers=headers),
        "head": lambda: client.head(f"/v1/objects/{object_id}", headers=headers),
        "list": lambda: client.get("/v1/objects?namespace=n&tenant=t", headers=headers),
        "usage": lambda: client.get("/v1/usage?tenant=t", headers=headers),
        "delete": lambda: client.delete(f"/v1/objects/{object_id}", headers=headers),
        "delete by key": lambda: client.delete("/v1/objects/by-key/n/t/gone", headers=headers),
        "ready": lambda: client.get("/ready"),
    }


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assert_unavailable_everywhere(server: Server, object_id: str, *leaks: str) -> None:
    """Every route answers 503 in time (all at once: a hung database costs each its
    timeouts), and nothing in an answer names the database's text, host or paths."""
    routes = _every_route(server, object_id)
    with ThreadPoolExecutor(len(routes)) as pool:
        answers = dict(zip(routes, pool.map(_timed, routes.values()), strict=True))
    forbidden = ["127.0.0.1", str(server.data_dir), *leaks]
    for route, (response, elapsed) in answers.items():
        where = f"{route}: {response.status_code} after {elapsed:.1f} s: {response.text}"
        assert response.status_code == 503, f"{where}\n{server.log_tail(40)}"
        assert elapsed < BUDGET_S, where
        assert not any(text in response.text for text in forbidden), where
        if route == "ready":
            checks = response.json()["checks"]
            assert checks["database"].startswith("the database is unavailable"), where
            assert checks["hot"] == checks["cold"] == "ok", where
            continue
        assert int(response.headers["Retry-After"]) >= 1, where
        if route != "head":
            error = response.json()["error"]
            assert error["code"] == "Unavailable", where
            assert error["request_id"] == response.headers["X-Request-Id"], where
    # The details are in the log, under the request id of the answer.
    upload = answers["upload"][0]
    request_id = upload.headers["X-Request-Id"]
    assert any(
        request_id in line and "the database is unavailable" in line
        for line in server.log().splitlines()
    ), server.log_tail()


def _assert_recovers(server: Server, object_id: str) -> None:
    """`/ready` is 200 within 5 s, then every route works and the object before the
    outage reads back bit-exact."""
    deadline = time.monotonic() + BUDGET_S
    while server.client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, f"not ready within {BUDGET_S} s: {server.log_tail()}"
        time.sleep(0.1)
    read = server.client.get(f"/v1/objects/{object_id}", headers=_headers(server))
    assert read.status_code == 200 and read.content == PAYLOAD, read.text
    assert _upload(server, "after").status_code == 201
    listed = server.client.get("/v1/objects?namespace=n&tenant=t", headers=_headers(server))
    assert {item["key"] for item in listed.json()["items"]} == {"before", "after"}


def _object_before(server: Server) -> str:
    assert server.client.get("/ready").status_code == 200
    response = _upload(server, "before")
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.mark.postgres
def test_database_refusing_connections_answers_503_then_recovers(
    cluster: PgCluster, pg_server: tuple[Server, str]
) -> None:
    server, database = pg_server
    object_id = _object_before(server)
    cluster.admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    try:
        cluster.terminate_backends(database)  # SQLSTATE 57P01, then 55000 at connect
        _assert_unavailable_everywhere(
            server, object_id, "currently accepting", str(cluster.port), database
        )
        assert "ObjectNotInPrerequisiteStateError" in server.log()
    finally:
        cluster.admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    _assert_recovers(server, object_id)


@pytest.mark.postgres
@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_database_restart_answers_503_then_recovers(
    cluster: PgCluster, pg_server: tuple[Server, str], mode: str
) -> None:
    """`fast`: sessions end with 57P01, then connections are refused; `immediate`: a
    crash (sockets dropped), and the start runs crash recovery."""
    server, database = pg_server
    object_id = _object_before(server)
    cluster.stop(mode)
    try:
        _assert_unavailable_everywhere(server, object_id, str(cluster.port), database)
    finally:
        cluster.start()
    _assert_recovers(server, object_id)


@pytest.mark.postgres
def test_database_out_of_connections_answers_503_then_recovers(
    cluster: PgCluster, pg_server: tuple[Server, str]
) -> None:
    server, database = pg_server
    object_id = _object_before(server)
    # The server's connections end while it may not open new ones, so that the other
    # client takes every slot, the server's included; then its database is open again.
    cluster.admin(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
    cluster.terminate_backends(database)
    with connection_hog(cluster.url()) as hog:
        hog.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        _assert_unavailable_everywhere(
            server, object_id, "too many clients", str(cluster.port), database
        )
        assert "TooManyConnectionsError" in server.log()  # SQLSTATE 53300 was the cause
    _assert_recovers(server, object_id)


@pytest.mark.postgres
def test_hung_database_answers_503_within_5_s_then_recovers(
    cluster: PgCluster, pg_server: tuple[Server, str]
) -> None:
    """Stopped processes: connects and statements get no answer; only the server's
    own timeouts end the wait."""
    server, database = pg_server
    object_id = _object_before(server)
    with cluster.frozen():
        _assert_unavailable_everywhere(server, object_id, str(cluster.port), database)
    assert "TimeoutError" in server.log()
    _assert_recovers(server, object_id)


_HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def _write_lock_held(database: Path) -> Iterator[None]:
    """Another process holds the SQLite database's write lock until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        yield
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()  # the holder exits, and its lock goes with it
        holder.wait(timeout=10)
        holder.stdout.close()


def test_sqlite_locked_by_another_process_answers_503_and_reads_go_on(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        object_id = _object_before(server)
        writes: list[Callable[[], httpx.Response]] = [
            lambda: _upload(server, "during"),
            lambda: _upload(server, "during too"),  # queued behind the first, same budget
            lambda: server.client.delete(f"/v1/objects/{object_id}", headers=_headers(server)),
        ]
        with _write_lock_held(server.data_dir / "meta.db"), ThreadPoolExecutor(3) as pool:
            for response, elapsed in pool.map(_timed, writes):
                assert response.status_code == 503, response.text
                assert elapsed < BUDGET_S, (elapsed, response.text)
                assert response.json()["error"]["code"] == "Unavailable"
                assert int(response.headers["Retry-After"]) >= 1
                assert str(server.data_dir) not in response.text
            read = server.client.get(f"/v1/objects/{object_id}", headers=_headers(server))
            assert read.status_code == 200 and read.content == PAYLOAD
        _assert_recovers(server, object_id)
    finally:
        server.stop()


def _keys_list(url: str, tmp_path: Path) -> tuple[CliResult, float]:
    env = {**clean_env(tmp_path / "data"), "DATABASE_URL": url}
    started = time.monotonic()
    result = run_cli(["keys", "list"], env)
    return result, time.monotonic() - started


@pytest.mark.postgres
def test_cli_against_a_refusing_database_exits_unavailable(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """`keys list` (its store check connects first) on a database not accepting
    connections: the Unavailable exit status and why, not Internal."""
    name = f"js_{uuid.uuid4().hex[:12]}"
    url = cluster.create_database(name)
    migrated = run_cli(["migrate"], {**clean_env(tmp_path / "data"), "DATABASE_URL": url})
    assert migrated.returncode == 0, migrated.stderr
    cluster.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        result, elapsed = _keys_list(url, tmp_path)
    finally:
        cluster.admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert result.returncode == EXIT_CODES["Unavailable"], result
    assert "the database is unavailable: not accepting connections" in result.stderr, result
    assert "Traceback" not in result.stderr
    assert elapsed < BUDGET_S + 3, result  # the interpreter's start included


@pytest.mark.postgres
def test_cli_against_a_hung_database_exits_unavailable_promptly(
    cluster: PgCluster, tmp_path: Path
) -> None:
    """Connects get no answer: the CLI's own connect timeout ends the wait."""
    with cluster.frozen():
        result, elapsed = _keys_list(cluster.url(), tmp_path)
    assert result.returncode == EXIT_CODES["Unavailable"], result
    assert "the database is unavailable: no answer in time" in result.stderr, result
    assert elapsed < BUDGET_S + 3, result  # the interpreter's start included


@pytest.mark.postgres
def test_a_briefly_slow_database_keeps_its_pooled_connections(cluster: PgCluster) -> None:
    """A database that pauses for 1 s while a used connection is reset for the pool:
    the connection goes back to the pool, not dropped (and reopened: churn)."""
    url = cluster.create_database(f"js_{uuid.uuid4().hex[:12]}")
    frozen, pause_s = threading.Event(), 1.0

    def pause() -> None:
        with cluster.frozen():
            frozen.set()
            time.sleep(pause_s)

    async def backend_pid(store: PostgresMetadataStore) -> int:
        async with store.snapshot() as view:
            row = await view.session.fetchone("SELECT pg_backend_pid()")
        assert row is not None
        return int(row[0])

    async def scenario() -> tuple[int, int, float]:
        store = PostgresMetadataStore(url, FakeClock(), pool_max=1)
        try:
            pausing = threading.Thread(target=pause)
            async with store.snapshot() as view:
                row = await view.session.fetchone("SELECT pg_backend_pid()")
                pausing.start()
                await asyncio.to_thread(frozen.wait, 5)
                started = time.monotonic()
            released_after = time.monotonic() - started  # the reset waited for the database
            await asyncio.to_thread(pausing.join, 5)
            assert row is not None
            return int(row[0]), await backend_pid(store), released_after
        finally:
            await store.close()

    before, after, released_after = asyncio.run(scenario())
    assert released_after >= pause_s / 2
    assert after == before


def test_a_statement_error_answers_500_without_database_text(tmp_path: Path) -> None:
    """A bug's error (here a table gone from under the server) is 500 with a fixed
    message; the driver's text (table, SQL, path) only in the log, by request id."""
    server = start(tmp_path)
    try:
        object_id = _object_before(server)
        database = server.data_dir / "meta.db"
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("DROP TABLE objects")
            conn.commit()
        response = server.client.get(f"/v1/objects/{object_id}", headers=_headers(server))
        assert response.status_code == 500, response.text
        assert response.json()["error"] == {
            "code": "Internal",
            "message": "internal error",
            "request_id": response.headers["X-Request-Id"],
        }
        request_id = response.headers["X-Request-Id"]
        assert any(
            request_id in line and "no such table" in line for line in server.log().splitlines()
        ), server.log_tail()
    finally:
        server.stop()
