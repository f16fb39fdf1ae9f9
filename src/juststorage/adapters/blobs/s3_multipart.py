"""Unfinished multipart uploads: the S3 calls obstore does not offer.

ListMultipartUploads and AbortMultipartUpload, and a multipart upload whose id the
caller owns (`upload_parts`: obstore's writer cannot abort its own), through
aiobotocore, imported only
when called (GC passes and failed uploads), so a short CLI run does not pay for it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio.to_thread

if TYPE_CHECKING:
    from juststorage.adapters.blobs.s3_io import S3Connection, S3Root


class ClientError(Exception):
    """aiobotocore / botocore failed (translated by the caller into domain errors)."""


@dataclass(frozen=True, slots=True)
class UnfinishedUpload:
    key: str  # relative to the root's prefix
    upload_id: str
    initiated_at: datetime


@functools.cache
def _session() -> Any:
    """One botocore session per process: it caches the S3 service model, which makes
    every client after the first cheap. Imported on first use (about a second)."""
    from aiobotocore.session import get_session

    return get_session()


@asynccontextmanager
async def _client(connection: S3Connection, *, gone_ok: bool = True) -> AsyncIterator[Any]:
    """An S3 client; with `gone_ok`, an upload already completed or aborted
    (NoSuchUpload) ends the block quietly."""
    # The first import is slow and CPU-bound: keep the event loop mostly free meanwhile.
    session = await anyio.to_thread.run_sync(_session)
    from aiobotocore.config import AioConfig
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError as BotoClientError

    config = AioConfig(
        s3={"addressing_style": "path"},
        connect_timeout=5,
        read_timeout=connection.timeout_seconds,
        retries={"max_attempts": connection.max_retries + 1, "mode": "standard"},
    )
    try:
        async with session.create_client(
            "s3",
            endpoint_url=connection.endpoint_url,
            region_name=connection.region,
            aws_access_key_id=connection.access_key_id,
            aws_secret_access_key=connection.secret_access_key,
            config=config,
        ) as client:
            yield client
    except BotoClientError as exc:
        if gone_ok and exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
            return  # already completed or aborted: nothing to do
        raise ClientError(str(exc)) from exc
    except (BotoCoreError, OSError) as exc:
        raise ClientError(str(exc)) from exc


async def unfinished_uploads(
    connection: S3Connection, root: S3Root, under: str
) -> list[UnfinishedUpload]:
    """Multipart uploads begun under `<prefix>/<under>` and neither completed nor aborted."""
    found: list[UnfinishedUpload] = []
    strip = root.full_key("")
    async with _client(connection) as client:
        paginator = client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=root.bucket, Prefix=root.full_key(under)):
            for upload in page.get("Uploads", []):
                found.append(
                    UnfinishedUpload(
                        upload["Key"].removeprefix(strip), upload["UploadId"], upload["Initiated"]
                    )
                )
    return found


async def abort(connection: S3Connection, root: S3Root, key: str, upload_id: str) -> None:
    """Abort one multipart upload; one already gone is not an error."""
    async with _client(connection) as client:
        await client.abort_multipart_upload(
            Bucket=root.bucket, Key=root.full_key(key), UploadId=upload_id
        )


async def abort_uploads_of(connection: S3Connection, root: S3Root, key: str) -> None:
    """Abort every unfinished multipart upload of one key (a failed upload's)."""
    for upload in await unfinished_uploads(connection, root, key):
        if upload.key == key:
            await abort(connection, root, key, upload.upload_id)


ABORT_TIMEOUT_S = 30.0


async def upload_parts(
    connection: S3Connection, root: S3Root, key: str, parts: AsyncIterator[bytes]
) -> int:
    """Store the parts at `key` as ONE multipart upload (S3 publishes it only when it
    completes); returns the bytes written. Every part but the last must be at least
    5 MiB. If anything fails, the caller is cancelled, or `parts` raises, THIS
    upload (its own id, never another upload of the same key) is aborted, shielded
    from the cancellation and bounded in time, and the error re-raised."""
    async with _client(connection, gone_ok=False) as client:
        created = await client.create_multipart_upload(Bucket=root.bucket, Key=root.full_key(key))
        upload_id = created["UploadId"]
        written = 0
        try:
            done = []
            number = 0
            async for part in parts:
                number += 1
                sent = await client.upload_part(
                    Bucket=root.bucket,
                    Key=root.full_key(key),
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=part,
                )
                done.append({"ETag": sent["ETag"], "PartNumber": number})
                written += len(part)
            await client.complete_multipart_upload(
                Bucket=root.bucket,
                Key=root.full_key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )
        except BaseException:
            with (
                anyio.CancelScope(shield=True) as scope,
                contextlib.suppress(Exception),
            ):
                scope.deadline = anyio.current_time() + ABORT_TIMEOUT_S
                await client.abort_multipart_upload(
                    Bucket=root.bucket, Key=root.full_key(key), UploadId=upload_id
                )
            raise
        return written


async def copy_into(
    connection: S3Connection, root: S3Root, key: str, sources: list[tuple[str, int, int]]
) -> None:
    """Make `key` the concatenation of byte ranges `(source key, first, last)` of
    objects of the same root, server-side: one multipart upload whose parts are
    UploadPartCopy of each range (no byte passes through this process). Durable
    when it returns; on failure the multipart upload is aborted (best effort).

    Every range but the last must be at least 5 MiB, and at most 5 GiB (S3's rules).
    """
    async with _client(connection, gone_ok=False) as client:
        created = await client.create_multipart_upload(Bucket=root.bucket, Key=root.full_key(key))
        upload_id = created["UploadId"]
        try:
            parts = []
            for number, (source, first, last) in enumerate(sources, 1):
                copied = await client.upload_part_copy(
                    Bucket=root.bucket,
                    Key=root.full_key(key),
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": root.bucket, "Key": root.full_key(source)},
                    CopySourceRange=f"bytes={first}-{last}",
                )
                parts.append({"ETag": copied["CopyPartResult"]["ETag"], "PartNumber": number})
            await client.complete_multipart_upload(
                Bucket=root.bucket,
                Key=root.full_key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # GC aborts whatever this leaves.
            with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                await client.abort_multipart_upload(
                    Bucket=root.bucket, Key=root.full_key(key), UploadId=upload_id
                )
            raise
