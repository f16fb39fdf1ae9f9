"""S3Target: a backup target at `s3://bucket/prefix` (obstore, with the connection
settings of the S3 blob store: the AWS_* settings).

A small value is one PUT; a stream shorter than a part too; a longer one is a
multipart upload of this target's own (s3_multipart.upload_parts), which S3
publishes only when it completes: all are atomic. A stream that fails or is
cancelled aborts its own upload (by its id, shielded from the cancellation), so
nothing is left at the key nor billed as hidden parts, and another run's upload
of the same key is left alone.

Memory: each stream buffers one part (16 MiB); at most `MAX_STREAMS` streams run
at once per target, whatever `--parallel` asks, so a target holds at most
MAX_STREAMS x 16 MiB = 256 MiB of parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import anyio
import obstore

from juststorage.adapters.blobs import s3_multipart
from juststorage.adapters.blobs.s3_io import (
    READ_CHUNK_BYTES,
    S3Connection,
    S3Root,
    s3_client,
    translated_s3_errors,
)
from juststorage.domain.errors import NotFound

_PART_BYTES = 16 * 1024 * 1024
MAX_STREAMS = 16  # streams buffering a part at once: the target's memory bound
_LIST_PAGE = 1000


class S3Target:
    """A backup target under one bucket and prefix."""

    def __init__(
        self, root: S3Root, connection: S3Connection, *, part_bytes: int = _PART_BYTES
    ) -> None:
        self.root = root
        self.connection = connection
        self._part_bytes = part_bytes
        self._store = s3_client(root, connection)
        self._streams = anyio.Semaphore(MAX_STREAMS)

    @property
    def description(self) -> str:
        return str(self.root).rstrip("/")

    async def put_bytes(self, key: str, data: bytes) -> None:
        with translated_s3_errors(f"write {key}"):
            await obstore.put_async(self._store, key, data, use_multipart=False)

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        async with self._streams:
            return await self._put_stream(key, chunks)

    async def _put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        source = aiter(chunks)
        first = bytearray()
        async for chunk in source:
            first += chunk
            if len(first) >= self._part_bytes:
                break
        else:
            # Shorter than a part: one PUT, nothing to abort if it fails.
            await self.put_bytes(key, bytes(first))
            return len(first)

        async def parts() -> AsyncIterator[bytes]:
            buffer = first
            while len(buffer) >= self._part_bytes:
                yield bytes(buffer[: self._part_bytes])
                del buffer[: self._part_bytes]
            async for chunk in source:
                buffer += chunk
                while len(buffer) >= self._part_bytes:
                    yield bytes(buffer[: self._part_bytes])
                    del buffer[: self._part_bytes]
            if buffer:
                yield bytes(buffer)

        with translated_s3_errors(f"write {key}"):
            return await s3_multipart.upload_parts(self.connection, self.root, key, parts())

    async def get_stream(self, key: str) -> AsyncIterator[bytes]:
        with translated_s3_errors(f"read {key}"):
            result = await obstore.get_async(self._store, key)
            async for piece in result.stream(min_chunk_size=READ_CHUNK_BYTES):
                yield bytes(piece)

    async def get_bytes(self, key: str) -> bytes:
        with translated_s3_errors(f"read {key}"):
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())

    async def exists(self, key: str) -> bool:
        try:
            with translated_s3_errors(f"head {key}"):
                await obstore.head_async(self._store, key)
        except NotFound:
            return False
        return True

    async def list_keys(self, prefix: str) -> AsyncIterator[list[str]]:
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"a prefix is a folder ending in '/': {prefix!r}")
        with translated_s3_errors(f"list {prefix or '/'}"):
            async for page in obstore.list(
                self._store, prefix=prefix or None, chunk_size=_LIST_PAGE
            ):
                yield [meta["path"] for meta in page]

    async def list_sizes(self, prefix: str) -> AsyncIterator[list[tuple[str, int]]]:
        if prefix and not prefix.endswith("/"):
            raise ValueError(f"a prefix is a folder ending in '/': {prefix!r}")
        with translated_s3_errors(f"list {prefix or '/'}"):
            async for page in obstore.list(
                self._store, prefix=prefix or None, chunk_size=_LIST_PAGE
            ):
                yield [(meta["path"], int(meta["size"])) for meta in page]

    async def delete(self, key: str) -> None:
        try:
            with translated_s3_errors(f"remove {key}"):
                await obstore.delete_async(self._store, key)
        except NotFound:
            pass

    async def clean_temp(self, older_than_s: float) -> int:
        """Nothing to clean: an unfinished upload is aborted by the run that began it
        (a killed run's stays invisible; a bucket lifecycle rule removes it)."""
        return 0

    async def close(self) -> None:
        return None
