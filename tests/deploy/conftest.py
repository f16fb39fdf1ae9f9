"""Fixtures for the deployment files: the repository root and `promtool`."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.debian_tools import debian_tool

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of promtool, from Debian's prometheus (skips locally without it; fails in CI)."""
    return debian_tool("promtool", "prometheus")


@pytest.fixture
def repo() -> Path:
    return REPO
