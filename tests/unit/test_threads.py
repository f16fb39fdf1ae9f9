"""adapters.threads.run_sync: results, errors, and a cancelled caller waiting for its thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from juststorage.adapters import threads

pytestmark = pytest.mark.anyio


async def test_returns_the_result_and_raises_the_error() -> None:
    assert await threads.run_sync(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        await threads.run_sync(lambda: 1 / 0)


async def test_runs_off_the_event_loop_thread() -> None:
    assert await threads.run_sync(threading.get_ident) != threading.get_ident()


async def test_a_cancelled_caller_waits_until_the_call_has_finished() -> None:
    finished: list[float] = []

    def slow() -> None:
        time.sleep(0.3)
        finished.append(time.monotonic())

    task = asyncio.ensure_future(threads.run_sync(slow))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancellation reached the caller only once the thread was done with `slow`.
    assert finished
