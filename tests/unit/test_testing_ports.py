"""The test launcher's port choice: no two processes get the same port at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from juststorage import testing


@pytest.fixture
def claims(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(testing, "PORT_CLAIMS", tmp_path / "claims")
    return tmp_path / "claims"


def test_a_claimed_port_is_not_handed_out_again(claims: Path) -> None:
    assert testing._claim_port(25000)
    assert not testing._claim_port(25000)
    assert (claims / "25000").exists()


def test_a_stale_claim_is_taken_over(claims: Path) -> None:
    assert testing._claim_port(25001)
    old = time.time() - testing.PORT_CLAIM_TTL_S - 5
    os.utime(claims / "25001", (old, old))
    assert testing._claim_port(25001)
    assert not testing._claim_port(25001)


def test_processes_choosing_at_once_never_share_a_port(claims: Path) -> None:
    """Four processes choose 150 ports each at the same time, out of a range of 700."""
    script = (
        "import random, sys\n"
        "from pathlib import Path\n"
        "from juststorage import testing\n"
        "testing.PORT_CLAIMS = Path(sys.argv[1])\n"
        "testing.LISTEN_PORTS = range(24000, 24700)\n"
        "print(' '.join(str(testing.free_port()) for _ in range(150)))\n"
    )
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(claims)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    chosen = [int(port) for run in runs for port in run.communicate(timeout=60)[0].split()]
    assert len(chosen) == 600
    assert len(set(chosen)) == 600
