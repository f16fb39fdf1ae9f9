"""Browser tests: Debian's chromium, headless, driven by the playwright package.

`scripts/ensure-chromium.sh` (run by `make test`) installs chromium when it is
missing. Without it (or without playwright) these tests skip locally and fail in
CI (`CI=true`), where skipping them would hide a broken console. Playwright never
downloads a browser here: it launches /usr/bin/chromium with a fresh profile.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _skip_or_fail(problem: str) -> None:
    if _in_ci():
        pytest.fail(f"CI=true: {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless chromium per test module. `launch` gives it a new, empty profile
    directory of its own (removed at the end); each test opens fresh contexts in it."""
    if not CHROMIUM.exists():
        _skip_or_fail("browser tests need /usr/bin/chromium (scripts/ensure-chromium.sh)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("browser tests need the playwright package (make install)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()
