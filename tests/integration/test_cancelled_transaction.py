"""A transaction cancelled by an anyio cancel scope while it runs gives its
connection back rolled back, on a real SQLite file and a real PostgreSQL. anyio
cancels every await inside a cancelled scope, the clean-up's too: before the fix,
PostgreSQL's ROLLBACK was itself cancelled, the connection was neither rolled back
nor returned, and its row locks stayed taken by a session "idle in transaction"
for good, so the next write of the same row waited forever (a backup's hold
renewed as the backup ended, then the hold's release)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from juststorage.bootstrap import Services, build
from juststorage.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = build(Settings(data_dir=tmp_path / "data", database_url=database_url))
    await built.metadata.migrate()
    try:
        yield built
    finally:
        await built.metadata.close()


async def test_a_cancelled_transaction_leaves_no_lock_behind(services: Services) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)
    async with services.metadata.transaction() as uow:
        await uow.holds.take("h1", "me", later)
        await uow.commit()

    with anyio.move_on_after(0.3) as scope:
        async with services.metadata.transaction() as uow:
            assert await uow.holds.renew("h1", later + timedelta(minutes=1))  # locks the row
            await anyio.sleep(30)  # cancelled here, the transaction still open
    assert scope.cancelled_caught

    # The row's lock went with the rollback: another transaction changes it at once.
    with anyio.fail_after(10):
        async with services.metadata.transaction() as uow:
            await uow.holds.release("h1")
            await uow.commit()


@pytest.mark.postgres
async def test_a_transaction_cancelled_inside_a_statement_leaves_no_lock_behind(
    postgres_url: str, tmp_path: Path
) -> None:
    """The cancel lands while asyncpg waits for a statement's answer (the UPDATE
    queues behind another session's lock on the row)."""
    import asyncpg

    built = build(Settings(data_dir=tmp_path / "data", database_url=postgres_url))
    await built.metadata.migrate()
    later = datetime.now(UTC) + timedelta(minutes=5)
    other = await asyncpg.connect(postgres_url)
    try:
        async with built.metadata.transaction() as uow:
            await uow.holds.take("h1", "me", later)
            await uow.holds.take("h2", "me", later)
            await uow.commit()
        await other.execute("BEGIN")
        await other.execute("UPDATE backup_holds SET holder = 'other' WHERE id = 'h1'")

        with anyio.move_on_after(0.5) as scope:
            async with built.metadata.transaction() as uow:
                await uow.holds.renew("h2", later)  # locks h2
                await uow.holds.renew("h1", later)  # waits for `other`: cancelled here
        assert scope.cancelled_caught
        await other.execute("COMMIT")

        with anyio.fail_after(10):
            async with built.metadata.transaction() as uow:
                await uow.holds.release("h2")
                await uow.holds.release("h1")
                await uow.commit()
        stuck = await other.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND state = 'idle in transaction'"
        )
        assert stuck == 0
    finally:
        await other.close()
        # Before the fix the leaked connection kept the pool from closing: fail, not hang.
        with anyio.fail_after(15):
            await built.metadata.close()
