"""asyncpg vs psycopg 3 (async), as measured to choose the PostgreSQL driver (docs/postgres.md).

Needs both drivers, which the project does not install; in a scratch venv:

    python3 -m venv /tmp/drvbench
    /tmp/drvbench/bin/pip install "psycopg[binary]" psycopg-pool asyncpg
    /tmp/drvbench/bin/python scripts/driver_bench.py

Talks to the local cluster only; creates and drops the table drv_bench.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
from psycopg_pool import AsyncConnectionPool

URL = "postgresql://postgres@127.0.0.1:5432/postgres"
N = 2000


async def reset_table() -> None:
    conn = await asyncpg.connect(URL)
    await conn.execute("DROP TABLE IF EXISTS drv_bench")
    await conn.execute("CREATE TABLE drv_bench (id uuid PRIMARY KEY, k text, n bigint)")
    await conn.close()


async def rate(concurrency: int, operation: Callable[[int], Awaitable[None]]) -> float:
    """Operations per second of N calls, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> None:
        async with gate:
            await operation(i)

    started = time.perf_counter()
    await asyncio.gather(*(guarded(i) for i in range(N)))
    return N / (time.perf_counter() - started)


async def with_asyncpg(concurrency: int) -> tuple[float, float]:
    pool = await asyncpg.create_pool(URL, min_size=8, max_size=8)

    async def insert(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO drv_bench VALUES ($1, $2, $3)", uuid.uuid4(), f"k{i}", i
            )

    async def select(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.fetchrow("SELECT * FROM drv_bench WHERE k = $1", f"k{i}")

    result = (await rate(concurrency, insert), await rate(concurrency, select))
    await pool.close()
    return result


async def with_psycopg(concurrency: int) -> tuple[float, float]:
    pool = AsyncConnectionPool(URL, min_size=8, max_size=8, open=False)
    await pool.open()

    async def insert(i: int) -> None:
        async with pool.connection() as conn:
            await conn.execute(
                "INSERT INTO drv_bench VALUES (%s, %s, %s)", (uuid.uuid4(), f"p{i}", i)
            )

    async def select(i: int) -> None:
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT * FROM drv_bench WHERE k = %s", (f"p{i}",))
            await cursor.fetchone()

    result = (await rate(concurrency, insert), await rate(concurrency, select))
    await pool.close()
    return result


async def main() -> None:
    for concurrency in (1, 16):
        await reset_table()
        apg = await with_asyncpg(concurrency)
        await reset_table()
        pg3 = await with_psycopg(concurrency)
        print(
            f"concurrency {concurrency:2d}: asyncpg insert {apg[0]:.0f}/s select {apg[1]:.0f}/s"
            f" | psycopg3 insert {pg3[0]:.0f}/s select {pg3[1]:.0f}/s"
            f" | asyncpg/psycopg insert {apg[0] / pg3[0]:.2f} select {apg[1] / pg3[1]:.2f}"
        )
    conn = await asyncpg.connect(URL)
    await conn.execute("DROP TABLE drv_bench")
    await conn.close()


if __name__ == "__main__":
    asyncio.run(main())
