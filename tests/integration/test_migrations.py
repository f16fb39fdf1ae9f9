"""Upgrading a database part-way migrated (as an older release left it) gives the
schema of a fresh one, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from juststorage.adapters.metadata import postgres, sqlite
from juststorage.adapters.metadata.migrations import migrations_for
from juststorage.adapters.metadata.postgres import PostgresMetadataStore
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.bootstrap import SystemClock
from support.pg_databases import fresh_database

pytestmark = pytest.mark.anyio

Store = SqliteMetadataStore | PostgresMetadataStore
OLDER = 2  # the release before usage counters and blob locations

_PG_SCHEMA = [
    "SELECT table_name, column_name, data_type, is_nullable, column_default,"
    " collation_name, ordinal_position FROM information_schema.columns"
    " WHERE table_schema = 'public' ORDER BY 1, 2",
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
    " WHERE connamespace = 'public'::regnamespace ORDER BY 1",
    "SELECT sequencename, data_type FROM pg_sequences ORDER BY 1",
    "SELECT version, name FROM schema_migrations ORDER BY 1",
]


async def _migrate(store: Store, module: object, upto: int | None) -> list[str]:
    if upto is None:
        return await store.migrate()
    with pytest.MonkeyPatch.context() as patch:
        every = migrations_for
        patch.setattr(
            module, "migrations_for", lambda b: [m for m in every(b) if m.version <= upto]
        )
        return await store.migrate()


def _sqlite_schema(path: Path) -> object:
    conn = sqlite3.connect(path)
    try:
        return [
            conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall(),
            conn.execute("SELECT version, name FROM schema_migrations").fetchall(),
        ]
    finally:
        conn.close()


async def _pg_schema(url: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return [[tuple(r) for r in await conn.fetch(sql)] for sql in _PG_SCHEMA]
    finally:
        await conn.close()


async def _upgrade_and_create(
    make: Callable[[str], Store], module: object, older_name: str, fresh_name: str
) -> None:
    """Migrate `older_name` to OLDER, then to the end; `fresh_name` at once.

    Both use today's rendering of the migrations: that a database made by an older
    release (from the per-dialect files) upgrades the same way rests on the
    fingerprints of tests/unit/test_migrations.py, which hold every released
    migration's statements to what was shipped."""
    older, fresh = make(older_name), make(fresh_name)
    try:
        assert await _migrate(older, module, OLDER) == ["0001_initial", "0002_gc"]
        upgraded = await _migrate(older, module, None)
        everything = await _migrate(fresh, module, None)
        assert upgraded == everything[OLDER:]
        assert await older.migrate() == []
    finally:
        await older.close()
        await fresh.close()


async def test_sqlite_upgrade_gives_a_fresh_schema(tmp_path: Path) -> None:
    older, fresh = tmp_path / "older.db", tmp_path / "fresh.db"
    await _upgrade_and_create(
        lambda name: SqliteMetadataStore(Path(name), SystemClock()), sqlite, str(older), str(fresh)
    )
    assert _sqlite_schema(older) == _sqlite_schema(fresh)


async def test_postgres_upgrade_gives_a_fresh_schema(postgres_server_url: str) -> None:
    with fresh_database(postgres_server_url) as older, fresh_database(postgres_server_url) as fresh:
        await _upgrade_and_create(
            lambda url: PostgresMetadataStore(url, SystemClock()), postgres, older, fresh
        )
        assert await _pg_schema(older) == await _pg_schema(fresh)
