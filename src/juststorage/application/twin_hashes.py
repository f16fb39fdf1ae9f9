"""The same bytes into two SHA-256 states at once, on two cores.

A multipart part's bytes feed two states: the part's own digest (SPEC §8.2 returns
it) and the session's running hash of the whole object. `hashlib` releases the GIL
while it hashes a buffer of more than 2 KiB, so the second state, fed on another
thread, costs the wall time of one pass instead of two in a row wherever a core is
free. One small pool per process (a forked worker makes its own); its tasks wait
on nothing, so a thread waiting for one can never starve it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from juststorage.application.blob_ports import Hasher

Bytes = bytes | bytearray | memoryview

_THREADS = 4  # one per part being hashed at once; more wait their turn
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def update_beside(hasher: Hasher, data: Bytes) -> Future[None]:
    """Start `hasher.update(data)` on another thread; the caller must wait for the
    future (`result()`) before it touches `hasher` or changes `data` again."""
    global _pool, _pool_pid
    with _lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="juststorage-hash")
            _pool_pid = os.getpid()
        return _pool.submit(hasher.update, data)


def update_both(first: Hasher, second: Hasher, data: Bytes) -> None:
    """`first.update(data)` here and `second.update(data)` beside it; returns when
    both have the bytes."""
    beside = update_beside(second, data)
    try:
        first.update(data)
    finally:
        beside.result()
