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
