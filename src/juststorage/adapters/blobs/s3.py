"""S3BlobStore: blobs as objects of an S3-compatible store, one bucket/prefix per class.

Layout under a class root `s3://<bucket>/<prefix>`:

    <prefix>/blobs/<upload id>    one object per upload that created a blob; the
                                  database's `blobs.location` names it (S3 has no
                                  rename, so bytes never move after upload)
    <prefix>/probe/<uuid>         readiness probes, deleted at once

Uploads stream as multipart uploads (parts of `part_bytes`, at most
`max_concurrency` in flight, so memory stays bounded) while the bytes are hashed;
reads are ranged GETs streamed in chunks of at most 1 MiB. The client is obstore
(Rust object_store); the two calls it lacks, listing and aborting unfinished
multipart uploads, go through aiobotocore (`adapters/blobs/s3_multipart.py`).
Write protocol and crash cases: docs/durability.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import anyio
import anyio.to_thread
import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from juststorage.adapters.blobs import s3_multipart
from juststorage.application.records import BlobLocation, StoredBlob, StoredKey, TempFile
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash, StorageClass

if TYPE_CHECKING:
    from obstore import AsyncWritableFile, GetOptions, GetResult

READ_CHUNK_BYTES = 1024 * 1024
_HASH_IN_THREAD_BYTES = 256 * 1024  # hashlib drops the GIL: big chunks hash off the loop
_PROBE_TIMEOUT_S = 15.0
BLOBS_DIR = "blobs/"
PROBE_DIR = "probe/"


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


@contextmanager
def _translated_s3_errors(what: str) -> Iterator[None]:
    """Turn the clients' errors into domain errors at the adapter's edge."""
    try:
        yield
    except FileNotFoundError as exc:  # obstore's NotFoundError is one
        raise NotFound(f"{what}: no such object") from exc
    except (PermissionDeniedError, UnauthenticatedError) as exc:
        raise StorageError(f"{what}: the object store refused access: {exc}") from exc
    except (ObstoreError, OSError, s3_multipart.ClientError) as exc:
        # Unreachable, timed out, 5xx after retries: the store is unavailable (503).
        raise Unavailable(f"{what}: the object store failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _hash(hasher: hashlib._Hash, data: bytes | memoryview) -> None:
    if len(data) >= _HASH_IN_THREAD_BYTES:
        await anyio.to_thread.run_sync(hasher.update, data)
    else:
        hasher.update(data)


class _S3StagedBlob:
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
    def key(self) -> str | None:
        return self._key

    async def write(self, chunk: bytes) -> None:
        if self._digest is not None:
            raise RuntimeError("write() after seal()")
        await _hash(self._hasher, chunk)
        with _translated_s3_errors("upload"):
            # Buffers up to one part; a full part is sent while the next one fills.
            await self._writer.write(chunk)
        self._size += len(chunk)

    async def seal(self) -> tuple[ContentHash, int]:
        with _translated_s3_errors("upload"):
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

    async def confirm(self, blob: BlobLocation) -> bool:
        if self._digest is None:
            raise RuntimeError("confirm() before seal()")
        # Nothing to move: the row either names this upload's key (these bytes are
        # the blob) or an older copy's (a dedup hit; the end of stage deletes ours).
        self._published = blob.key == self._key
        return self._published

    async def aclose(self) -> None:
        if self._published:
            return
        # Best effort: the caller is already failing or done, and whatever is left
        # behind GC removes after the grace period (docs/durability.md).
        try:
            if self._stored:
                with _translated_s3_errors("delete"):
                    await obstore.delete_async(self._store, self._key)
            elif self._size >= self._part_bytes:
                # A multipart upload was begun; obstore cannot abort it after a failure,
                # so find it by its key.
                with _translated_s3_errors("abort"):
                    await s3_multipart.abort_uploads_of(self._connection, self._root, self._key)
        except StorageError:
            pass


class _S3BlobReader:
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
        with _translated_s3_errors("read"):
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


class S3BlobStore:
    """Blob store on S3-compatible object storage, one `S3Root` per storage class."""

    def __init__(
        self,
        roots: Mapping[StorageClass, S3Root],
        connection: S3Connection,
        *,
        part_bytes: int = 8 * 1024 * 1024,
        max_concurrency: int = 4,
    ) -> None:
        self.roots = dict(roots)
        self.connection = connection
        self._part_bytes = part_bytes
        self._max_concurrency = max_concurrency
        self._stores = {c: self._client(r) for c, r in self.roots.items()}

    def _client(self, root: S3Root) -> S3Store:
        c = self.connection
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

    async def prepare(self) -> None:
        """Nothing to create: the bucket must exist (`/ready` probes it)."""

    def keyed(self, storage_class: StorageClass) -> bool:
        return True

    @asynccontextmanager
    async def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AsyncIterator[_S3StagedBlob]:
        # `owner` is not needed here: uploads to a keyed store always write their
        # WRITING row, which is what GC asks before removing an object in flight.
        key = f"{BLOBS_DIR}{upload_id}"
        writer = obstore.open_writer_async(
            self._stores[storage_class],
            key,
            buffer_size=self._part_bytes,
            max_concurrency=self._max_concurrency,
        )
        staged = _S3StagedBlob(
            self._stores[storage_class],
            self.connection,
            self.roots[storage_class],
            key,
            writer,
            self._part_bytes,
        )
        try:
            yield staged
        finally:
            # Shielded: a cancelled upload still deletes (or aborts) its object.
            with anyio.CancelScope(shield=True):
                await staged.aclose()

    async def open(
        self, location: BlobLocation, *, first: int = 0, length: int | None = None
    ) -> _S3BlobReader:
        if location.key is None:
            raise NotFound("no such object")  # a keyed blob without its row's key
        store = self._stores[location.storage_class]
        with _translated_s3_errors("open"):
            if length == 0:
                meta = await obstore.head_async(store, location.key)
                return _S3BlobReader(store, location.key, meta["size"], None)
            # One request both finds the object and starts sending the bytes.
            if length is None:
                result = await obstore.get_async(store, location.key)
            else:
                options: GetOptions = {"range": (first, first + length)}
                result = await obstore.get_async(store, location.key, options=options)
        return _S3BlobReader(store, location.key, result.meta["size"], (first, result))

    async def probe(self, storage_class: StorageClass) -> None:
        store = self._stores[storage_class]
        key = f"{PROBE_DIR}{uuid.uuid4().hex}"
        try:
            with anyio.fail_after(_PROBE_TIMEOUT_S), _translated_s3_errors("probe"):
                await obstore.put_async(store, key, b"probe")
                await obstore.delete_async(store, key)
        except TimeoutError:
            raise Unavailable(f"{self.roots[storage_class]} did not answer in time") from None
        except StorageError as exc:
            raise Unavailable(f"{self.roots[storage_class]} is not writable: {exc}") from exc

    async def remove(self, location: BlobLocation) -> bool:
        if location.key is None:
            return False
        return await self.remove_key(location.storage_class, location.key)

    async def remove_key(self, storage_class: StorageClass, key: str) -> bool:
        store = self._stores[storage_class]
        try:
            with _translated_s3_errors("remove"):
                await obstore.head_async(store, key)
        except NotFound:
            return False
        with _translated_s3_errors("remove"):
            # A DELETE that returned is durable: GC commits the row's removal after it.
            await obstore.delete_async(store, key)
        return True

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        root = self.roots[storage_class]
        with _translated_s3_errors("list multipart uploads"):
            uploads = await s3_multipart.unfinished_uploads(self.connection, root, BLOBS_DIR)
        return [
            TempFile(
                storage_class,
                f"{u.key.removeprefix(BLOBS_DIR)}.tmp",
                u.initiated_at,
                handle=f"{u.key}\n{u.upload_id}",
            )
            for u in uploads
        ]

    async def remove_temp(self, temp: TempFile) -> None:
        key, _, upload_id = temp.handle.partition("\n")
        with _translated_s3_errors("abort multipart upload"):
            await s3_multipart.abort(
                self.connection, self.roots[temp.storage_class], key, upload_id
            )

    async def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        return
        yield  # no blob is addressed by its hash here: see scan_keys

    async def scan_keys(self, storage_class: StorageClass) -> AsyncIterator[list[StoredKey]]:
        store = self._stores[storage_class]
        # Only our own folders: anything else under the prefix is not ours to judge.
        for folder in (BLOBS_DIR, PROBE_DIR):
            with _translated_s3_errors("list"):
                async for page in obstore.list(store, prefix=folder, chunk_size=500):
                    yield [
                        StoredKey(
                            storage_class,
                            meta["path"],
                            meta["size"],
                            meta["last_modified"],
                            _upload_id(meta["path"]),
                        )
                        for meta in page
                    ]

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        reader = await self.open(location)
        hasher = hashlib.sha256()
        async for chunk in reader.chunks(0, reader.size_bytes):
            await _hash(hasher, chunk)
        return ContentHash(hasher.hexdigest())


def _upload_id(key: str) -> UUID | None:
    if not key.startswith(BLOBS_DIR):
        return None
    try:
        return UUID(key.removeprefix(BLOBS_DIR))
    except ValueError:
        return None
