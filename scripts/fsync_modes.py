"""Durable 4 KiB file commits three ways, on the file system of --dir (default /tmp):
sequential, 16 threads at once, and 16 files then one syncfs. docs/performance.md
quotes it (why the group commit publishes outside any lock; why not syncfs).

    .venv/bin/python scripts/fsync_modes.py [--n 400] [--dir /tmp]

A commit is what the blob store does: write + fsync a temp file, link it to a
`<hh>/<hex>` name, fsync that directory, unlink the temp name. The files go to a
fresh temp directory, removed at the end.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def commit(root: str, i: int, durable: bool = True) -> None:
    body = os.urandom(4096)
    digest = hashlib.sha256(body).hexdigest()
    temp = os.path.join(root, f"{i}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    os.write(fd, body)
    if durable:
        os.fsync(fd)
    os.close(fd)
    folder = os.path.join(root, digest[:2])
    os.makedirs(folder, exist_ok=True)
    os.link(temp, os.path.join(folder, digest))
    if durable:
        dir_fd = os.open(folder, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    os.unlink(temp)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--dir", default="/tmp")
    args = parser.parse_args()
    n, root = args.n, tempfile.mkdtemp(prefix="fsync-modes-", dir=args.dir)
    try:
        started = time.perf_counter()
        for i in range(n):
            commit(root, i)
        sequential = n / (time.perf_counter() - started)
        started = time.perf_counter()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: commit(root, i), range(n, 2 * n)))
        threaded = n / (time.perf_counter() - started)
        started = time.perf_counter()
        root_fd = os.open(root, os.O_RDONLY)
        for batch in range(n // 16):
            for i in range(16):
                commit(root, 2 * n + batch * 16 + i, durable=False)
            _libc.syncfs(root_fd)
        os.close(root_fd)
        batched = (n // 16 * 16) / (time.perf_counter() - started)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"sequential {sequential:.0f}/s; 16 threads {threaded:.0f}/s;"
        f" 16 files + one syncfs {batched:.0f}/s"
    )


if __name__ == "__main__":
    main()
