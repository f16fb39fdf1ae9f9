"""asyncpg vs psycopg 3 (async), as measured to choose the PostgreSQL driver (docs/postgres.md).

Needs both drivers, which the project does not install; in a scratch venv:
    python3 -m venv /tmp/drvbench && /tmp/drvbench/bin/pip install "psycopg[binary]" psycopg-pool asyncpg
    /tmp/drvbench/bin/python scripts/driver_bench.py
Talks to the local cluster only; creates and drops the table drv_bench.
"""

import asyncio
import time
import uuid

import asyncpg
from psycopg_pool import AsyncConnectionPool

URL = "postgresql://postgres@127.0.0.1:5432/postgres"
N = 2000


async def setup():
    c = await asyncpg.connect(URL)
    await c.execute(
        "DROP TABLE IF EXISTS drv_bench; CREATE TABLE drv_bench (id uuid primary key, k text, n bigint)"
    )
    await c.close()


async def apg(conc):
    pool = await asyncpg.create_pool(URL, min_size=8, max_size=8)

    async def one(i):
        async with pool.acquire() as c, c.transaction():
            await c.execute("INSERT INTO drv_bench VALUES ($1, $2, $3)", uuid.uuid4(), f"k{i}", i)

    t = time.perf_counter()
    sem = asyncio.Semaphore(conc)

    async def guarded(i):
        async with sem:
            await one(i)

    await asyncio.gather(*(guarded(i) for i in range(N)))
    ins = N / (time.perf_counter() - t)
    t = time.perf_counter()

    async def sel(i):
        async with sem:
            async with pool.acquire() as c:
                await c.fetchrow("SELECT * FROM drv_bench WHERE k = $1", f"k{i}")

    await asyncio.gather(*(sel(i) for i in range(N)))
    s = N / (time.perf_counter() - t)
    await pool.close()
    return ins, s


async def pg3(conc):
    pool = AsyncConnectionPool(URL, min_size=8, max_size=8, open=False)
    await pool.open()
    sem = asyncio.Semaphore(conc)

    async def one(i):
        async with sem, pool.connection() as c:
            await c.execute("INSERT INTO drv_bench VALUES (%s, %s, %s)", (uuid.uuid4(), f"p{i}", i))

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(N)))
    ins = N / (time.perf_counter() - t)

    async def sel(i):
        async with sem:
            async with pool.connection() as c:
                cur = await c.execute("SELECT * FROM drv_bench WHERE k = %s", (f"p{i}",))
                await cur.fetchone()

    t = time.perf_counter()
    await asyncio.gather(*(sel(i) for i in range(N)))
    s = N / (time.perf_counter() - t)
    await pool.close()
    return ins, s


async def main():
    for conc in (1, 16):
        await setup()
        a = await apg(conc)
        await setup()
        b = await pg3(conc)
        print(
            f"concurrency {conc:2d}: asyncpg insert {a[0]:.0f}/s select {a[1]:.0f}/s | psycopg3 insert {b[0]:.0f}/s select {b[1]:.0f}/s | ratio asyncpg/psycopg insert {a[0] / b[0]:.2f} select {a[1] / b[1]:.2f}"
        )
    c = await asyncpg.connect(URL)
    await c.execute("DROP TABLE drv_bench")
    await c.close()


asyncio.run(main())
