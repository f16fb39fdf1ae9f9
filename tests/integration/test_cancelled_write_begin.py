"""A write transaction cancelled while its BEGIN waits for another process's lock
(SQLite: the wait runs in a worker thread) leaves no transaction open on the
writer connection. Before the fix, the BEGIN that succeeded in the thread after
the cancellation stayed open with the store's write lock released: the next
transaction failed ("cannot start a transaction within a transaction") and the
write lock of the file stayed taken, so a restore's loader, waiting for it,
failed. A restore cancels its GC hold renewal when the copy ends, which is how it
met this (application/restore.py). SQLite only: PostgreSQL's BEGIN never waits
for a lock."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from juststorage.bootstrap import build
from juststorage.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_write_cancelled_while_begin_waits_leaves_no_transaction(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/meta.db"
    services = build(Settings(data_dir=tmp_path, database_url=url))
    await services.metadata.migrate()
    other = sqlite3.connect(tmp_path / "meta.db", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process's write lock

        async def write() -> None:
            async with services.metadata.transaction() as uow:
                await uow.commit()

        task = asyncio.create_task(write())
        await asyncio.sleep(0.3)  # its BEGIN now waits in a worker thread
        task.cancel()
        await asyncio.sleep(0.05)
        other.execute("COMMIT")  # the waiting BEGIN succeeds after the cancellation
        with pytest.raises(asyncio.CancelledError):
            await task
        # The writer holds no transaction: the file's write lock is free and the
        # next transaction of this store begins and commits.
        other.execute("BEGIN IMMEDIATE")
        other.execute("COMMIT")
        async with asyncio.timeout(5):
            await write()
    finally:
        other.close()
        await services.metadata.close()
