"""The blob port: bytes stored by content, one root per storage class.

Adapters: `adapters/blobs/filesystem.py`, `adapters/blobs/s3.py` (and
`per_class.py`, which routes each class to its store). The metadata ports are in
`ports.py`; the records these methods pass are in `records.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol
from uuid import UUID

from juststorage.application.records import BlobLocation, StoredBlob, StoredKey, TempFile
from juststorage.domain.model import ContentHash, StorageClass


class StagedBlob(Protocol):
    """An upload's bytes on their way into the blob store (see `BlobStore.stage`)."""

    async def write(self, chunk: bytes) -> None:
        """Hash and append a chunk. May return before the chunk reaches the file.

        Raises:
            InsufficientStorage: the disk is full.
        """
        ...

    async def seal(self) -> tuple[ContentHash, int]:
        """Finish writing and fsync the temp file; the digest and the size.

        After it returns the bytes are durable, though not yet addressable.
        """
        ...

    @property
    def key(self) -> str | None:
        """Where these bytes stay if they become the blob, for `BlobIndex.acquire`;
        None where the place follows from the hash (the filesystem's content path)."""
        ...

    async def publish(self) -> bool:
        """Make the sealed bytes reachable where a blob of their hash is looked for;
        True if this created the blob's file (False: it was there, or the store keeps
        each upload under its own key and there is nothing to do here).

        After it returns the bytes survive power loss (file and directories fsynced,
        or the object stored). Needs no reference, so it runs outside any
        transaction; until a reference is taken, a GC pass may remove the blob
        again, which `confirm()` repairs.
        """
        ...

    async def confirm(self, blob: BlobLocation) -> bool:
        """Settle the blob, `blob` being the result of `BlobIndex.acquire`; True if this
        upload's bytes became the blob here (a file put back, or this upload's key
        recorded), False for a dedup hit or a blob that was already in place.

        Call after `publish()`, while holding the blob's reference: from then on
        no GC pass may remove it, so when this returns the committed reference
        points at durable bytes. The filesystem links the file again if a GC pass
        removed it since `publish()`. A keyed store's dedup hit leaves the fresh
        copy to the end of `stage`, which removes it after the commit, outside the
        transaction.
        """
        ...


class BlobReader(Protocol):
    """An open blob; the bytes stay readable even if the file is unlinked meanwhile."""

    @property
    def path(self) -> Path | None:
        """The blob's file, for zero-copy sending; None when it is not a local file."""
        ...

    def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        """Stream `length` bytes from offset `first`, in bounded chunks."""
        ...

    async def close(self) -> None: ...


class BlobStore(Protocol):
    """Content-addressed bytes, one root per storage class."""

    async def prepare(self) -> None:
        """Create whatever the store needs (directories) before first use."""
        ...

    def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AbstractAsyncContextManager[StagedBlob]:
        """A temp file in the class root, named by `TempFile.name_for(upload_id, owner)`;
        leaving the block removes it (a published blob lives on under its content path)."""
        ...

    async def open(
        self, location: BlobLocation, *, first: int = 0, length: int | None = None
    ) -> BlobReader:
        """Raises NotFound if the blob does not exist.

        `first`/`length` (None: to the end) say which bytes the caller will read
        first: a store may start fetching them at once (S3: one ranged GET that
        also answers whether the object exists, instead of a HEAD before it).
        """
        ...

    async def probe(self, storage_class: StorageClass) -> None:
        """Write, fsync and remove a probe file; raises Unavailable on failure."""
        ...

    async def remove(self, location: BlobLocation) -> bool:
        """Unlink a blob file durably; False if it was already gone."""
        ...

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        """Temp files of uploads in flight (or dead) in a class root."""
        ...

    async def remove_temp(self, temp: TempFile) -> None: ...

    def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        """Every published blob file of a class root, in batches."""
        ...

    def keyed(self, storage_class: StorageClass) -> bool:
        """True when the class keeps blobs under keys the database records
        (`BlobLocation.key`), False when a blob's place follows from its hash."""
        ...

    def scan_keys(self, storage_class: StorageClass) -> AsyncIterator[list[StoredKey]]:
        """Every object of a keyed class, in batches (nothing for a hash-addressed one)."""
        ...

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        """Re-hash a blob's bytes, streamed in bounded memory (fsck).

        Raises NotFound if the blob is gone."""
        ...

    async def remove_key(self, storage_class: StorageClass, key: str) -> bool:
        """Delete one object of a keyed class (an orphan); False if it was already gone."""
        ...
