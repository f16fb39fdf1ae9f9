"""PostgreSQL's time limits: a request's statement is cut short (503), its COMMIT
gets more time (a WAL fsync or a synchronous standby may be slow), the CLI's long
passes more still. Scaled down: the store's limits are set small for the test."""

from __future__ import annotations

import asyncio
import time

import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata import postgres
from juststorage.adapters.metadata.postgres import PostgresMetadataStore
from juststorage.domain.errors import Unavailable

pytestmark = pytest.mark.postgres

STATEMENT_S = 0.3  # the request statement limit of the store under test
SLOW_S = 0.6  # a statement or COMMIT this slow: past the statement limit

# A deferred constraint trigger runs at COMMIT: a commit that takes SLOW_S.
_SLOW_COMMIT_SQL = f"""
CREATE TABLE slow_commit (n INTEGER);
CREATE FUNCTION sleep_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep({SLOW_S}); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON slow_commit
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION sleep_at_commit();
"""


async def _setup(store: PostgresMetadataStore) -> None:
    async with store.transaction() as uow:
        await uow.session.execute(_SLOW_COMMIT_SQL)  # no parameters: one script
        await uow.commit()


async def _slow_commit(store: PostgresMetadataStore) -> float:
    async with store.transaction() as uow:
        await uow.session.execute("INSERT INTO slow_commit VALUES (1)")
        started = time.monotonic()
        await uow.commit()
        return time.monotonic() - started


async def _slow_statement(store: PostgresMetadataStore) -> None:
    async with store.snapshot() as view:
        await view.session.fetchone(f"SELECT pg_sleep({SLOW_S})")


def test_commit_has_more_time_than_a_statement(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "_COMMIT_TIMEOUT_S", 3 * SLOW_S)

    async def scenario() -> None:
        store = PostgresMetadataStore(postgres_url, FakeClock(), statement_timeout_s=STATEMENT_S)
        try:
            await _setup(store)
            with pytest.raises(Unavailable):
                await _slow_statement(store)  # a request's statement: cut short
            assert await _slow_commit(store) >= SLOW_S  # COMMIT: allowed to finish
            async with store.snapshot() as view:
                assert await view.session.fetchone("SELECT count(*) FROM slow_commit") == (1,)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_long_statements_are_not_cut_short(postgres_url: str) -> None:
    """The CLI's store (gc, fsck, migrate-blobs): a statement may outlast a request's."""

    async def scenario() -> None:
        store = PostgresMetadataStore(postgres_url, FakeClock(), statement_timeout_s=3 * SLOW_S)
        try:
            await _slow_statement(store)
        finally:
            await store.close()

    asyncio.run(scenario())
