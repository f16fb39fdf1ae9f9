"""Upload by hash's probe (SPEC §8.3) is answered from the tenant's own entries of
objects_committed_by_tenant_blob on both databases, whatever their statistics say
about the content, so its cost never depends on what other tenants store (SPEC §5).

The table is skewed as a review found it: one content makes up 40 % of the rows, all
of other tenants, while the asking tenant holds many other contents. On PostgreSQL
the statistics of that table lead a plain `... AND size_bytes = $4 LIMIT 1` to a
sequential scan of the whole table for the popular content; on SQLite the plain probe
only leaves the index under statistics that misjudge it (written here into
sqlite_stat1, as an ANALYZE of the table in another state may leave them). Each
test shows first that its statistics mislead the plain probe, then that the
adapter's probe keeps to the index.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata.postgres import PostgresDialect, PostgresMetadataStore
from juststorage.adapters.metadata.queries import HOLDS_CONTENT_SQL
from juststorage.adapters.metadata.sqlite import SqliteDialect, SqliteMetadataStore
from juststorage.domain.model import ContentHash, StorageClass, TenantId

pytestmark = pytest.mark.anyio

# Row g (1..ROWS) holds the popular content, of tenant other-(g % 4), when g % 5 < 2;
# else a content of its own (_own_hash(g), g bytes): acme's when g is odd (30 % of
# the rows), other-(g % 4)'s when even.
ROWS = 4000
INDEX = "objects_committed_by_tenant_blob"
ACME = TenantId("acme")
POPULAR = "a" * 64
POPULAR_SIZE = 1000
UNKNOWN = "b" * 64
OWN_ROW = 7  # 7 % 5 >= 2 and odd: acme's own content


def _own_hash(g: int) -> str:
    return f"{g:064x}"


PLAIN_SQL = (
    "SELECT 1 FROM objects WHERE tenant_id = ? AND storage_class = ? AND content_hash = ?"
    " AND size_bytes = ? AND state = 'COMMITTED' LIMIT 1"
)
PROBES = {
    "popular content of other tenants": ("acme", "hot", POPULAR, POPULAR_SIZE),
    "content nobody holds": ("acme", "hot", UNKNOWN, POPULAR_SIZE),
    "the tenant's own content": ("acme", "hot", _own_hash(OWN_ROW), OWN_ROW),
}
COLUMNS = (
    "id, tenant_id, namespace, key, state, storage_class, content_type, content_hash,"
    " size_bytes, created_at, updated_at, commit_seq"
)


def _numbered(sql: str) -> str:
    first, *rest = sql.split("?")
    return first + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))


async def _check_answers(store: SqliteMetadataStore | PostgresMetadataStore) -> None:
    async with store.snapshot() as view:
        objects = view.objects
        assert not await objects.holds_content(
            ACME, StorageClass.HOT, ContentHash(POPULAR), POPULAR_SIZE
        )
        assert await objects.holds_content(
            TenantId("other-1"), StorageClass.HOT, ContentHash(POPULAR), POPULAR_SIZE
        )
        own = ContentHash(_own_hash(OWN_ROW))
        assert await objects.holds_content(ACME, StorageClass.HOT, own, OWN_ROW)
        assert not await objects.holds_content(ACME, StorageClass.HOT, own, OWN_ROW - 1)
        assert not await objects.holds_content(ACME, StorageClass.COLD, own, OWN_ROW)


# PostgreSQL


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _pg_plan(conn: asyncpg.Connection, sql: str, params: tuple[Any, ...]) -> str:
    """The plan's nodes, one per line: node type, and the index where one is read."""
    explained = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {_numbered(sql)}", *params))
    return "\n".join(
        f"{node['Node Type']} {node.get('Index Name', '')}".strip()
        for node in _nodes(explained[0]["Plan"])
    )


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[PostgresMetadataStore]:
    store = PostgresMetadataStore(postgres_url, FakeClock())
    await store.migrate()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute(
            f"INSERT INTO objects ({COLUMNS})"
            " SELECT gen_random_uuid(),"
            "  CASE WHEN g % 5 >= 2 AND g % 2 = 1 THEN 'acme' ELSE 'other-' || g % 4 END,"
            "  'files', 'k' || g, 'COMMITTED', 'hot', 'x',"
            "  CASE WHEN g % 5 < 2 THEN $2 ELSE lpad(to_hex(g), 64, '0') END,"
            "  CASE WHEN g % 5 < 2 THEN $3 ELSE g END, now(), now(), g"
            " FROM generate_series(1, $1) AS g",
            ROWS,
            POPULAR,
            POPULAR_SIZE,
        )
        await conn.execute("ANALYZE objects")
    finally:
        await conn.close()
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_probe_reads_only_the_tenant_index_of_a_skewed_table(
    pg_store: PostgresMetadataStore, postgres_url: str
) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        misled = await _pg_plan(conn, PLAIN_SQL, PROBES["popular content of other tenants"])
        assert "Seq Scan" in misled, f"the seed no longer misleads a plain probe:\n{misled}"

        probe = HOLDS_CONTENT_SQL.format(index=PostgresDialect.tenant_content_index)
        for name, params in PROBES.items():
            plan = await _pg_plan(conn, probe, params)
            assert "Seq Scan" not in plan, f"{name}:\n{plan}"
            scans = [line for line in plan.splitlines() if "Scan" in line]
            assert scans and all(line.endswith(f" {INDEX}") for line in scans), f"{name}:\n{plan}"
    finally:
        await conn.close()
    await _check_answers(pg_store)


