"""PostgreSQL for the bench: one fresh database per run, created and dropped by this process.

The databases are named `juststorage_bench_<random hex>`; every one created here is
dropped by `drop_all()` (called from a `finally` by `Bench.close()`), with `WITH (FORCE)` so a
server that did not stop cleanly cannot keep it alive. Only 127.0.0.1 is accepted.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_S = 5.0


def admin_url() -> str:
    return os.environ.get("JUSTSTORAGE_BENCH_PG_URL", DEFAULT_ADMIN_URL)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class Postgres:
    """The local cluster, if reachable: `reason` says why not when it is not."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or admin_url()
        self.created: list[str] = []
        self.reason = ""
        self.version = ""
        host = urlsplit(self.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            self.reason = f"only 127.0.0.1 is benchmarked, not {host}"
            return
        try:
            self.version = asyncio.run(self._version())
        except Exception as exc:  # any failure means: skip the PostgreSQL rows, say why
            self.reason = (
                f"PostgreSQL not reachable at {self.url} ({type(exc).__name__}: {exc}); "
                "scripts/ensure-postgres.sh starts the local cluster"
            )[:240]

    @property
    def available(self) -> bool:
        return not self.reason

    async def _connect(self, url: str | None = None) -> asyncpg.Connection:
        return await asyncpg.connect(url or self.url, timeout=CONNECT_TIMEOUT_S)

    async def _version(self) -> str:
        conn = await self._connect()
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    def create_database(self) -> str:
        """A fresh empty database; returns its URL (the server migrates it at start)."""
        name = f"juststorage_bench_{uuid.uuid4().hex[:16]}"

        async def create() -> None:
            conn = await self._connect()
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        self.created.append(name)
        return with_database(self.url, name)

    def drop_all(self) -> list[str]:
        """Drop every database this process created; returns the names dropped."""

        async def drop() -> list[str]:
            dropped = []
            conn = await self._connect()
            try:
                for name in list(self.created):
                    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    self.created.remove(name)
                    dropped.append(name)
            finally:
                await conn.close()
            return dropped

        if not self.created:
            return []
        return asyncio.run(drop())


def analyze(url: str) -> None:
    """ANALYZE the database at `url`, as autovacuum would soon after a bulk load."""

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(run())


def backend_pids(database: str) -> list[int]:
    """PIDs of the PostgreSQL backends connected to `database`, from their process titles
    ("postgres: <user> <database> <client> <state>"); read-only /proc access."""
    pids = []
    needle = f" {database} ".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and needle in cmdline:
            pids.append(int(entry))
    return pids
