"""Fixtures for the deployment files: the repository root and `promtool`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APT_TIMEOUT_S = 240


def _install_promtool() -> str | None:
    """Debian's `prometheus` package ships promtool; install it when we may."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "promtool is missing and apt-get is not usable here (not root or not Debian)"
    try:
        for args in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "prometheus"],
        ):
            subprocess.run(
                args,
                check=True,
                capture_output=True,
                timeout=APT_TIMEOUT_S,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"promtool is missing and installing Debian's prometheus failed: {exc}"
    return None if shutil.which("promtool") else "prometheus installed without promtool"


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of promtool (skips locally without it; fails in CI)."""
    path = shutil.which("promtool")
    if path is None:
        why = _install_promtool()
        path = shutil.which("promtool")
        if path is None:
            if os.environ.get("CI") == "true":
                pytest.fail(str(why))
            pytest.skip(str(why))
    return path


@pytest.fixture
def repo() -> Path:
    return REPO
