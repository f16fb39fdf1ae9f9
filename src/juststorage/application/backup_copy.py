"""A backup's copying (docs/backup.md): blobs streamed from the blob store to the
target, `parallel` at a time, each hashed while it streams and published only if
its bytes hash to its name; the blobs left to copy after the snapshot closes kept
in a local spill file."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import IO, Protocol

import anyio
from anyio.abc import ObjectReceiveStream, TaskGroup

from juststorage.application.backup_format import (
    BLOBS_PREFIX,
    TenantUsage,
    blob_key,
    hash_of_blob_key,
)
from juststorage.application.backup_ports import BackupTarget, DumpedBlob
from juststorage.application.blob_ports import BlobStore
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import NotFound, StorageError
from juststorage.domain.model import ContentHash, StorageClass
from juststorage.domain.timestamps import parse_utc_text, utc_text

__all__ = [
    "BackupFailed",
    "BackupObserver",
    "BlobCorrupt",
    "Copier",
    "Describe",
    "Relocate",
    "Spill",
    "Totals",
    "present_blob_sizes",
    "present_blobs",
]

# Where a blob is now, by its (class, hash), in the live database: its location, or
# its bytes when it is inline now; None when no row knows it any more.
Relocate = Callable[[DumpedBlob], Awaitable[BlobLocation | bytes | None]]
Describe = Callable[[DumpedBlob], Awaitable[str]]


class BackupFailed(StorageError):
    """The backup could not be completed (what is written stays incomplete; a
    re-run resumes it, `prune` removes it)."""


class BlobCorrupt(BackupFailed):
    """A source blob's bytes do not hash to its name."""


class BackupObserver(Protocol):
    """What a run reports while it goes (the CLI's progress line)."""

    def planned(self, blobs: int, size: int) -> None:
        """Known after the snapshot: the blobs (and their bytes) still to copy."""
        ...

    def copied(self, size: int) -> None:
        """Bytes of blob copied (called as they stream)."""
        ...

    def read(self, rows: int) -> None:
        """Rows of the snapshot read so far (called every `READ_REPORT_ROWS` rows and
        at the end of the snapshot), before `planned`."""
        ...


READ_REPORT_ROWS = 10_000


@dataclass
class Totals:
    objects: int = 0
    object_bytes: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    usage: dict[str, TenantUsage] = field(default_factory=dict)
    copied_blobs: int = 0
    copied_bytes: int = 0
    skipped_blobs: int = 0
    planned_blobs: int = 0
    planned_bytes: int = 0


async def present_blobs(target: BackupTarget) -> set[str]:
    """The hashes whose blob the target holds (one listing of `blobs/`)."""
    present: set[str] = set()
    async for page in target.list_keys(BLOBS_PREFIX):
        for key in page:
            digest = hash_of_blob_key(key)
            if digest is not None:
                present.add(digest)
    return present


async def present_blob_sizes(target: BackupTarget) -> dict[str, int]:
    """hash → size of each blob the target holds (one listing of `blobs/`, with
    sizes): a backup copies again a blob whose size is not its row's."""
    present: dict[str, int] = {}
    async for page in target.list_sizes(BLOBS_PREFIX):
        for key, size in page:
            digest = hash_of_blob_key(key)
            if digest is not None:
                present[digest] = size
    return present


