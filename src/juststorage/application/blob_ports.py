"""The blob port: an upload's bytes, stored durably under an opaque address.

One addressing model for every store: a blob lives at an `address` the store gives
when it stores the bytes (`StagedBlob.address`) and the blob index records
(`BlobLocation.address`). The filesystem's address is the hash's hex (its content
path follows from it); S3's is the key of the object its bytes were written to
(`blobs/<uuid>`: an upload's id, or a fresh one for a migrate-blobs copy). No use case asks
which kind of store it talks to: GC and fsck find what the index does not know
through one `scan`, and remove it through one `remove` (application/orphans.py).

Adapters: `adapters/blobs/filesystem.py`, `adapters/blobs/s3.py`, and
`adapters/blobs/per_class.py`, which routes each class to its store. The metadata
ports are in `ports.py`; the records passed here are in `records.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol
from uuid import UUID

from juststorage.application.ports import UnitOfWork
from juststorage.application.records import BlobLocation, StoredBlob, TempFile
from juststorage.application.session_records import PartFile, SessionPart, StreamSlot
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
        """Finish writing and make the bytes durable; the digest and the size.

        After it returns the bytes are durable, though not yet addressable.
        """
        ...

    @property
    def address(self) -> str:
        """Where these bytes stay if they become the blob, for `BlobIndex.acquire`
        (known after `seal()`: the filesystem's follows from the hash)."""
        ...

    async def publish(self) -> bool:
        """Make the sealed bytes reachable at their address; True if this created the
        blob there (False: it was there already, or the store wrote them at their
        address while sealing and there is nothing left to do).

        After it returns the bytes survive power loss (file and directories fsynced,
        or the object stored). Needs no reference, so it runs outside any
        transaction; until a reference is taken, a GC pass may remove the blob
        again, which `confirm()` repairs.
        """
        ...

    def inline_bytes(self, blob: BlobLocation) -> bytes | bytearray | None:
        """The bytes that `confirm(blob)` would do nothing but write into the database
        (`BlobIndex.store_inline`: a blob kept inline, at this upload's address), so
        that a group commit can write several in one statement instead of confirming
        each; None when confirming does anything else (then call `confirm`)."""
        ...

    async def confirm(self, blob: BlobLocation, *, uow: UnitOfWork) -> bool:
        """Settle the blob, `blob` being the result of `BlobIndex.acquire`; True if this
        upload's bytes became the blob here (a file put back, this upload's address
        recorded, or its bytes written inline), False for a dedup hit or a blob that was
        already in place.

        `uow` is the unit of work that took the reference (the group commit's): a blob
        kept in the database (SPEC §8.1) writes its bytes through it, so they commit
        with the object; the other stores ignore it.

        Call after `publish()`, while holding the blob's reference: from then on
        no GC pass may remove it, so when this returns the committed reference
        points at durable bytes. The filesystem links the file again if a GC pass
        removed it since `publish()`. When the index kept an older copy's address
        (a dedup hit), this upload's own copy is removed at the end of `stage`,
        after the commit, outside the transaction.
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
    """Durable bytes at opaque addresses, one root per storage class."""

    async def prepare(self) -> None:
        """Create whatever the store needs (directories) before first use."""
        ...

    def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AbstractAsyncContextManager[StagedBlob]:
        """Somewhere to write one upload's bytes, listed by `temp_files` as
        `upload_id` (and `owner`, where the store can keep it) until sealed; leaving
        the block removes whatever did not become the blob."""
        ...

    async def open(
        self,
        location: BlobLocation,
        *,
        first: int = 0,
        length: int | None = None,
        background: bool = False,
    ) -> BlobReader:
        """Raises NotFound if the blob does not exist.

        `first`/`length` (None: to the end) say which bytes the caller will read
        first: a store may start fetching them at once (S3: one ranged GET that
        also answers whether the object exists, instead of a HEAD before it).
        `background`: the reader is a background job in a serving process (the
        scrub), whose bytes are likely not cached: the store does no blocking
        file operation on the event loop for it, however small.
        """
        ...

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        """Re-hash a blob's bytes, streamed in bounded memory (fsck).

        Raises NotFound if the blob is gone."""
        ...

    async def probe(self, storage_class: StorageClass) -> None:
        """Write, make durable and remove a probe; raises Unavailable on failure."""
        ...

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        """(free, total) bytes where the class is stored; None where the store has
        no such limit to measure (an object store)."""
        ...

    def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        """Every stored thing of the class, in batches: what GC and fsck compare with
        the index.

        Staging leftovers are not listed (temp files, unfinished multipart uploads:
        `temp_files` lists those), but an upload's bytes are as soon as they are
        stored at an address, before its commit: an S3 object once sealed, a file
        once published. Those are not orphans because `find_orphans` keeps a thing
        that names its upload while that upload's `WRITING` row exists, and
        `remove_orphan` removes a thing that names its content under that content's
        row lock, after which an upload of those bytes puts them back (`confirm`).
        """
        ...

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        """Delete what is stored at `address` durably; False if it was already gone.

        After it returns the removal survives power loss: GC commits the row's
        removal after it."""
        ...

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        """Uploads in flight (or dead) in the class: temp files, unfinished multipart
        uploads."""
        ...

    async def remove_temp(self, temp: TempFile) -> None:
        """Remove an upload in flight (GC of a dead one); one already gone is no error."""
        ...

    async def rewrite(self, location: BlobLocation, chunks: AsyncIterable[bytes]) -> None:
        """Put `chunks` at the blob's address, replacing whatever is there (a repair:
        `fsck --repair --from-backup` with bytes it verified). Durable when it
        returns: a file is written to a temp file, fsynced and renamed over the old
        one, its directory fsynced; an S3 object is stored at its key; an inline
        row's bytes are rewritten. An exception out of `chunks` leaves the old bytes.

        Raises NotFound for an inline blob whose row is gone."""
        ...


class StagedPart(Protocol):
    """One part of a multipart upload on its way into the part store (SPEC §8.2)."""

    async def write(self, chunk: bytes) -> None:
        """Hash and append a chunk (and feed the session's running hash, if given).

        Raises:
            InsufficientStorage: the disk is full.
        """
        ...

    async def seal(self) -> tuple[ContentHash, int]:
        """Make the part durable (file and directory fsynced); its digest and size."""
        ...

    @property
    def address(self) -> str:
        """The store's name for these bytes, which the part row records."""
        ...

    def keep(self) -> None:
        """The part row now names these bytes: leaving the block keeps them."""
        ...


class PartStore(Protocol):
    """Where the parts of multipart upload sessions are kept until completion, and
    how they become one blob (SPEC §8.2).

    Parts live beside the class's blobs, by session: `scan` lists them for GC and
    fsck, which compare them with the part rows. The filesystem stitches parts into
    one file with `copy_file_range` (reflinks where the file system has them); an
    object store would map a session onto its own multipart upload and complete it
    server-side, with the same port.
    """

    def receive(
        self,
        storage_class: StorageClass,
        session_id: UUID,
        number: int,
        owner: str,
        running: Hasher | None = None,
        stream: StreamSlot | None = None,
    ) -> AbstractAsyncContextManager[StagedPart]:
        """Somewhere to write part `number`; leaving the block removes the bytes unless
        `keep()` was called. `running`, if given, is fed the bytes as well (the
        session's hash of the parts so far, extended while parts arrive in order),
        and `stream` says where the part may go in the session's stream of in-order
        parts (a store may ignore it: S3 does). No stored part's range lies at or after
        `stream.offset` in that stream, so a store may overwrite from there."""
        ...

    def assemble(
        self,
        storage_class: StorageClass,
        session_id: UUID,
        parts: Sequence[SessionPart],
        upload_id: UUID,
        owner: str,
        hashed: Hasher | None,
        hashed_parts: int,
        *,
        reuse_stream: bool = False,
    ) -> AbstractAsyncContextManager[StagedBlob]:
        """The `parts` (their bytes at their addresses), in order, as one staged blob,
        sealed (its digest and size from `seal()`), to publish and commit like an
        upload's.

        `hashed` already holds the SHA-256 state of the first `hashed_parts` parts: only
        the others are read to hash them. Every part read is also hashed on its own in
        that same pass and checked against its row's `sha256`: a part whose stored bytes
        changed since its 200 raises DamagedPart (nothing published). Each byte is
        copied once, or not at all: with `reuse_stream` (nothing is being written to the
        session's stream, and nothing will be) a stream that holds exactly the parts may
        become the blob itself. Leaving the block removes the assembled copy unless it
        became the blob (never the stream).
        """
        ...

    def read(
        self, storage_class: StorageClass, session_id: UUID, address: str
    ) -> AsyncIterator[bytes]:
        """A part's bytes, in bounded chunks (for a whole small enough to go inline)."""
        ...

    async def remove(self, storage_class: StorageClass, session_id: UUID, address: str) -> None:
        """Remove one part's bytes; gone already is no error. An address that names a
        range of a stream removes nothing (other parts live in that file: GC removes
        it once no row names it)."""
        ...

    async def remove_session(self, storage_class: StorageClass, session_id: UUID) -> None:
        """Remove every part of the session and its folder; gone already is no error."""
        ...

    async def scan(self, storage_class: StorageClass) -> list[PartFile]:
        """Every part's bytes stored in the class, finished or being written."""
        ...


class Hasher(Protocol):
    """A running SHA-256 (hashlib's), fed by the part store's worker threads."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def copy(self) -> Hasher: ...

    def hexdigest(self) -> str: ...
