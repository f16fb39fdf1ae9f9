from __future__ import annotations

from collections.abc import Iterator

import pytest

from pg_databases import fresh_database, server_url_or_skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """A reachable PostgreSQL server (skips locally without one; fails in CI)."""
    return server_url_or_skip()


@pytest.fixture(scope="session")
def postgres_run_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this test run, dropped at its end (tests use schemas in it)."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (several processes may share it), dropped after."""
    with fresh_database(postgres_server_url) as url:
        yield url
