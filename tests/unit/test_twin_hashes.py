"""Two SHA-256 states fed the same bytes at once (application/twin_hashes.py)."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from juststorage.application import twin_hashes


def test_both_states_get_every_byte_in_order() -> None:
    chunks = [os.urandom(n) for n in (0, 1, 2047, 2048, 1 << 20, 5)]
    first, second = hashlib.sha256(), hashlib.sha256()
    for chunk in chunks:
        twin_hashes.update_both(first, second, chunk)
    whole = hashlib.sha256(b"".join(chunks)).hexdigest()
    assert first.hexdigest() == whole
    assert second.hexdigest() == whole


def test_the_second_state_is_fed_on_another_thread() -> None:
    seen: list[str] = []

    class Recording:
        def update(self, data: bytes) -> None:
            seen.append(threading.current_thread().name)

    twin_hashes.update_both(hashlib.sha256(), Recording(), b"x" * 4096)  # type: ignore[arg-type]
    assert seen and seen[0].startswith("juststorage-hash")
    assert seen[0] != threading.current_thread().name


class Broken:
    def update(self, data: bytes) -> None:
        raise ValueError("broken")


def test_a_failing_second_state_fails_the_call() -> None:
    with pytest.raises(ValueError, match="broken"):
        twin_hashes.update_both(hashlib.sha256(), Broken(), b"data")  # type: ignore[arg-type]


def test_a_failing_first_state_still_waits_for_the_second() -> None:
    release = threading.Event()
    done = threading.Event()

    class Slow:
        def update(self, data: bytes) -> None:
            release.wait(5)
            done.set()

    def fail_later() -> None:
        release.set()

    timer = threading.Timer(0.05, fail_later)
    timer.start()
    with pytest.raises(ValueError, match="broken"):
        twin_hashes.update_both(Broken(), Slow(), b"data")  # type: ignore[arg-type]
    # The call returned only after the second state had its bytes: nobody touches a
    # state that another thread is still feeding.
    assert done.is_set()
    timer.join()