async def _verified(
    chunks: AsyncIterator[bytes],
    blob: DumpedBlob,
    observer: BackupObserver,
    describe: Describe,
) -> AsyncIterator[bytes]:
    """The chunks, hashed as they pass; raises BlobCorrupt after the last one if they
    do not hash to the blob's name or size (so the put is aborted)."""
    hasher = hashlib.sha256()
    size = 0
    async for chunk in chunks:
        hasher.update(chunk)
        size += len(chunk)
        observer.copied(len(chunk))
        yield chunk
    if hasher.hexdigest() != blob.content_hash.hex or size != blob.size_bytes:
        raise BlobCorrupt(
            f"blob {blob.content_hash.hex} ({blob.storage_class.value}) is corrupt at its"
            f" source: its {size} bytes hash to {hasher.hexdigest()};"
            f" {await describe(blob)}. Run `juststorage fsck`."
        )


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Copier:
    """Copies blobs to the target, `parallel` at a time, through a bounded queue."""

    def __init__(
        self,
        target: BackupTarget,
        blobs: BlobStore,
        parallel: int,
        observer: BackupObserver,
        totals: Totals,
        relocate: Relocate,
        describe: Describe,
    ) -> None:
        self._target = target
        self._blobs = blobs
        self._observer = observer
        self._totals = totals
        self._relocate = relocate
        self._describe = describe
        self._send, self._receive = anyio.create_memory_object_stream[
            tuple[DumpedBlob, bytes | None]
        ](max_buffer_size=max(1, parallel))
        self._parallel = max(1, parallel)

    def start(self, group: TaskGroup) -> None:
        for _ in range(self._parallel):
            group.start_soon(self._work, self._receive.clone())
        self._receive.close()

    async def put(self, blob: DumpedBlob, inline: bytes | None) -> None:
        await self._send.send((blob, inline))

    async def close(self) -> None:
        await self._send.aclose()

    def close_unstarted(self) -> None:
        """Close the queue of a Copier whose workers were never started (copy_now)."""
        self._send.close()
        self._receive.close()

    async def copy_now(self, blob: DumpedBlob, inline: bytes | None) -> None:
        """Copy one blob in the caller's task (no queue): `backup verify --repair`.

        Raises:
            BlobCorrupt, BackupFailed: as a backup's copy.
        """
        await self._copy(blob, inline)

    async def _work(self, jobs: ObjectReceiveStream[tuple[DumpedBlob, bytes | None]]) -> None:
        async with jobs:
            async for blob, inline in jobs:
                await self._copy(blob, inline)

    async def _copy(self, blob: DumpedBlob, inline: bytes | None) -> None:
        key = blob_key(blob.content_hash.hex)
        if inline is not None:
            source: AsyncIterator[bytes] = _one(inline)
            await self._store(key, blob, source)
            return
        try:
            reader = await self._blobs.open(
                BlobLocation(blob.storage_class, blob.content_hash, blob.address)
            )
        except NotFound:
            reader = None
        if reader is None:
            # Moved since the snapshot (migrate-blobs, inline moves): where is it now?
            moved = await self._relocate(blob)
            if isinstance(moved, bytes):
                await self._store(key, blob, _one(moved))
                return
            if moved is not None and moved.address != blob.address:
                try:
                    reader = await self._blobs.open(moved)
                except NotFound:
                    reader = None
            if reader is None:
                raise BackupFailed(
                    f"blob {blob.content_hash.hex} ({blob.storage_class.value}) is missing"
                    f" at its source; {await self._describe(blob)}. Run `juststorage fsck`."
                )
        try:
            await self._store(key, blob, reader.chunks(0, blob.size_bytes))
        finally:
            await reader.close()

    async def _store(self, key: str, blob: DumpedBlob, source: AsyncIterator[bytes]) -> None:
        await self._target.put_stream(key, _verified(source, blob, self._observer, self._describe))
        self._totals.copied_blobs += 1
        self._totals.copied_bytes += blob.size_bytes


class Spill:
    """The blobs to copy after the snapshot closes, in a local temp file (one JSON
    line each): millions of them need no memory. Inline blobs' bytes, read in the
    snapshot, go to a second temp file, so the snapshot closes before any is
    written to the target."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._data: IO[bytes] | None = None  # inline bytes, opened on the first
        self._data_size = 0
        self.count = 0

    def add(self, blob: DumpedBlob, inline: bytes | None = None) -> None:
        line: list[object] = [
            blob.storage_class.value,
            blob.content_hash.hex,
            blob.size_bytes,
            utc_text(blob.created_at, fraction_digits=6),
            blob.address,
        ]
        if inline is not None:
            if self._data is None:
                self._data = tempfile.TemporaryFile()  # noqa: SIM115
            self._data.write(inline)
            line += [self._data_size, len(inline)]
            self._data_size += len(inline)
        self._file.write(json.dumps(line).encode() + b"\n")
        self.count += 1

    async def pages(self, size: int = 1000) -> AsyncIterator[list[DumpedBlob]]:
        async for page in self.entries(size):
            yield [blob for blob, _ in page]

    async def entries(
        self, size: int = 1000
    ) -> AsyncIterator[list[tuple[DumpedBlob, bytes | None]]]:
        """Pages of (blob, its inline bytes or None), in the order they were added."""
        self._file.flush()
        self._file.seek(0)
        if self._data is not None:
            self._data.flush()
        page: list[tuple[DumpedBlob, bytes | None]] = []
        for raw in self._file:
            fields = json.loads(raw)
            storage_class, digest, size_bytes, created_at, address = fields[:5]
            inline: bytes | None = None
            if len(fields) == 7 and self._data is not None:
                self._data.seek(int(fields[5]))
                inline = self._data.read(int(fields[6]))
            blob = DumpedBlob(
                StorageClass(storage_class),
                ContentHash.trusted(digest),
                int(size_bytes),
                parse_utc_text(created_at),
                address,
            )
            page.append((blob, inline))
            if len(page) >= size:
                yield page
                page = []
        if page:
            yield page

    def close(self) -> None:
        self._file.close()
        if self._data is not None:
            self._data.close()
