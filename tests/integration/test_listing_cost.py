"""A listing page costs the same at any cursor depth (SPEC: keyset pages), and a
newest-only page read by the loose index scan costs the same however many versions
its keys have. Cost is counted in SQLite virtual-machine steps, not time, so the
test is deterministic: a bound that the database cannot use (SQLite starts an index
range from one lower bound only) shows as steps growing with the depth."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata.queries import Params, list_page_sql, newest_by_key_sql
from juststorage.adapters.metadata.sqlite import SqliteDialect, SqliteMetadataStore
from juststorage.application.records import ListQuery
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import Namespace, StorageClass, TenantId

KEYS = 2000
TENANT, NAMESPACE = TenantId("acme"), Namespace("kb")
SHALLOW, DEEP = ListCursor("doc-00010", 0), ListCursor(f"doc-{KEYS - 100:05d}", 0)

Build = Callable[[ListQuery, Params], str]
BUILDERS: dict[str, Build] = {
    "scan": lambda q, p: list_page_sql(q, p, SqliteDialect.summary_columns, newest_only=False),
    "newest, filtered": lambda q, p: list_page_sql(
        q, p, SqliteDialect.summary_columns, newest_only=True
    ),
    "loose index scan": lambda q, p: newest_by_key_sql(q, p, SqliteDialect.summary_columns),
}


async def _database(path: Path, versions: int) -> sqlite3.Connection:
    store = SqliteMetadataStore(path, FakeClock())
    await store.migrate()
    await store.close()
    conn = sqlite3.connect(path)
    rows = (
        (f"{key:05d}-{v}", "acme", "kb", f"doc-{key:05d}", "COMMITTED", "hot", "x", "0" * 64,
         1, "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.000000Z", key * versions + v)
        for key in range(KEYS)
        for v in range(versions)
    )  # fmt: skip
    conn.executemany(
        "INSERT INTO objects (id, tenant_id, namespace, key, state, storage_class,"
        " content_type, content_hash, size_bytes, created_at, updated_at, commit_seq)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.execute("ANALYZE")
    return conn


@pytest.fixture(scope="module")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, sqlite3.Connection]]:
    root = tmp_path_factory.mktemp("listing-cost")
    conns = {v: asyncio.run(_database(root / f"v{v}.db", v)) for v in (1, 8)}
    yield conns
    for conn in conns.values():
        conn.close()


def _steps(conn: sqlite3.Connection, build: Build, query: ListQuery) -> int:
    """Virtual-machine steps (in hundreds) to read the page; asserts it is full."""
    params = Params(numbered=False)
    sql = build(query, params)
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    conn.set_progress_handler(count, 100)
    try:
        rows = conn.execute(sql, params.values).fetchall()
    finally:
        conn.set_progress_handler(None, 0)
    assert len(rows) == query.limit
    return steps


def _query(after: ListCursor, prefix: str, build: str) -> ListQuery:
    storage_class = StorageClass.HOT if build == "newest, filtered" else None
    return ListQuery(TENANT, NAMESPACE, 50, after=after, prefix=prefix, storage_class=storage_class)


@pytest.mark.parametrize("prefix", ["", "doc-"])
@pytest.mark.parametrize("build", list(BUILDERS))
def test_a_deep_page_costs_what_a_shallow_one_does(
    databases: dict[int, sqlite3.Connection], build: str, prefix: str
) -> None:
    conn = databases[8]
    shallow = _steps(conn, BUILDERS[build], _query(SHALLOW, prefix, build))
    deep = _steps(conn, BUILDERS[build], _query(DEEP, prefix, build))
    assert deep <= 2 * shallow + 10, (shallow, deep)


@pytest.mark.parametrize("prefix", ["", "doc-"])
def test_the_loose_index_scan_costs_the_same_for_one_version_or_eight(
    databases: dict[int, sqlite3.Connection], prefix: str
) -> None:
    build = BUILDERS["loose index scan"]
    one = _steps(databases[1], build, _query(DEEP, prefix, "loose index scan"))
    eight = _steps(databases[8], build, _query(DEEP, prefix, "loose index scan"))
    assert eight <= 2 * one + 10, (one, eight)
