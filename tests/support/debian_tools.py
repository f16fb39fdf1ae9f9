"""Debian tools the tests drive (promtool, nginx): found, or installed when we may.

Locally a missing tool skips its tests, saying why; in CI (CI=true) it fails them.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

APT_TIMEOUT_S = 240


def _install(package: str) -> str | None:
    """Install a Debian package; None on success, else why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{package} is missing and apt-get is not usable here (not root or not Debian)"
    try:
        for args in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        ):
            subprocess.run(
                args,
                check=True,
                capture_output=True,
                timeout=APT_TIMEOUT_S,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"installing Debian's {package} failed: {exc}"
    return None


def debian_tool(binary: str, package: str) -> str:
    """The path of `binary`, installing `package` if needed (skips locally without it;
    fails in CI)."""
    path = shutil.which(binary)
    if path is None:
        why = _install(package) or f"{package} installed without {binary}"
        path = shutil.which(binary)
        if path is None:
            if os.environ.get("CI") == "true":
                pytest.fail(why)
            pytest.skip(why)
    return path
