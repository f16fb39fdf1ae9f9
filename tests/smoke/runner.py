"""Run a bench module or a script the way a person does: this venv's Python, from the
repository root, with a time limit."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300


def run_python(
    *args: str, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python <args>` in the repository root; the result, whatever its exit code."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
