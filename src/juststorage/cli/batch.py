"""Many transfers, `parallel` at a time, one combined progress line, every failure told.

A tree command turns its plan into jobs (one file, one object) and hands them
here. Jobs run in threads sharing one SDK client (its connection pool is
thread-safe); at most `parallel` run at once and only a few more are queued, so a
tree of a million files does not hold a million pending futures. A job that fails
is reported on stderr at once (`failed: WHAT: why`) and the others go on; at the
end the command fails with the first failure's exit status (its error code, as
for one file), saying how many failed. An error that maps to no exit status is a
bug and is raised as it is.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from juststorage.cli.errors import CommandFailed, handle_errors
from juststorage.cli.progress import Progress

Job = Callable[[], str | None]
"""One transfer; returns the line to print when it is done (None: print nothing)."""


@dataclass(frozen=True, slots=True)
class Task:
    what: str  # names the file or object in a failure message
    job: Job


def failure_of(exc: Exception) -> CommandFailed | None:
    """The exit-status failure `handle_errors()` makes of `exc`, or None for a bug."""
    try:
        with handle_errors():
            raise exc
    except CommandFailed as failure:
        return failure
    except Exception:
        return None


def run_tasks(tasks: Iterable[Task], parallel: int, bar: Progress) -> int:
    """Run every task; the number done. Raises the first failure once all have run."""
    failures: list[CommandFailed] = []
    done = 0
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=parallel)
    pending: dict[concurrent.futures.Future[str | None], Task] = {}

    def collect(finished: set[concurrent.futures.Future[str | None]]) -> None:
        nonlocal done
        for future in finished:
            task = pending.pop(future)
            bar.file_done()
            error = future.exception()
            if error is None:
                done += 1
                line = future.result()
                if line is not None:
                    bar.message(line)
                continue
            if not isinstance(error, Exception):
                raise error
            failure = failure_of(error)
            if failure is None:
                raise error
            failures.append(failure)
            bar.message(f"failed: {task.what}: {failure.format_message()}", err=True)

    try:
        for task in tasks:
            while len(pending) >= 2 * parallel:
                finished, _ = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED
                )
                collect(finished)
            pending[pool.submit(task.job)] = task
        while pending:
            finished, _ = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED
            )
            collect(finished)
    finally:
        # On Ctrl-C or a bug, queued jobs are dropped; running ones end with the process.
        pool.shutdown(wait=not pending, cancel_futures=True)
    if failures:
        first = failures[0]
        total = done + len(failures)
        raise type(first)(f"{len(failures)} of {total} failed; the first: {first.format_message()}")
    return done
