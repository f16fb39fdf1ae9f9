"""The database's own group-commit bound: what the metadata database commits per second
when each small upload is one object row plus one blob row holding its bytes, in
transactions of the server's group-commit batch, with the server's durability.

No HTTP, no JustStorage code: rows shaped like `objects` and `blobs` (the blob row
with a bytes column, as an inline blob is kept), `batch` rows of each per
transaction, back to back on one connection (the group committer is one leader per
process). SQLite: WAL, `synchronous=FULL` (the WAL fsynced at every commit).
PostgreSQL: `synchronous_commit = on` (the commit waits for its WAL flush). With 16
concurrent clients the committer's batch is at most 16 uploads (the batch takes what
is queued, up to `max_batch`), so the bound uses `min(concurrency, max_batch)`.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
import uuid
from pathlib import Path

import asyncpg

from juststorage.application.commits import DEFAULT_MAX_BATCH

TIME_LIMIT_S = 20.0

_OBJECTS = """CREATE TABLE bound_objects (
    id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, namespace TEXT NOT NULL,
    key TEXT NOT NULL, state TEXT NOT NULL, storage_class TEXT NOT NULL,
    content_type TEXT NOT NULL, content_hash TEXT, size_bytes BIGINT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, commit_seq BIGINT UNIQUE)"""
_INDEX = """CREATE INDEX bound_objects_by_key
    ON bound_objects (tenant_id, namespace, key, commit_seq DESC)
    WHERE state = 'COMMITTED'"""
_BLOBS = """CREATE TABLE bound_blobs (
    storage_class TEXT NOT NULL, content_hash TEXT NOT NULL, size_bytes BIGINT NOT NULL,
    ref_count BIGINT NOT NULL, created_at TEXT NOT NULL, data {bytes} NOT NULL,
    PRIMARY KEY (storage_class, content_hash))"""


def batch_size(concurrency: int) -> int:
    """The group-commit batch `concurrency` clients can fill: the server's rule."""
    return min(concurrency, DEFAULT_MAX_BATCH)


def _rows(n: int, size: int) -> list[tuple[tuple[object, ...], tuple[object, ...]]]:
    """n (object row, blob row) pairs with distinct random bodies, built off the clock."""
    now = "2026-01-01T00:00:00.000000Z"
    out: list[tuple[tuple[object, ...], tuple[object, ...]]] = []
    for i in range(n):
        body = os.urandom(size)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        obj: tuple[object, ...] = (str(uuid.uuid4()), "bench", "bound", f"small/{i:06d}")
        obj += ("COMMITTED", "hot", "application/octet-stream", digest, size, now, now, i + 1)
        blob: tuple[object, ...] = ("hot", digest, size, 1, now, body)
        out.append((obj, blob))
    return out


def sqlite_bound(path: Path, n: int, size: int, batch: int) -> float:
    """Objects committed per second in `batch`-row transactions on a fresh SQLite file."""
    rows = _rows(n, size)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(_OBJECTS)
        conn.execute(_INDEX)
        conn.execute(_BLOBS.format(bytes="BLOB") + " WITHOUT ROWID")
        done = 0
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            if time.perf_counter() - t0 > TIME_LIMIT_S:
                break
            group = rows[start : start + batch]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO bound_objects VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                [o for o, _ in group],
            )
            conn.executemany("INSERT INTO bound_blobs VALUES (?,?,?,?,?,?)", [b for _, b in group])
            conn.execute("COMMIT")
            done += len(group)
        return done / (time.perf_counter() - t0)
    finally:
        conn.close()


async def _postgres_bound(url: str, n: int, size: int, batch: int) -> float:
    rows = _rows(n, size)
    conn = await asyncpg.connect(url, timeout=5.0)
    try:
        await conn.execute("SET synchronous_commit = on")
        await conn.execute("DROP TABLE IF EXISTS bound_objects, bound_blobs")
        await conn.execute(_OBJECTS)
        await conn.execute(_INDEX)
        await conn.execute(_BLOBS.format(bytes="BYTEA"))
        done = 0
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            if time.perf_counter() - t0 > TIME_LIMIT_S:
                break
            group = rows[start : start + batch]
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO bound_objects VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
                    [o for o, _ in group],
                )
                await conn.executemany(
                    "INSERT INTO bound_blobs VALUES ($1,$2,$3,$4,$5,$6)", [b for _, b in group]
                )
            done += len(group)
        return done / (time.perf_counter() - t0)
    finally:
        await conn.close()


def postgres_bound(url: str, n: int, size: int, batch: int) -> float:
    """The same on the PostgreSQL database at `url` (its tables are created there)."""
    return asyncio.run(_postgres_bound(url, n, size, batch))
