"""Time listing pages over HTTP against a running server: fill a fresh namespace with
--n objects of 128 bytes (16 at a time), then list it all --rounds times in pages of
--page and print the per-page time (min / median / max of the rounds' means).
docs/performance.md quotes it.

    .venv/bin/python scripts/list_pages.py --url http://127.0.0.1:8000 \
        --token "$(cat data/admin.key)" [--n 3000] [--rounds 40] [--page 1000]

Only 127.0.0.1 / localhost URLs are accepted; the namespace is named after the start
time, so runs do not see each other's objects.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import urllib.parse

import httpx


async def fill(client: httpx.AsyncClient, namespace: str, tenant: str, n: int) -> None:
    slots = asyncio.Semaphore(16)

    async def put(i: int) -> None:
        headers = {"X-Namespace": namespace, "X-Tenant": tenant, "X-Key": f"obj/{i:07d}"}
        async with slots:
            response = await client.post("/v1/objects", content=os.urandom(128), headers=headers)
        response.raise_for_status()

    await asyncio.gather(*(put(i) for i in range(n)))


async def list_all(client: httpx.AsyncClient, namespace: str, tenant: str, page: int) -> int:
    """Lists every object once; returns the number of requests."""
    cursor, requests = None, 0
    while True:
        params = {"namespace": namespace, "tenant": tenant, "limit": str(page)}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/objects", params=params)
        response.raise_for_status()
        requests += 1
        cursor = response.json().get("next_cursor")
        if not cursor:
            return requests


async def run(args: argparse.Namespace) -> None:
    namespace = f"list-pages-{int(time.time())}"
    headers = {"Authorization": f"Bearer {args.token}"}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=30) as client:
        await fill(client, namespace, args.tenant, args.n)
        per_page = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            requests = await list_all(client, namespace, args.tenant, args.page)
            per_page.append((time.perf_counter() - started) / requests * 1000)
    print(
        f"{args.n} objects, pages of {args.page}, {args.rounds} rounds: ms per page"
        f" min {min(per_page):.1f} median {statistics.median(per_page):.1f}"
        f" max {max(per_page):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True, help="an API key or JWT with read+write")
    parser.add_argument("--tenant", default="bench")
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--page", type=int, default=1000)
    args = parser.parse_args()
    host = urllib.parse.urlsplit(args.url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing non-loopback URL {args.url!r}")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
