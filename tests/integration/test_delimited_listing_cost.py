"""A delimited page's cost does not grow with the keys under a rolled-up prefix
(SPEC §8.4): with 100,000 keys under `m/`, the page that rolls them up, and the page
after it, cost what a page among plain keys costs, on SQLite and PostgreSQL.

Cost is counted as work, not time, so the test is deterministic: SQLite virtual
machine steps (a progress handler), PostgreSQL shared buffers touched and index
rows read (EXPLAIN ANALYZE BUFFERS). A walk that read the keys under the prefix
would show 100,000 more rows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata.delimited import delimited_page_sql
from juststorage.adapters.metadata.postgres import PostgresDialect, PostgresMetadataStore
from juststorage.adapters.metadata.queries import Params
from juststorage.adapters.metadata.sqlite import SqliteDialect, SqliteMetadataStore
from juststorage.application.listing import list_objects
from juststorage.application.ports import MetadataStore
from juststorage.application.records import ListQuery
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    StorageClass,
    TenantId,
)

pytestmark = pytest.mark.anyio

TENANT, NAMESPACE = TenantId("acme"), Namespace("kb")
UNDER_PREFIX = 100_000
PLAIN = 1000  # plain keys before the prefix (k-…) and after it (n-…)
LIMIT = 50
BATCH = 2000  # rows per statement (PostgreSQL allows 32767 parameters)
TRANSACTION = 20_000  # rows per transaction

MODES: dict[str, dict[str, Any]] = {
    "newest": {},
    "every version": {"all_versions": True},
    "class filter": {"storage_class": StorageClass.HOT},
}


def _keys() -> Iterator[str]:
    yield from (f"k-{n:05d}" for n in range(PLAIN))
    yield from (f"m/{n:06d}" for n in range(UNDER_PREFIX))
    yield from (f"n-{n:05d}" for n in range(PLAIN))


async def _fill(store: MetadataStore, clock: FakeClock) -> dict[str, int]:
    """Every key once, through the metadata port in big transactions; → commit_seq by key."""
    digest = ContentHash("0" * 64)
    keys = list(_keys())
    seqs: dict[str, int] = {}
    for start in range(0, len(keys), TRANSACTION):
        async with store.transaction() as uow:
            for first in range(start, min(start + TRANSACTION, len(keys)), BATCH):
                uploads = [
                    (
                        NewUpload(
                            uuid4(),
                            TENANT,
                            NAMESPACE,
                            ObjectKey(key),
                            StorageClass.HOT,
                            "text/plain",
                            clock.now(),
                        ),
                        digest,
                        1,
                    )
                    for key in keys[first : min(first + BATCH, start + TRANSACTION)]
                ]
                for version in await uow.objects.insert_committed_many(uploads):
                    seqs[version.key] = version.commit_seq
            await uow.commit()
    return seqs


@dataclass(frozen=True)
class Pages:
    """Where the compared pages start."""

    elsewhere: ListCursor  # among plain keys only
    across: ListCursor  # plain keys, the prefix, plain keys
    after: ListCursor  # just past the prefix


def _pages(seqs: dict[str, int]) -> Pages:
    return Pages(
        elsewhere=ListCursor("k-00100", seqs["k-00100"]),
        across=ListCursor("k-00980", seqs["k-00980"]),
        after=ListCursor.past("m/"),
    )


def _query(after: ListCursor, mode: str) -> ListQuery:
    return ListQuery(TENANT, NAMESPACE, LIMIT, after=after, delimiter="/", **MODES[mode])


async def _check_entries(store: MetadataStore, pages: Pages, mode: str) -> None:
    """The pages hold what they should: the rolled-up prefix once, in its place."""
    across = await list_objects(store, _query(pages.across, mode))
    assert across.common_prefixes == ["m/"]
    keys = [s["key"] for s in across.items]
    assert keys == [f"k-{n:05d}" for n in range(981, PLAIN)] + [f"n-{n:05d}" for n in range(30)]
    after = await list_objects(store, _query(pages.after, mode))
    assert [s["key"] for s in after.items] == [f"n-{n:05d}" for n in range(LIMIT)]
    assert after.common_prefixes == []


def _assert_same_cost(costs: dict[str, int], slack: int, per_entry: int) -> None:
    """The pages by the prefix cost what the page elsewhere costs, and that is a few
    units per entry: no page reads the table (which has 102,000 rows)."""
    elsewhere = costs["elsewhere"]
    for page in ("across", "after"):
        assert costs[page] <= 2 * elsewhere + slack, costs
    assert elsewhere <= per_entry * LIMIT, costs


# SQLite


@dataclass
class SqliteDatabase:
    path: Path
    pages: Pages


@pytest.fixture(scope="module")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteDatabase]:
    import anyio

    path = tmp_path_factory.mktemp("delimited-cost") / "meta.db"

    async def build() -> dict[str, int]:
        store = SqliteMetadataStore(path, FakeClock())
        try:
            await store.migrate()
            return await _fill(store, FakeClock())
        finally:
            await store.close()

    seqs = anyio.run(build)
    with sqlite3.connect(path) as conn:
        conn.execute("ANALYZE")
    yield SqliteDatabase(path, _pages(seqs))


def _sqlite_steps(conn: sqlite3.Connection, query: ListQuery) -> int:
    """Virtual-machine steps (in hundreds) to read the page."""
    params = Params(numbered=False)
    sql = delimited_page_sql(query, params, SqliteDialect.summary_columns, SqliteDialect.find_text)
    values = [str(v) if isinstance(v, str) else v for v in params.values]
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0  # go on

    conn.set_progress_handler(count, 100)
    try:
        rows = conn.execute(sql, values).fetchall()
    finally:
        conn.set_progress_handler(None, 0)
    assert len(rows) == query.limit
    return steps


@pytest.mark.parametrize("mode", list(MODES))
async def test_sqlite_page_over_a_big_prefix_costs_what_any_page_costs(
    sqlite_database: SqliteDatabase, mode: str
) -> None:
    pages = sqlite_database.pages
    conn = sqlite3.connect(sqlite_database.path)
    try:
        costs = {
            name: _sqlite_steps(conn, _query(getattr(pages, name), mode))
            for name in ("elsewhere", "across", "after")
        }
    finally:
        conn.close()
    _assert_same_cost(costs, slack=10, per_entry=4)  # hundreds of steps
    store = SqliteMetadataStore(sqlite_database.path, FakeClock())
    try:
        await _check_entries(store, pages, mode)
    finally:
        await store.close()


# PostgreSQL


@dataclass
class PostgresDatabase:
    url: str
    pages: Pages


@pytest.fixture(scope="module")
def postgres_database(postgres_server_url: str) -> Iterator[PostgresDatabase]:
    import anyio

    from support.pg_databases import fresh_database

    with fresh_database(postgres_server_url) as url:

        async def build() -> dict[str, int]:
            store = PostgresMetadataStore(url, FakeClock())
            try:
                await store.migrate()
                seqs = await _fill(store, FakeClock())
            finally:
                await store.close()
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("VACUUM ANALYZE objects")
            finally:
                await conn.close()
            return seqs

        yield PostgresDatabase(url, _pages(anyio.run(build)))


def _numbered(sql: str) -> str:
    first, *rest = sql.split("?")
    return first + "".join(f"${n}{part}" for n, part in enumerate(rest, 1))


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@dataclass(frozen=True)
class PgWork:
    buffers: int  # shared buffers hit or read, the whole statement
    index_rows: int  # rows index scans returned, over all their loops


async def _pg_work(conn: asyncpg.Connection, query: ListQuery) -> PgWork:
    params = Params(numbered=False)
    sql = delimited_page_sql(
        query, params, PostgresDialect.summary_columns, PostgresDialect.find_text
    )
    values = [str(v) if isinstance(v, str) else v for v in params.values]
    explained = json.loads(
        await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {_numbered(sql)}", *values)
    )
    top = explained[0]["Plan"]
    assert top["Actual Rows"] == query.limit
    nodes = list(_nodes(top))
    index_rows = sum(
        int(n["Actual Rows"] * n["Actual Loops"]) for n in nodes if "Index" in n["Node Type"]
    )
    assert all(n["Node Type"] != "Seq Scan" for n in nodes), [n["Node Type"] for n in nodes]
    return PgWork(top["Shared Hit Blocks"] + top["Shared Read Blocks"], index_rows)


@pytest.mark.postgres
@pytest.mark.parametrize("mode", list(MODES))
async def test_postgres_page_over_a_big_prefix_costs_what_any_page_costs(
    postgres_database: PostgresDatabase, mode: str
) -> None:
    pages = postgres_database.pages
    conn = await asyncpg.connect(postgres_database.url)
    try:
        work = {
            name: await _pg_work(conn, _query(getattr(pages, name), mode))
            for name in ("elsewhere", "across", "after")
        }
    finally:
        await conn.close()
    _assert_same_cost({name: w.buffers for name, w in work.items()}, slack=20, per_entry=20)
    _assert_same_cost({name: w.index_rows for name, w in work.items()}, slack=10, per_entry=5)
    store = PostgresMetadataStore(postgres_database.url, FakeClock())
    try:
        await _check_entries(store, pages, mode)
    finally:
        await store.close()
