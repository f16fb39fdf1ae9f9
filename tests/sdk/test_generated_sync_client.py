"""The blocking client is generated from the async one; the committed copy must match."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

UNASYNC = Path(__file__).resolve().parents[2] / "sdks" / "python" / "unasync.py"


def test_sync_client_is_generated_from_the_async_one() -> None:
    result = subprocess.run(
        [sys.executable, str(UNASYNC), "--check"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
