"""One big object through the S3 blob store on a local SeaweedFS: MB/s and peak RSS.

    .venv/bin/python -m bench.s3_adapter [--mib 1024] [--client obstore|aiobotocore]

Each measurement runs in a fresh child process so its peak RSS (ru_maxrss) is its
own. `obstore` is the adapter itself (S3BlobStore: multipart upload while hashing,
ranged streamed GET while hashing); `aiobotocore` does the same with aiobotocore
calls (multipart upload of 8 MiB parts, 4 in flight; streamed GET), for comparison.
docs/scale-out.md has its figures; tests/smoke runs it on 1 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
PART = 8 * MIB
CONCURRENCY = 4


def _body(mib: int) -> list[bytes]:
    block = os.urandom(MIB)
    # Distinct chunks (a counter in front) so no layer can dedup them, no big buffer.
    return [i.to_bytes(8, "big") + block[8:] for i in range(mib)]


async def _obstore(endpoint: str, bucket: str, mib: int) -> dict[str, float]:
    from tests.support.seaweedfs import ACCESS_KEY, SECRET_KEY

    from juststorage.adapters.blobs.s3 import S3BlobStore
    from juststorage.adapters.blobs.s3_io import S3Connection, S3Root
    from juststorage.application.ports import UnitOfWork
    from juststorage.application.records import BlobLocation
    from juststorage.domain.model import StorageClass

    store = S3BlobStore(
        {StorageClass.HOT: S3Root(bucket, f"bench-{uuid.uuid4().hex}")},
        S3Connection(endpoint, ACCESS_KEY, SECRET_KEY, allow_http=True),
        part_bytes=PART,
        max_concurrency=CONCURRENCY,
    )
    block = os.urandom(MIB)
    started = time.monotonic()
    async with store.stage(StorageClass.HOT, uuid.uuid4()) as staged:
        for i in range(mib):
            await staged.write(i.to_bytes(8, "big") + block[8:])
        digest, size = await staged.seal()
        await staged.publish()
        blob = BlobLocation(StorageClass.HOT, digest, staged.address)
        # This upload's object becomes the blob; the S3 store ignores the unit of work.
        await staged.confirm(blob, uow=cast("UnitOfWork", None))
    put_s = time.monotonic() - started
    started = time.monotonic()
    reader = await store.open(blob)
    hasher = hashlib.sha256()
    async for chunk in reader.chunks(0, size):
        hasher.update(chunk)
    get_s = time.monotonic() - started
    assert hasher.hexdigest() == digest.hex
    await store.remove(blob.storage_class, blob.address)
    return {"put_s": put_s, "get_s": get_s}


async def _aiobotocore(endpoint: str, bucket: str, mib: int) -> dict[str, float]:
    from aiobotocore.session import get_session
    from tests.support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

    key = f"bench-{uuid.uuid4().hex}/blob"
    block = os.urandom(MIB)
    async with get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    ) as client:
        started = time.monotonic()
        hasher = hashlib.sha256()
        upload = await client.create_multipart_upload(Bucket=bucket, Key=key)
        parts: list[dict[str, object]] = []
        in_flight: set[asyncio.Task[None]] = set()
        slots = asyncio.Semaphore(CONCURRENCY)

        async def send(number: int, data: bytes) -> None:
            try:
                done = await client.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload["UploadId"],
                    PartNumber=number,
                    Body=data,
                )
                parts.append({"PartNumber": number, "ETag": done["ETag"]})
            finally:
                slots.release()

        buffer = bytearray()
        number = 0
        for i in range(mib):
            chunk = i.to_bytes(8, "big") + block[8:]
            hasher.update(chunk)
            buffer += chunk
            if len(buffer) >= PART:
                await slots.acquire()
                number += 1
                in_flight.add(asyncio.ensure_future(send(number, bytes(buffer))))
                buffer = bytearray()
        if buffer:
            await slots.acquire()
            number += 1
            in_flight.add(asyncio.ensure_future(send(number, bytes(buffer))))
        await asyncio.gather(*in_flight)
        parts.sort(key=lambda p: int(str(p["PartNumber"])))
        await client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": parts}
        )
        put_s = time.monotonic() - started
        started = time.monotonic()
        got = await client.get_object(Bucket=bucket, Key=key)
        check = hashlib.sha256()
        async for chunk in got["Body"].iter_chunks(MIB):
            check.update(chunk)
        get_s = time.monotonic() - started
        assert check.hexdigest() == hasher.hexdigest()
        await client.delete_object(Bucket=bucket, Key=key)
    return {"put_s": put_s, "get_s": get_s}


def child(client: str, endpoint: str, bucket: str, mib: int) -> None:
    run = _obstore if client == "obstore" else _aiobotocore
    result = asyncio.run(run(endpoint, bucket, mib))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**result, "peak_rss_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--client", choices=["obstore", "aiobotocore", "both"], default="both")
    parser.add_argument("--child", nargs=2, metavar=("ENDPOINT", "BUCKET"))
    args = parser.parse_args()
    if args.child:
        child(args.client, args.child[0], args.child[1], args.mib)
        return
    from tests.support.seaweedfs import running_seaweedfs

    clients = ["obstore", "aiobotocore"] if args.client == "both" else [args.client]
    with (
        tempfile.TemporaryDirectory() as tmp,
        running_seaweedfs(Path(tmp), stop_timeout_s=1.0) as weed,  # its data goes with tmp
    ):
        print(f"{args.mib} MiB object, SeaweedFS {weed.endpoint_url} (weed mini, one host)")
        print("client       PUT MB/s  GET MB/s  peak RSS MiB")
        for client in clients:
            done = subprocess.run(
                [sys.executable, "-m", "bench.s3_adapter", "--client", client]
                + ["--mib", str(args.mib)]
                + ["--child", weed.endpoint_url, weed.bucket],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
                cwd=ROOT,
            )
            if done.returncode != 0:
                raise SystemExit(f"{client} run failed:\n{done.stderr[-3000:]}")
            row = json.loads(done.stdout.strip().splitlines()[-1])
            size_mb = args.mib * MIB / 1e6
            print(
                f"{client:<12} {size_mb / row['put_s']:8.0f}  {size_mb / row['get_s']:8.0f}"
                f"  {row['peak_rss_mib']:12.0f}"
            )


if __name__ == "__main__":
    main()
