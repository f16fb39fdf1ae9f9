"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh metadata database of each backend: a SQLite file in the test's
    directory, or a PostgreSQL database of its own (skips locally without one)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/meta.db"
    else:
        yield request.getfixturevalue("postgres_url")
