"""The ports of backups (SPEC §8.9; docs/backup.md): where a backup is written (a
`BackupTarget`: a directory or `s3://bucket/prefix`) and the one consistent snapshot
of the metadata it copies (a `MetadataDumper`).

Values cross these ports in their canonical Python form (`backup_format.Value`):
text as `str` (UUIDs too), integers as `int`, timestamps as aware `datetime`, bytes
as `bytes`, lists of strings as `list[str]`, NULL as None. The adapters convert
from and to what each database stores.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from juststorage.application.backup_format import Row
from juststorage.application.records import BlobLocation
from juststorage.domain.model import ContentHash, StorageClass

__all__ = ["BackupTarget", "DumpedBlob", "MetadataDumper", "MetadataSnapshot", "Table"]

Table = Literal["objects", "blobs", "api_keys"]


class BackupTarget(Protocol):
    """Keys are relative, `/`-separated (`blobs/ab/ab12…`, `backups/<id>/manifest.json`).

    Every put is atomic: a reader sees the whole value at its key or nothing (a
    directory writes a temp file under `tmp/`, fsyncs it, renames it into place and
    fsyncs the directory; S3 publishes an object only when its upload completes).
    Errors are domain errors: `NotFound` for a missing key, `Unavailable` for a
    target that cannot be reached, `StorageError` otherwise.
    """

    @property
    def description(self) -> str:
        """The target as the user named it (no credentials), for messages."""
        ...

    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` at `key` atomically, replacing what was there."""
        ...

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the chunks at `key` atomically; returns the bytes written.

        An exception out of `chunks` (e.g. a hash check that failed) aborts the put:
        nothing is left at `key` nor in the target's temporary space.
        """
        ...

    def get_stream(self, key: str) -> AsyncIterator[bytes]:
        """The bytes at `key` in chunks (bounded memory). NotFound if absent."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """The bytes at `key` (small values: manifests). NotFound if absent."""
        ...

    async def exists(self, key: str) -> bool: ...

    def list_keys(self, prefix: str) -> AsyncIterator[list[str]]:
        """Pages of the keys under `prefix` (a folder ending in `/`, or ""), every
        depth, in no particular order; temporary files are never listed."""
        ...

    def list_sizes(self, prefix: str) -> AsyncIterator[list[tuple[str, int]]]:
        """As `list_keys`, each key with its size in bytes (one listing: S3 returns
        sizes with the keys; a directory stats each file)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing key is no error."""
        ...

    async def clean_temp(self, older_than_s: float) -> int:
        """Remove what killed runs left in the target's temporary space, older than
        `older_than_s`; how many (S3: nothing to remove, an unfinished upload is
        invisible)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class DumpedBlob:
    """A blob referenced by the snapshot's committed objects: its row, and where its
    bytes are (`address`, as `BlobLocation.address`; `inline:<hex>` for inline ones)."""

    storage_class: StorageClass
    content_hash: ContentHash
    size_bytes: int
    created_at: datetime
    address: str

    @property
    def row(self) -> Row:
        """The `blobs` row a backup records."""
        return {
            "storage_class": self.storage_class.value,
            "content_hash": self.content_hash.hex,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
        }


class MetadataSnapshot(Protocol):
    """One consistent, read-only view of the metadata database, open until its
    context ends. Every read sees the same moment; rows are streamed (bounded memory)."""

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]: ...

    @property
    def schema(self) -> int:
        """The database's latest applied migration."""
        ...

    @property
    def snapshot_at(self) -> datetime:
        """A moment just before the snapshot was taken: every commit acknowledged
        before it is in the snapshot."""
        ...

    @property
    def taken_by(self) -> datetime:
        """A moment just after the snapshot was taken: no upload that began after it
        is in the snapshot."""
        ...

    def objects(self) -> AsyncIterator[list[Row]]:
        """Pages of the COMMITTED `objects` rows, every column, by commit_seq."""
        ...

    def blobs(self) -> AsyncIterator[list[DumpedBlob]]:
        """Pages of the blobs those objects reference, by content hash."""
        ...

    def api_keys(self) -> AsyncIterator[list[Row]]:
        """Pages of every `api_keys` row, revoked ones included, by id."""
        ...

    async def objects_without_blob(self) -> int:
        """How many committed objects name a blob no `blobs` row records (damage that
        `fsck` reports: their bytes could not be backed up)."""
        ...

    async def inline_bytes(self, storage_class: StorageClass, content_hash: ContentHash) -> bytes:
        """An inline blob's bytes as of the snapshot. NotFound if it has none."""
        ...


class MetadataDumper(Protocol):
    """Opens snapshots of one metadata database (on connections of its own), and
    answers two questions of the live database while a backup copies."""

    def snapshot(self) -> AbstractAsyncContextManager[MetadataSnapshot]: ...

    async def locate(
        self, storage_class: StorageClass, content_hash: ContentHash
    ) -> BlobLocation | bytes | None:
        """Where the blob is now: its location, its bytes if it is inline now, or
        None if no row knows it any more."""
        ...

    async def objects_of(
        self, storage_class: StorageClass, content_hash: ContentHash, limit: int
    ) -> list[tuple[str, str]]:
        """(tenant, object id) of up to `limit` committed versions referencing a blob."""
        ...
