"""Where a small upload's time goes, in-process (no HTTP): uploads/s and the mean
time of each stage, for 16 concurrent 4 KiB uploads through the `Uploader`.

    .venv/bin/python scripts/profile_uploads.py [--n 2000] [--registered] [--alone]
        [--database-url postgresql://postgres@127.0.0.1:5432/<db>]

`--registered` sends no declared size (every upload writes its WRITING row first);
`--alone` commits each upload in its own transaction (no group commit). The data
directory is a fresh temp dir under /tmp, removed at the end. docs/performance.md
quotes its output.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import resource
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from juststorage.adapters.blobs import filesystem_staging
from juststorage.application import commits
from juststorage.application.uploads import UploadRequest
from juststorage.bootstrap import build, build_uploader, start
from juststorage.config import load_settings
from juststorage.domain.model import Namespace, ObjectKey, TenantId

TOTALS: dict[str, float] = collections.defaultdict(float)
COUNTS: collections.Counter[str] = collections.Counter()


def timed(owner: Any, name: str, label: str) -> None:
    """Wrap the coroutine method `owner.name` to add its duration to TOTALS[label]."""
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            TOTALS[label] += time.perf_counter() - started
            COUNTS[label] += 1

    setattr(owner, name, wrapper)


async def run(args: argparse.Namespace) -> None:
    data_dir = tempfile.mkdtemp(prefix="profile-uploads-", dir="/tmp")
    environ = {"JUSTSTORAGE_DATA_DIR": data_dir}
    if args.database_url:
        environ["DATABASE_URL"] = args.database_url
    services = build(load_settings(environ))
    await start(services)
    bodies = [os.urandom(4096) for _ in range(args.n)]
    indices = iter(range(args.n))

    async def body(data: bytes) -> AsyncIterator[bytes]:
        yield data

    async def one(i: int) -> None:
        request = UploadRequest(
            TenantId("acme"),
            Namespace("profile"),
            ObjectKey(f"k{i:06d}"),
            declared_size=None if args.registered else 4096,
        )
        uploader = services.uploader
        if args.alone:  # an uploader of its own: its own committer, a commit alone
            uploader = build_uploader(
                services.settings,
                services.metadata,
                services.blobs,
                services.clock,
                services.liveness.identity(),
            )
        started = time.perf_counter()
        await uploader.upload(request, body(bodies[i]))
        TOTALS["whole upload"] += time.perf_counter() - started
        COUNTS["whole upload"] += 1

    async def worker() -> None:
        for i in indices:
            await one(i)

    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(16)))
    wall = time.perf_counter() - wall0
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    await services.metadata.close()
    shutil.rmtree(data_dir, ignore_errors=True)
    user, system = cpu.ru_utime - cpu0.ru_utime, cpu.ru_stime - cpu0.ru_stime
    print(
        f"{args.n / wall:.0f} uploads/s; CPU per upload: user {1e3 * user / args.n:.2f} ms,"
        f" system {1e3 * system / args.n:.2f} ms (load avg {os.getloadavg()[0]:.1f})"
    )
    for label, total in TOTALS.items():
        print(f"  {label:34s} {1e3 * total / COUNTS[label]:7.2f} ms mean (n={COUNTS[label]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--registered", action="store_true")
    parser.add_argument("--alone", action="store_true")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    timed(filesystem_staging.FileStagedBlob, "seal", "seal: write + fsync temp")
    timed(filesystem_staging.FileStagedBlob, "publish", "publish: link + fsync dir")
    timed(commits.GroupCommitter, "commit", "wait for the (group) commit")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
