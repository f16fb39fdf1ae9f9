"""Read-only SQL against a test's database, whichever backend it is (for assertions)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql` on a `sqlite:///` or `postgresql://` database."""
    if database_url.startswith("sqlite:///"):
        path = database_url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    with ThreadPoolExecutor(max_workers=1) as pool:  # callers may be inside an event loop
        return pool.submit(asyncio.run, _pg_query(database_url, sql)).result()


async def _pg_query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(database_url)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


REFCOUNT_DRIFT_SQL = (
    "SELECT b.content_hash, b.ref_count, (SELECT COUNT(*) FROM objects o"
    " WHERE o.storage_class = b.storage_class AND o.content_hash = b.content_hash"
    " AND o.state = 'COMMITTED') AS live FROM blobs b"
)


def refcount_drift(database_url: str) -> list[tuple[str, int, int]]:
    """Blobs whose ref_count differs from their committed objects (should be none)."""
    rows = query(database_url, REFCOUNT_DRIFT_SQL)
    return [(h, int(ref), int(live)) for h, ref, live in rows if int(ref) != int(live)]


USAGE_DRIFT_SQL = (
    "SELECT c.tenant_id, c.storage_class, c.objects, c.size_bytes,"
    " (SELECT COUNT(*) FROM objects o WHERE o.tenant_id = c.tenant_id"
    " AND o.storage_class = c.storage_class AND o.state = 'COMMITTED'),"
    " (SELECT COALESCE(SUM(size_bytes), 0) FROM objects o WHERE o.tenant_id = c.tenant_id"
    " AND o.storage_class = c.storage_class AND o.state = 'COMMITTED')"
    " FROM (SELECT tenant_id, storage_class, SUM(objects) AS objects,"
    " SUM(size_bytes) AS size_bytes FROM usage_counters GROUP BY tenant_id, storage_class) c"
)


def usage_drift(database_url: str) -> list[tuple[Any, ...]]:
    """Tenants whose usage counters differ from their committed objects (should be none)."""
    rows = query(database_url, USAGE_DRIFT_SQL)
    return [r for r in rows if (int(r[2]), int(r[3])) != (int(r[4]), int(r[5]))]
