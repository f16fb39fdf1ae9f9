"""asyncpg vs psycopg 3 (async), as measured to choose the PostgreSQL driver (docs/postgres.md).

Both drivers come with `make install` (psycopg in the bench extra):

    .venv/bin/python scripts/driver_bench.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
        [--n 2000]

Talks to the local cluster only; creates and drops the table drv_bench.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
from psycopg_pool import AsyncConnectionPool

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Run:
    url: str
    n: int  # operations per measurement


async def reset_table(run: Run) -> None:
    conn = await asyncpg.connect(run.url)
    await conn.execute("DROP TABLE IF EXISTS drv_bench")
    await conn.execute("CREATE TABLE drv_bench (id uuid PRIMARY KEY, k text, n bigint)")
    await conn.close()


async def rate(run: Run, concurrency: int, operation: Callable[[int], Awaitable[None]]) -> float:
    """Operations per second of run.n calls, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def guarded(i: int) -> None:
        async with gate:
            await operation(i)

    started = time.perf_counter()
    await asyncio.gather(*(guarded(i) for i in range(run.n)))
    return run.n / (time.perf_counter() - started)


async def with_asyncpg(run: Run, concurrency: int) -> tuple[float, float]:
    pool = await asyncpg.create_pool(run.url, min_size=8, max_size=8)

    async def insert(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO drv_bench VALUES ($1, $2, $3)", uuid.uuid4(), f"k{i}", i
            )

    async def select(i: int) -> None:
        async with pool.acquire() as conn:
            await conn.fetchrow("SELECT * FROM drv_bench WHERE k = $1", f"k{i}")

    result = (await rate(run, concurrency, insert), await rate(run, concurrency, select))
    await pool.close()
    return result


async def with_psycopg(run: Run, concurrency: int) -> tuple[float, float]:
    pool = AsyncConnectionPool(run.url, min_size=8, max_size=8, open=False)
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

    result = (await rate(run, concurrency, insert), await rate(run, concurrency, select))
    await pool.close()
    return result


async def compare(run: Run) -> None:
    for concurrency in (1, 16):
        await reset_table(run)
        apg = await with_asyncpg(run, concurrency)
        await reset_table(run)
        pg3 = await with_psycopg(run, concurrency)
        print(
            f"concurrency {concurrency:2d}: asyncpg insert {apg[0]:.0f}/s select {apg[1]:.0f}/s"
            f" | psycopg3 insert {pg3[0]:.0f}/s select {pg3[1]:.0f}/s"
            f" | asyncpg/psycopg insert {apg[0] / pg3[0]:.2f} select {apg[1] / pg3[1]:.2f}"
        )
    conn = await asyncpg.connect(run.url)
    await conn.execute("DROP TABLE drv_bench")
    await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="a database on 127.0.0.1")
    parser.add_argument("--n", type=int, default=2000, help="operations per measurement")
    args = parser.parse_args()
    if urlsplit(args.url).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing a non-loopback database: {args.url!r}")
    asyncio.run(compare(Run(args.url, args.n)))


if __name__ == "__main__":
    main()
