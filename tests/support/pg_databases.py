"""Fresh PostgreSQL databases for tests, created and dropped around each use.

`JUSTSTORAGE_TEST_DATABASE_URL` names a server (any database on it, e.g.
`postgresql://postgres@127.0.0.1:5432/postgres`); `make test` sets it when a local
cluster is installed. Without it the PostgreSQL tests skip locally, and fail in
CI (`CI=true`), where skipping them would hide a broken backend.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

ENV = "JUSTSTORAGE_TEST_DATABASE_URL"
T = TypeVar("T")


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in a thread of its own (callers may be inside a loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def server_url_or_skip() -> str:
    """The admin URL, after checking that the server answers; skip or fail otherwise."""
    url = os.environ.get(ENV, "")
    problem = None
    if not url:
        problem = f"PostgreSQL tests need {ENV} (make test sets it when PostgreSQL is installed)"
    else:
        try:
            _run(_ping(url))
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            problem = f"PostgreSQL at {_redacted(url)} does not answer: {exc}"
    if problem is not None:
        if _in_ci():
            pytest.fail(f"CI=true: {problem}", pytrace=False)
        pytest.skip(problem)
    return url


async def _ping(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    await conn.close()


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new empty database on the server; dropped (connections and all) afterwards."""
    name = f"juststorage_test_{uuid.uuid4().hex[:16]}"
    _run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_url, name)
    finally:
        _run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
