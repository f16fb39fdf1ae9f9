"""An S3 backup target's streams (adapters/backup/s3.py) on real S3 servers
(SeaweedFS and Ceph RGW): a stream that fails or is cancelled aborts its own
multipart upload, and only its own."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import anyio
import pytest

from juststorage.adapters.backup.s3 import MAX_STREAMS, S3Target
from juststorage.adapters.blobs import s3_multipart
from juststorage.adapters.blobs.s3_io import S3Root
from juststorage.bootstrap import backup_s3_connection
from juststorage.config import Settings
from juststorage.domain.errors import NotFound
from support.s3_servers import S3_SERVERS, S3Server

pytestmark = [pytest.mark.anyio, pytest.mark.s3]

PART = 5 * 1024 * 1024  # S3's smallest part


@pytest.fixture(params=S3_SERVERS)
def made(request: pytest.FixtureRequest) -> S3Target:
    server: S3Server = request.getfixturevalue(request.param)
    env = server.env()
    settings = Settings(
        backup_aws_endpoint_url=env["AWS_ENDPOINT_URL"],
        backup_aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        backup_aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        backup_aws_region=env["AWS_REGION"],
        backup_aws_allow_http=True,
    )
    return S3Target(S3Root.parse(server.root()), backup_s3_connection(settings), part_bytes=PART)


async def unfinished(made: S3Target, key: str) -> list[str]:
    uploads = await s3_multipart.unfinished_uploads(made.connection, made.root, key)
    return [u.upload_id for u in uploads if u.key == key]


async def test_a_failed_or_cancelled_stream_aborts_only_its_own_upload(made: S3Target) -> None:
    key = "blobs/ab/failing"
    data = os.urandom(PART + PART // 2)
    parked, go_on = anyio.Event(), anyio.Event()

    async def other_run() -> AsyncIterator[bytes]:
        yield data[:PART]
        yield data[PART : PART + 10]
        parked.set()  # its first part is uploaded: its upload is unfinished now
        await go_on.wait()
        yield data[PART + 10 :]

    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(PART)
        yield b"x"
        raise ValueError("the hash check failed")

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield os.urandom(PART)

    async with anyio.create_task_group() as group:
        group.start_soon(made.put_stream, key, other_run())
        await parked.wait()
        [theirs] = await unfinished(made, key)

        with pytest.raises(ValueError, match="hash check"):
            await made.put_stream(key, failing())
        assert await unfinished(made, key) == [theirs]  # not aborted by key

        with anyio.move_on_after(3):  # cancelled mid-upload, as a failed run's workers are
            await made.put_stream(key, endless())
        assert await unfinished(made, key) == [theirs]

        go_on.set()
    assert await made.get_bytes(key) == data  # the other run's upload completed
    assert await unfinished(made, key) == []
    with pytest.raises(NotFound):
        await made.get_bytes("blobs/ab/never")


async def test_at_most_max_streams_buffer_at_once_whatever_the_parallelism(
    made: S3Target,
) -> None:
    running, most = 0, 0

    async def small() -> AsyncIterator[bytes]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.05)
        yield b"x" * 100
        running -= 1

    async with anyio.create_task_group() as group:
        for i in range(MAX_STREAMS * 2):
            group.start_soon(made.put_stream, f"blobs/cd/{i}", small())
    assert most == MAX_STREAMS  # memory: MAX_STREAMS parts at most, not --parallel