# SQLite


@pytest.fixture
async def sqlite_path(tmp_path: Path) -> Path:
    path = tmp_path / "meta.db"
    store = SqliteMetadataStore(path, FakeClock())
    await store.migrate()
    await store.close()
    rows = [
        (
            f"id-{g}",
            "acme" if g % 5 >= 2 and g % 2 == 1 else f"other-{g % 4}",
            "files",
            f"k{g}",
            "COMMITTED",
            "hot",
            "x",
            POPULAR if g % 5 < 2 else _own_hash(g),
            POPULAR_SIZE if g % 5 < 2 else g,
            "2026-01-01T00:00:00.000000Z",
            "2026-01-01T00:00:00.000000Z",
            g,
        )
        for g in range(1, ROWS + 1)
    ]
    with sqlite3.connect(path) as conn:
        conn.executemany(f"INSERT INTO objects ({COLUMNS}) VALUES ({', '.join('?' * 12)})", rows)
        conn.execute("ANALYZE")
    return path


def _sqlite_plan(path: Path, sql: str, params: tuple[Any, ...]) -> list[str]:
    # A new connection loads sqlite_stat1 as it stands.
    conn = sqlite3.connect(path)
    try:
        return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
    finally:
        conn.close()


def _misjudge_the_tenant_index(path: Path) -> None:
    """Statistics saying an entry of the tenant index stands for a million rows."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "UPDATE sqlite_stat1 SET stat = '1000000 1000000 1000000 1000000 1000000'"
            " WHERE idx = ?",
            (INDEX,),
        )


async def test_sqlite_probe_reads_only_the_tenant_index_whatever_the_statistics(
    sqlite_path: Path,
) -> None:
    probe = HOLDS_CONTENT_SQL.format(index=SqliteDialect.tenant_content_index)
    for statistics in ("from ANALYZE", "misjudging the tenant index"):
        if statistics != "from ANALYZE":
            _misjudge_the_tenant_index(sqlite_path)
            misled = _sqlite_plan(sqlite_path, PLAIN_SQL, PROBES["content nobody holds"])
            assert any(step.startswith("SCAN") for step in misled), misled
        for name, params in PROBES.items():
            plan = _sqlite_plan(sqlite_path, probe, params)
            assert len(plan) == 1, (statistics, name, plan)
            assert re.fullmatch(
                rf"SEARCH objects USING (COVERING )?INDEX {INDEX} \(.*\)", plan[0]
            ), (
                statistics,
                name,
                plan,
            )
    store = SqliteMetadataStore(sqlite_path, FakeClock())
    try:
        await _check_answers(store)
    finally:
        await store.close()
