"""LocalProcessLiveness on real processes of this machine."""

from __future__ import annotations

import subprocess
import sys

from juststorage.adapters.processes import LocalProcessLiveness, _start_time


def test_this_process_is_alive() -> None:
    liveness = LocalProcessLiveness()
    assert not liveness.is_dead(liveness.identity())


def test_a_process_that_ended_is_dead_and_a_reused_pid_does_not_fool_it() -> None:
    liveness = LocalProcessLiveness()
    machine = liveness.identity().rsplit(":", 2)[0]
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    owner = f"{machine}:{child.pid}:{_start_time(child.pid)}"
    assert not liveness.is_dead(owner)
    # Same PID, another start time: a different process that reused the number.
    assert liveness.is_dead(f"{machine}:{child.pid}:1")
    assert child.stdin is not None
    child.stdin.close()
    child.wait(timeout=10)
    assert liveness.is_dead(owner)


def test_owners_elsewhere_or_malformed_are_never_declared_dead() -> None:
    liveness = LocalProcessLiveness()
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    started = _start_time(ended.pid)
    ended.wait(timeout=10)
    # Dead here, but named by another machine (or PID namespace): not ours to judge.
    for owner in (
        f"another-boot-id/pid:[4026531836]:{ended.pid}:{started}",
        f"unknown/unknown:{ended.pid}:{started}",
        "no colons at all",
        "machine:notapid:1",
        "",
    ):
        assert not liveness.is_dead(owner), owner
