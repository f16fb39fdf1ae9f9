"""Time a GET's metadata lookup in-process (no HTTP, no blob read): the newest
version of a key alone (`ObjectReads.newest`, what a filesystem GET read before
blobs had addresses) against the version with its blob's address
(`newest_located`, the LEFT JOIN to the blob row every GET reads now).

    .venv/bin/python -m bench.get_lookups [--n 2000] [--rounds 20]

Fills a fresh SQLite file under /tmp with --n committed versions (each with its
blob row), then runs --rounds rounds alternating the two lookups, each round
looking up every key once through a snapshot as `find_newest` does, and prints
the per-lookup time in µs (min / median of the rounds' means). The file is
removed at the end. docs/performance.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.application.ports import MetadataStore
from juststorage.bootstrap import SystemClock
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectKey,
    TenantId,
)

from .fill import commit_versions

TENANT, NAMESPACE = TenantId("acme"), Namespace("files")


def _key(i: int) -> ObjectKey:
    return ObjectKey(f"obj/{i:07d}")


def _lookup(store: MetadataStore, located: bool) -> Callable[[ObjectKey], Awaitable[object]]:
    async def lookup(key: ObjectKey) -> object:
        async with store.snapshot() as view:
            if located:
                return await view.objects.newest_located(TENANT, NAMESPACE, key)
            return await view.objects.newest(TENANT, NAMESPACE, key)

    return lookup


async def main(n: int, rounds: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="get-lookups-"))
    store = SqliteMetadataStore(directory / "meta.db", SystemClock())
    try:
        await store.migrate()
        digests = (ContentHash(hashlib.sha256(i.to_bytes(8, "big")).hexdigest()) for i in range(n))
        await commit_versions(
            store, TENANT, NAMESPACE, [(_key(i), d) for i, d in enumerate(digests)], size=4096
        )
        means: dict[str, list[float]] = {"newest": [], "newest_located": []}
        for _ in range(rounds):
            for name in means:
                lookup = _lookup(store, located=name == "newest_located")
                started = time.perf_counter()
                for i in range(n):
                    assert await lookup(_key(i)) is not None
                means[name].append((time.perf_counter() - started) / n * 1e6)
        print(f"SQLite, {n} versions, {rounds} rounds: µs per lookup (min / median)")
        for name, values in means.items():
            print(f"  {name:15} {min(values):6.1f} / {statistics.median(values):6.1f}")
    finally:
        await store.close()
        shutil.rmtree(directory)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.n, arguments.rounds))
