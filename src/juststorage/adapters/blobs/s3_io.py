"""The S3 store's transfers of one object: an upload written as a multipart upload
while it is hashed, and a read streamed from ranged GETs; S3's connection settings
and its errors translated into domain errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from juststorage.adapters.blobs import s3_multipart
from juststorage.application import twin_hashes
from juststorage.application.blob_ports import Hasher
from juststorage.application.ports import UnitOfWork
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, GetResult

READ_CHUNK_BYTES = 1024 * 1024
# S3's error code when the bucket itself is missing. obstore raises the same
# FileNotFoundError for it as for a missing object; only the response body, which
# it quotes in the message, tells them apart (a HEAD's 404 has no body).
NO_SUCH_BUCKET = "<Code>NoSuchBucket</Code>"
_HASH_IN_THREAD_BYTES = 256 * 1024  # hashlib drops the GIL: big chunks hash off the loop


@dataclass(frozen=True, slots=True)
class S3Root:
    """`s3://<bucket>/<prefix>`: where one storage class keeps its objects."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Root:
        """Raises ValueError unless `url` is `s3://<bucket>[/<prefix>]`."""
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// root: {url!r}")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"no bucket in {url!r}")
        return cls(bucket, prefix.strip("/"))

    def full_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class S3Connection:
    """Endpoint and credentials (the usual AWS_* settings); None: the SDK defaults."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    region: str = "us-east-1"
    allow_http: bool = False
    timeout_seconds: float = 60.0
    max_retries: int = 3


def s3_client(root: S3Root, c: S3Connection) -> S3Store:
    """The obstore client of one root (bucket and prefix) with these settings."""
    config: dict[str, str | bool] = {"region": c.region}
    if c.endpoint_url:
        config["endpoint"] = c.endpoint_url
    if c.access_key_id:
        config["access_key_id"] = c.access_key_id
    if c.secret_access_key:
        config["secret_access_key"] = c.secret_access_key
    return S3Store(
        root.bucket,
        prefix=root.prefix or None,
        config=config,  # type: ignore[arg-type]
        client_options={
            "allow_http": c.allow_http,
            "timeout": timedelta(seconds=c.timeout_seconds),
            "connect_timeout": timedelta(seconds=5),
        },
        retry_config={
            "max_retries": c.max_retries,
            "retry_timeout": timedelta(seconds=c.timeout_seconds),
        },
    )


@contextmanager
def translated_s3_errors(what: str) -> Iterator[None]:
    """Turn the clients' errors into domain errors at the adapter's edge."""
    try:
        yield
    except FileNotFoundError as exc:  # obstore's NotFoundError is one
        if NO_SUCH_BUCKET in str(exc):
            # A root's bucket that does not exist: the store is unusable (503), and no
            # object "does not exist" (a 404 to clients, a blob GC takes as removed).
            raise Unavailable(f"{what}: the object store has no such bucket") from exc
        raise NotFound(f"{what}: no such object") from exc
    except (PermissionDeniedError, UnauthenticatedError) as exc:
        first = next((line for line in str(exc).strip().splitlines() if line), "")
        raise StorageError(f"{what}: the object store refused access: {first}") from exc
    except (ObstoreError, OSError, s3_multipart.ClientError) as exc:
        # Unreachable, timed out, 5xx after retries: the store is unavailable (503).
        # The client's text names hosts and buckets: it stays in the cause, for the log.
        raise Unavailable(f"{what}: the object store failed") from exc


async def hash_into(hasher: Hasher, data: bytes | memoryview, also: Hasher | None = None) -> None:
    """Feed `data` to `hasher`, and to `also` at the same time when given."""
    if also is not None and len(data) >= _HASH_IN_THREAD_BYTES:
        await anyio.to_thread.run_sync(twin_hashes.update_both, hasher, also, data)
    elif len(data) >= _HASH_IN_THREAD_BYTES:
        await anyio.to_thread.run_sync(hasher.update, data)
    else:
        hasher.update(data)
        if also is not None:
            also.update(data)


class S3StagedBlob:
    """One upload's object, written as a multipart upload while it is hashed."""

    def __init__(
        self,
        store: S3Store,
        connection: S3Connection,
        root: S3Root,
        key: str,
        writer: AsyncWritableFile,
        part_bytes: int,
    ) -> None:
        self._store = store
        self._connection = connection
        self._root = root
        self._part_bytes = part_bytes
        self._key = key
        self._writer = writer
        self._hasher = hashlib.sha256()
        self._size = 0
        self._digest: ContentHash | None = None
        self._stored = False  # the object exists (the upload completed)
        self._published = False  # and it is the blob: keep it

    @property
    def address(self) -> str:
        return self._key

    @property
    def stored(self) -> bool:
        """The object exists: the upload completed (`seal`)."""
        return self._stored

    async def write(self, chunk: bytes) -> None:
        if self._digest is not None:
            raise RuntimeError("write() after seal()")
        await hash_into(self._hasher, chunk)
        with translated_s3_errors("upload"):
            # Buffers up to one part; a full part is sent while the next one fills.
            await self._writer.write(chunk)
        self._size += len(chunk)

    async def seal(self) -> tuple[ContentHash, int]:
        with translated_s3_errors("upload"):
            # Completes the multipart upload (or PUTs a small object): after S3's
            # 200 the object is durable under its unique key, not yet referenced.
            await self._writer.close()
        self._stored = True
        self._digest = ContentHash(self._hasher.hexdigest())
        return self._digest, self._size

    async def publish(self) -> bool:
        if self._digest is None:
            raise RuntimeError("publish() before seal()")
        return False  # the object is stored under its own key already (seal)

    def inline_bytes(self, blob: BlobLocation) -> bytes | bytearray | None:
        return None  # this store keeps no blob in the database

    async def confirm(self, blob: BlobLocation, *, uow: UnitOfWork) -> bool:
        if self._digest is None:
            raise RuntimeError("confirm() before seal()")
        # Nothing to move: the row either names this upload's key (these bytes are
        # the blob) or an older copy's (a dedup hit; the end of stage deletes ours).
        self._published = blob.address == self._key
        return self._published

    async def aclose(self) -> None:
        if self._published:
            return
        # Best effort: the caller is already failing or done, and whatever is left
        # behind GC removes after the grace period (docs/durability.md).
        try:
            if self._stored:
                with translated_s3_errors("delete"):
                    await obstore.delete_async(self._store, self._key)
            elif self._size >= self._part_bytes:
                # A multipart upload was begun; obstore cannot abort it after a failure,
                # so find it by its key.
                with translated_s3_errors("abort"):
                    await s3_multipart.abort_uploads_of(self._connection, self._root, self._key)
        except StorageError:
            pass


class S3BlobReader:
    """An object being read. `open` already sent the GET for the range the caller
    announced; a read of any other range sends its own ranged GET."""

    def __init__(
        self, store: S3Store, key: str, size: int, opened: tuple[int, GetResult] | None
    ) -> None:
        self.path: Path | None = None  # no local file to send with sendfile
        self._store = store
        self._key = key
        self.size_bytes = size
        self._opened = opened

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        opened, self._opened = self._opened, None
        if length <= 0:
            return
        received = 0
        with translated_s3_errors("read"):
            if opened is not None and opened[0] == first and _span(opened[1]) == length:
                result = opened[1]
            else:
                result = await obstore.get_async(
                    self._store, self._key, options={"range": (first, first + length)}
                )
            async for piece in result.stream(min_chunk_size=READ_CHUNK_BYTES // 2):
                view = memoryview(piece)
                for start in range(0, len(view), READ_CHUNK_BYTES):
                    data = bytes(view[start : start + READ_CHUNK_BYTES])
                    received += len(data)
                    yield data
        if received != length:
            raise StorageError("blob object is shorter than its recorded size")

    async def close(self) -> None:
        self._opened = None  # an unread response is dropped with its connection


def _span(result: GetResult) -> int:
    start, end = result.range
    return end - start
