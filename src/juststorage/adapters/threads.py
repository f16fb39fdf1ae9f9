"""Blocking calls (fsync, SQLite) off the event loop, with as little overhead as possible.

`anyio.to_thread.run_sync` costs tens of microseconds of event-loop time per call
(capacity limiter, run-vars, token lookups), and a 4 KiB upload makes several
such calls (the py-spy profile is in docs/performance.md).
This goes straight to `loop.run_in_executor` on one pool per process.

Like anyio's default, a cancelled caller still waits for its call to finish
before the cancellation propagates: the caller's cleanup (closing a file
descriptor, rolling back) must never race a thread still using the resource.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_MAX_THREADS = 32  # ~ anyio's default limiter (40); fsyncs are what wait in them
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def _executor() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():  # a forked worker gets its own
        _pool = ThreadPoolExecutor(_MAX_THREADS, thread_name_prefix="juststorage-io")
        _pool_pid = os.getpid()
    return _pool


async def run_sync(fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in a worker thread; its result, or its exception."""
    return await run_in(_executor(), fn, *args)


async def run_in(executor: Executor, fn: Callable[..., T], *args: object) -> T:
    """`fn(*args)` in `executor` (e.g. one thread that alone uses a connection); as
    `run_sync`, a cancelled caller waits for the call to finish."""
    future = asyncio.get_running_loop().run_in_executor(executor, fn, *args)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue  # cancelled again: still wait for the thread
            except Exception:
                break  # the call failed; the cancellation is what the caller sees
        raise
