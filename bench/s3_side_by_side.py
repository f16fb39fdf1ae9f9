"""Our S3 gateway and SeaweedFS's S3 side by side, for the rows the `s3gw` section
measures too briefly to read: 4 KiB PUTs and ListObjectsV2 pages.

    .venv/bin/python -m bench.s3_side_by_side [--keys 2500] [--rounds 3] [--lists 15]

Starts `juststorage serve` with `JUSTSTORAGE_S3_ADDR` (one worker, SQLite) and `weed
mini` (as the tests start it), both on 127.0.0.1, stopped by PID at the end. Then,
alternating between the two servers: `--keys` 4 KiB PUTs with boto3 on 4 threads
(in `--rounds` slices), and `--lists` rounds of a boto3 ListObjectsV2 of every key
(1000 a page) followed by one signed GET of the first page with no client parsing
(the server's share of a page). Prints the medians and the ratios ours / SeaweedFS
(higher is better). Run it with `PYTHONPATH=<another src>` to measure other code
on the same machine minutes apart (the server inherits the environment).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from juststorage.testing import free_port, start

REGION = "us-east-1"
THREADS = 4
SIZE = 4096


def _client(url: str, access: str, secret: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name=REGION,
        config=Config(max_pool_connections=THREADS * 2, retries={"max_attempts": 1}),
    )


def _raw_page_ms(http: Any, url: str, access: str, secret: str, bucket: str) -> float:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    page = f"{url}/{bucket}?list-type=2&prefix=b%2Fsmall%2F&encoding-type=url"
    request = AWSRequest(method="GET", url=page)
    S3SigV4Auth(Credentials(access, secret), "s3", REGION).add_auth(request)
    started = time.perf_counter()
    answer = http.get(page, headers=dict(request.prepare().headers.items()))
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise RuntimeError(f"{url}: page answered {answer.status_code}")
    return elapsed


def measure(tmp: Path, keys: int, rounds: int, lists: int) -> dict[str, tuple[float, float]]:
    """(ours, SeaweedFS) medians: PUT/s, keys listed/s, ms of a raw page."""
    import json

    from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY, running_seaweedfs

    port = free_port()
    server = start(tmp / "ours", {"JUSTSTORAGE_S3_ADDR": f"127.0.0.1:{port}"})
    try:
        argv = ["keys", "create", "--s3", "--json", "--tenant", "bench"]
        for scope in ("objects:read", "objects:write", "objects:delete"):
            argv += ["--scope", scope]
        done = server.cli(*argv)
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-300:])
        created = json.loads(done.stdout.strip().splitlines()[-1])
        with running_seaweedfs(tmp / "weed") as weed:
            endpoints = {
                "ours": (
                    f"http://127.0.0.1:{port}",
                    created["access_key_id"],
                    created["secret_access_key"],
                    "bench.s3sides",
                ),
                "weed": (weed.endpoint_url, ACCESS_KEY, SECRET_KEY, weed.bucket),
            }
            return _alternate(endpoints, keys, rounds, lists)
    finally:
        server.stop()


def _alternate(
    endpoints: dict[str, tuple[str, str, str, str]], keys: int, rounds: int, lists: int
) -> dict[str, tuple[float, float]]:
    import httpx

    clients = {name: _client(url, a, s) for name, (url, a, s, _) in endpoints.items()}
    block = os.urandom(SIZE)
    got: dict[tuple[str, str], list[float]] = {}
    per_round = keys // rounds
    for r in range(rounds):
        for name, client in clients.items():
            bucket = endpoints[name][3]

            def put(i: int, client: Any = client, bucket: str = bucket, r: int = r) -> None:
                body = i.to_bytes(8, "big") + block[8:]
                client.put_object(Bucket=bucket, Key=f"b/small/{r}/{i:06d}", Body=body)

            started = time.perf_counter()
            with ThreadPoolExecutor(THREADS) as pool:
                list(pool.map(put, range(per_round)))
            got.setdefault(("put", name), []).append(per_round / (time.perf_counter() - started))
    with httpx.Client(timeout=60, trust_env=False) as http:
        for _ in range(lists):
            for name, client in clients.items():
                url, access, secret, bucket = endpoints[name]
                started = time.perf_counter()
                count = 0
                pages = client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket, Prefix="b/small/"
                )
                for page in pages:
                    count += len(page.get("Contents", []))
                got.setdefault(("list", name), []).append(count / (time.perf_counter() - started))
                got.setdefault(("page", name), []).append(
                    _raw_page_ms(http, url, access, secret, bucket)
                )
    for client in clients.values():
        client.close()
    return {
        what: (statistics.median(got[(what, "ours")]), statistics.median(got[(what, "weed")]))
        for what in ("put", "list", "page")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=2500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lists", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"s3sides-{uuid.uuid4().hex[:6]}-") as tmp:
        found = measure(Path(tmp), args.keys, args.rounds, args.lists)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} at the end (2 CPUs shared)")
    put, listed, page = found["put"], found["list"], found["page"]
    print(
        f"boto3 4 KiB PUT/s      ours {put[0]:8.1f}  SeaweedFS {put[1]:8.1f}  {put[0] / put[1]:.2f}"
    )
    print(
        f"boto3 list keys/s      ours {listed[0]:8.1f}  SeaweedFS {listed[1]:8.1f}"
        f"  {listed[0] / listed[1]:.2f}"
    )
    print(
        f"raw 1000-key page ms   ours {page[0]:8.1f}  SeaweedFS {page[1]:8.1f}"
        f"  {page[1] / page[0]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
