"""S3BlobStore: blobs as objects of an S3-compatible store, one bucket/prefix per class.

Layout under a class root `s3://<bucket>/<prefix>`:

    <prefix>/blobs/<uuid>         one object per stored copy: an upload's object
                                  is named after the upload, a copy made by
                                  migrate-blobs after a fresh uuid; the key is the
                                  blob's address, which `blobs.location` records
                                  (S3 has no rename, so bytes never move after
                                  upload)
    <prefix>/probe/<uuid>         readiness probes, deleted at once

Uploads stream as multipart uploads (parts of `part_bytes`, at most
`max_concurrency` in flight, so memory stays bounded) while the bytes are hashed;
reads are ranged GETs streamed in chunks of at most 1 MiB. The client is obstore
(Rust object_store); the two calls it lacks, listing and aborting unfinished
multipart uploads, go through aiobotocore (`adapters/blobs/s3_multipart.py`).
One object's transfers are in s3_io.py. Write protocol and crash cases:
docs/durability.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING
from uuid import UUID

import anyio
import anyio.to_thread
import obstore
from obstore.store import S3Store

from juststorage.adapters.blobs import s3_multipart
from juststorage.adapters.blobs.s3_io import (
    S3BlobReader,
    S3Connection,
    S3Root,
    S3StagedBlob,
    hash_into,
    s3_client,
    translated_s3_errors,
)
from juststorage.adapters.blobs.staging import cleaned_up
from juststorage.application.records import BlobLocation, StoredBlob, TempFile
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash, StorageClass

if TYPE_CHECKING:
    from obstore import GetOptions

_PROBE_TIMEOUT_S = 15.0
BLOBS_DIR = "blobs/"
PROBE_DIR = "probe/"


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
        return s3_client(root, self.connection)

    def object_store(self, storage_class: StorageClass) -> S3Store:
        """The class's client (the part store shares it)."""
        return self._stores[storage_class]

    @property
    def part_bytes(self) -> int:
        return self._part_bytes

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    async def prepare(self) -> None:
        """Nothing to create: the bucket must exist (`/ready` probes it)."""

    def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AbstractAsyncContextManager[S3StagedBlob]:
        # `owner` is not kept: an object does not say which process writes it, so
        # uploads here always write their WRITING row (bootstrap's upload policy),
        # which is what GC asks before removing an object in flight.
        key = f"{BLOBS_DIR}{upload_id}"
        writer = obstore.open_writer_async(
            self._stores[storage_class],
            key,
            buffer_size=self._part_bytes,
            max_concurrency=self._max_concurrency,
        )
        staged = S3StagedBlob(
            self._stores[storage_class],
            self.connection,
            self.roots[storage_class],
            key,
            writer,
            self._part_bytes,
        )
        # A cancelled or failed upload still deletes (or aborts) its object.
        return cleaned_up(staged)

    async def open(
        self,
        location: BlobLocation,
        *,
        first: int = 0,
        length: int | None = None,
        background: bool = False,
    ) -> S3BlobReader:
        store, key = self._stores[location.storage_class], location.address
        if length == 0:
            try:
                with translated_s3_errors("open"):
                    meta = await obstore.head_async(store, key)
                return S3BlobReader(store, key, meta["size"], None)
            except NotFound:
                # A HEAD's 404 does not say whether the object or its bucket is
                # missing; a GET's answer does (and is not read if the object is there).
                with translated_s3_errors("open"):
                    result = await obstore.get_async(store, key)
                return S3BlobReader(store, key, result.meta["size"], None)
        with translated_s3_errors("open"):
            # One request both finds the object and starts sending the bytes.
            if length is None:
                result = await obstore.get_async(store, key)
            else:
                options: GetOptions = {"range": (first, first + length)}
                result = await obstore.get_async(store, key, options=options)
        return S3BlobReader(store, key, result.meta["size"], (first, result))

    async def probe(self, storage_class: StorageClass) -> None:
        store = self._stores[storage_class]
        key = f"{PROBE_DIR}{uuid.uuid4().hex}"
        try:
            with anyio.fail_after(_PROBE_TIMEOUT_S), translated_s3_errors("probe"):
                await obstore.put_async(store, key, b"probe")
                await obstore.delete_async(store, key)
        except TimeoutError as exc:
            # No bucket or host in the messages: /ready shows them to anyone.
            raise Unavailable("the object store did not answer in time") from exc
        except StorageError as exc:
            raise Unavailable("the object store refused the probe write") from exc

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        store = self._stores[storage_class]
        try:
            with translated_s3_errors("remove"):
                await obstore.head_async(store, address)
        except NotFound:
            # The HEAD's 404 does not say whether the bucket is missing; the DELETE's
            # does (Unavailable), and of a missing object it is a no-op.
            with translated_s3_errors("remove"):
                await obstore.delete_async(store, address)
            return False
        with translated_s3_errors("remove"):
            # A DELETE that returned is durable: GC commits the row's removal after it.
            await obstore.delete_async(store, address)
        return True

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        return None  # an object store: no file system to measure

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        root = self.roots[storage_class]
        with translated_s3_errors("list multipart uploads"):
            uploads = await s3_multipart.unfinished_uploads(self.connection, root, BLOBS_DIR)
        return [TempFile(storage_class, u.key, u.initiated_at, _upload_id(u.key)) for u in uploads]

    async def remove_temp(self, temp: TempFile) -> None:
        with translated_s3_errors("abort multipart upload"):
            await s3_multipart.abort_uploads_of(
                self.connection, self.roots[temp.storage_class], temp.name
            )

    async def rewrite(self, location: BlobLocation, chunks: AsyncIterable[bytes]) -> None:
        store, key = self._stores[location.storage_class], location.address
        writer = obstore.open_writer_async(
            store, key, buffer_size=self._part_bytes, max_concurrency=self._max_concurrency
        )
        root = self.roots[location.storage_class]
        staged = S3StagedBlob(store, self.connection, root, key, writer, self._part_bytes)
        try:
            async for chunk in chunks:
                await staged.write(chunk)
            # One PUT or a completed multipart upload: S3 replaces the object whole.
            await staged.seal()
        except BaseException:
            if not staged.stored:
                await staged.aclose()  # aborts a multipart upload begun; the old object stays
            raise

    async def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        store = self._stores[storage_class]
        # Only our own folders: anything else under the prefix is not ours to judge.
        # An object's key names its upload, not its bytes: only that upload adopts it.
        for folder in (BLOBS_DIR, PROBE_DIR):
            with translated_s3_errors("list"):
                async for page in obstore.list(store, prefix=folder, chunk_size=500):
                    yield [
                        StoredBlob(
                            storage_class,
                            meta["path"],
                            meta["size"],
                            meta["last_modified"],
                            upload_id=_upload_id(meta["path"]),
                        )
                        for meta in page
                    ]

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        reader = await self.open(location)
        hasher = hashlib.sha256()
        async for chunk in reader.chunks(0, reader.size_bytes):
            await hash_into(hasher, chunk)
        return ContentHash(hasher.hexdigest())


def _upload_id(key: str) -> UUID | None:
    if not key.startswith(BLOBS_DIR):
        return None
    try:
        return UUID(key.removeprefix(BLOBS_DIR))
    except ValueError:
        return None
