"""Run one function over a list of items with at most N in flight.

`run_async` (asyncio tasks) serves `AsyncClient`; `run_threads` (threads) serves
the blocking `Client`, which `unasync.py` points at it. The first failure stops
the others taking new items, waits for those in flight, and is raised.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


async def run_async(count: int, items: Sequence[T], work: Callable[[T], Awaitable[None]]) -> None:
    queue = iter(items)

    async def worker() -> None:
        for item in queue:  # one shared iterator: each item is taken once
            await work(item)

    # asyncio.TaskGroup would do this, but it needs Python 3.11.
    tasks = [asyncio.ensure_future(worker()) for _ in range(max(1, min(count, len(items))))]
    failure: BaseException | None = None
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in tasks if t in done and not t.cancelled() and t.exception()]
        failure = failed[0].exception() if failed else None
    finally:
        for task in tasks:  # a failure (or our own cancellation) stops the other workers
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if failure is not None:
        raise failure


def run_threads(count: int, items: Sequence[T], work: Callable[[T], None]) -> None:
    queue = iter(items)
    lock = threading.Lock()
    failed = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        while not failed.is_set():
            with lock:
                item = next(queue, None)
                if item is None:
                    return
            try:
                work(item)
            except BaseException as exc:
                errors.append(exc)
                failed.set()
                return

    threads = [
        threading.Thread(target=worker, daemon=True) for _ in range(max(1, min(count, len(items))))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
