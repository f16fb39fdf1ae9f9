"""Print the query plans of the hot metadata queries at a large row count.

Fills a fresh PostgreSQL database (or SQLite file) with N committed objects in
one tenant/namespace (on PostgreSQL plus a second version of every tenth key),
written through the repositories as uploads would write them, then shows
EXPLAIN (ANALYZE) for: newest version by key, the first and a deep list page
(newest only, and all versions), a delimited page (SPEC §8.4) and usage. Used for
docs/postgres.md.

    .venv/bin/python -m bench.explain_plans --postgres postgresql://postgres@127.0.0.1/postgres
    .venv/bin/python -m bench.explain_plans --sqlite /tmp/plans.db
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import sqlite3
import uuid
from pathlib import Path

import asyncpg

from juststorage.adapters.metadata.delimited import delimited_page_sql
from juststorage.adapters.metadata.postgres import PostgresDialect
from juststorage.adapters.metadata.queries import (
    USAGE_SQL,
    Params,
    list_page_sql,
    newest_by_key_sql,
)
from juststorage.adapters.metadata.sqlite import SqliteDialect
from juststorage.application.records import ListQuery
from juststorage.bootstrap import SystemClock, build_metadata_store
from juststorage.config import load_settings
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectKey,
    StorageClass,
    TenantId,
)

from .fill import commit_versions

TENANT, NAMESPACE = TenantId("acme"), Namespace("kb")


async def fill(database_url: str, rows: int, second_every: int | None) -> None:
    """Migrate, then commit `rows` keys `doc-000000001`... of 4096 bytes (and a second
    version of every `second_every`-th key) through the repositories (`commit_versions`)."""
    environ = {"JUSTSTORAGE_DATA_DIR": "/nonexistent", "DATABASE_URL": database_url}
    store = build_metadata_store(load_settings(environ), SystemClock())
    try:
        await store.migrate()
        seconds = range(1, rows + 1, second_every) if second_every else range(0)
        await commit_versions(
            store,
            TENANT,
            NAMESPACE,
            [
                (
                    ObjectKey(f"doc-{g:09d}"),
                    ContentHash(hashlib.md5(str(g).encode()).hexdigest() * 2),
                )
                for g in [*range(1, rows + 1), *seconds]
            ],
            size=4096,
            content_type="text/plain",
        )
    finally:
        await store.close()


def _digest_of(g: int) -> ContentHash:
    return ContentHash(hashlib.md5(str(g).encode()).hexdigest() * 2)


def _queries(rows: int) -> dict[str, tuple[ListQuery, str]]:
    """{title: (query, how)}: the statements `SqlObjectRepository.list_page` runs.

    A newest-only listing first scans every version ("scan": the caller keeps each
    key's first row; its cursor resumes after the key). If that scan met older
    versions the page is read again by a loose index scan ("heads"); a storage-class
    filter asks the database to drop older versions ("filter").
    """
    deep = ListCursor(f"doc-{rows - 200:09d}", rows)
    after_deep_key = ListCursor(deep.key, 0)
    return {
        "list, first page (newest only: scan)": (ListQuery(TENANT, NAMESPACE, 101), "scan"),
        "list, deep page (newest only: scan)": (
            ListQuery(TENANT, NAMESPACE, 101, after=after_deep_key),
            "scan",
        ),
        "list, deep page (newest only: loose index scan)": (
            ListQuery(TENANT, NAMESPACE, 101, after=after_deep_key),
            "heads",
        ),
        "list, deep page (newest only, one storage class: filtered by the database)": (
            ListQuery(TENANT, NAMESPACE, 101, after=after_deep_key, storage_class=StorageClass.HOT),
            "filter",
        ),
        "list, deep page, all versions": (
            ListQuery(TENANT, NAMESPACE, 101, after=deep, all_versions=True),
            "scan",
        ),
        "list, prefix": (ListQuery(TENANT, NAMESPACE, 101, prefix="doc-0005"), "scan"),
        # Every key rolls up into `doc-`: one seek finds it, one more seeks past it.
        "list, delimiter (every key under one common prefix)": (
            ListQuery(TENANT, NAMESPACE, 101, delimiter="-"),
            "delimited",
        ),
        "list, deep page, delimiter (one level below a prefix)": (
            ListQuery(TENANT, NAMESPACE, 101, after=after_deep_key, prefix="doc-", delimiter="/"),
            "delimited",
        ),
    }


def _sql(
    query: ListQuery, how: str, params: Params, dialect: type[PostgresDialect | SqliteDialect]
) -> str:
    columns = dialect.summary_columns
    if how == "heads":
        return newest_by_key_sql(query, params, columns)
    if how == "delimited":
        return delimited_page_sql(query, params, columns, dialect.find_text)
    return list_page_sql(query, params, columns, newest_only=how == "filter")


async def postgres(url: str, rows: int) -> None:
    name = f"juststorage_plans_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    db_url = url.rsplit("/", 1)[0] + f"/{name}"
    try:
        await fill(db_url, rows, 10)
        conn = await asyncpg.connect(db_url)
        await conn.execute("ANALYZE")
        print(f"PostgreSQL, {rows} keys (+10 % second versions)\n")
        newest = (
            "SELECT * FROM objects WHERE tenant_id = $1 AND namespace = $2 AND key = $3"
            " AND state = 'COMMITTED' ORDER BY commit_seq DESC LIMIT 1"
        )
        await _pg_plan(conn, "newest version by key", newest, ["acme", "kb", "doc-000500001"])
        for title, (query, how) in _queries(rows).items():
            params = Params(numbered=True)
            sql = _sql(query, how, params, PostgresDialect)
            await _pg_plan(
                conn, title, sql, [str(v) if isinstance(v, str) else v for v in params.values]
            )
        await _pg_plan(conn, "usage", USAGE_SQL.format(tenant="$1"), ["acme"])
        await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def _pg_plan(conn: asyncpg.Connection, title: str, sql: str, args: list[object]) -> None:
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
    print(f"### {title}\n```")
    for row in rows:
        print(row[0])
    print("```\n")


def sqlite_plans(path: Path, rows: int) -> None:
    path.unlink(missing_ok=True)
    asyncio.run(fill(f"sqlite:///{path}", rows, None))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("ANALYZE")
        print(f"SQLite, {rows} keys\n")
        for title, (query, how) in _queries(rows).items():
            params = Params(numbered=False)
            sql = _sql(query, how, params, SqliteDialect)
            plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}", params.values).fetchall()
            print(f"### {title}\n```")
            for row in plan:
                print(row[3])
            print("```\n")
    path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="URL of a PostgreSQL server (a database is created)")
    parser.add_argument("--sqlite", type=Path, help="path of a scratch SQLite file")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.postgres:
        asyncio.run(postgres(args.postgres, args.rows))
    if args.sqlite:
        sqlite_plans(args.sqlite, args.rows)


if __name__ == "__main__":
    main()
