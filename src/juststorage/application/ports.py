"""Ports: what the application needs from the outside world, as Protocols.

Adapters in `juststorage.adapters` implement them; `juststorage.bootstrap` picks
which. Every method documents its guarantees; adapters translate their own
exceptions into `juststorage.domain.errors` at their boundary.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self, TypedDict
from uuid import UUID

from juststorage.domain.auth import Principal, Scope
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectState,
    ObjectVersion,
    StorageClass,
    TenantId,
)
from juststorage.domain.timestamps import utc_text


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


@dataclass(frozen=True, slots=True)
class ListQuery:
    tenant_id: TenantId
    namespace: Namespace
    limit: int
    after: ListCursor | None = None
    prefix: str = ""
    all_versions: bool = False
    storage_class: StorageClass | None = None


class ObjectSummary(TypedDict):
    """The SPEC's object JSON, every value already in its JSON form.

    Listings go from database rows to this without building an `ObjectVersion`:
    for a page of 1000 that was 6.9 ms of the event loop's time, this is 0.7 ms.
    """

    id: str
    namespace: str
    tenant_id: str
    key: str
    content_hash: str  # "sha256:<hex>"
    size_bytes: int
    storage_class: str
    content_type: str
    created_at: str  # RFC 3339, UTC, whole seconds (truncated), with "Z"


def summarize(version: ObjectVersion) -> ObjectSummary:
    """`version` as the SPEC's object JSON."""
    return {
        "id": str(version.id),
        "namespace": version.namespace,
        "tenant_id": version.tenant_id,
        "key": version.key,
        "content_hash": version.content_hash.prefixed,
        "size_bytes": version.size_bytes,
        "storage_class": version.storage_class.value,
        "content_type": version.content_type,
        "created_at": utc_text(version.created_at),
    }


# One listed version: its summary and its commit_seq (which a cursor carries).
Listed = tuple[ObjectSummary, int]


@dataclass(frozen=True, slots=True)
class ClassUsage:
    storage_class: StorageClass
    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Census:
    """How many versions (and logical bytes) are in one state, per tenant/namespace/class."""

    tenant_id: str
    namespace: str
    state: ObjectState
    storage_class: StorageClass
    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key: never the key itself, only its hash."""

    id: str
    key_hash: str
    tenants: frozenset[str]
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WritingUpload:
    """An upload in flight (or dead): its `WRITING` row."""

    id: UUID
    storage_class: StorageClass
    owner: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BlobAudit:
    """A blob row with the number of committed objects that point at it (for fsck)."""

    location: BlobLocation
    size_bytes: int
    ref_count: int
    live_objects: int


class ObjectRepository(Protocol):
    """Object versions of one unit of work."""

    async def add_writing(self, upload: NewUpload) -> None:
        """Record an upload in flight as a `WRITING` row, invisible to every read."""
        ...

    async def insert_committed(
        self, upload: NewUpload, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        """Record an upload that had no `WRITING` row as the newest `COMMITTED` version
        of its key (as `add_writing` followed by `commit_upload`)."""
        ...

    async def commit_upload(
        self, upload_id: UUID, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        """Turn the `WRITING` row into the newest `COMMITTED` version of its key.

        Assigns the next commit sequence number, which orders versions of a key.

        Raises:
            NotFound: the row is gone (for example, reaped as stale).
        """
        ...

    async def discard_writing(
        self, upload_id: UUID, *, last_touched: datetime | None = None
    ) -> bool:
        """Remove a `WRITING` row; with `last_touched`, only if not touched since then.

        True if a row was removed (absent is no error).
        """
        ...

    async def newest(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> ObjectVersion | None:
        """The newest `COMMITTED` version of a key, or None."""
        ...

    async def lock_key(self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey) -> None:
        """Serialise writers of one key, across processes, until the unit of work ends."""
        ...

    async def get(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        """A `COMMITTED` version by id, only if it belongs to `tenant_id`."""
        ...

    async def mark_deleting(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        """`COMMITTED` → `DELETING` for one version of `tenant_id`; None if not committed."""
        ...

    async def mark_key_deleting(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> list[ObjectVersion]:
        """`COMMITTED` → `DELETING` for every version of a key; the versions changed."""
        ...

    async def list_page(self, query: ListQuery) -> list[Listed]:
        """Up to `query.limit` committed versions after the cursor, summarized.

        Ordered by key (UTF-8 byte order), then newest first. Without
        `all_versions`, only the newest committed version of each key. Cost is
        independent of how deep the cursor is.
        """
        ...

    async def usage(self, tenant_id: TenantId) -> list[ClassUsage]:
        """Counts and logical bytes of the tenant's committed versions per class."""
        ...

    async def census(self) -> list[Census]:
        """Counts of every live state (all but DELETED), for metrics."""
        ...

    async def touch_writing(self, upload_id: UUID) -> None:
        """Mark a long upload as alive, so GC does not take it for a dead one."""
        ...

    async def writing_older_than(self, older_than: datetime, limit: int) -> list[WritingUpload]:
        """Up to `limit` `WRITING` rows not touched since `older_than`, oldest first."""
        ...

    async def writing_among(self, upload_ids: list[UUID]) -> set[UUID]:
        """Which of these uploads still have a `WRITING` row."""
        ...

    async def finish_deletes(self, limit: int) -> int:
        """`DELETING` → `DELETED` for up to `limit` rows (their references are released)."""
        ...

    async def purge_deleted(self, older_than: datetime, limit: int) -> int:
        """Drop up to `limit` `DELETED` rows older than `older_than`."""
        ...

    async def ids_of_blob(self, location: BlobLocation) -> list[UUID]:
        """Ids of the committed objects stored in this blob."""
        ...

    async def without_blob_row(self, limit: int) -> list[ObjectVersion]:
        """Committed objects whose blob has no row (damage; for fsck)."""
        ...


class BlobIndex(Protocol):
    """Reference counts of stored blobs, one row per (storage class, hash)."""

    async def acquire(
        self,
        storage_class: StorageClass,
        content_hash: ContentHash,
        size_bytes: int,
        key: str | None = None,
    ) -> BlobLocation:
        """Add one reference, creating the row if needed; where the blob lives now.

        `key` is where the caller's fresh copy of the bytes lives (`StagedBlob.key`).
        It is recorded when the row is new, and also when the row had no reference
        left (its old copy may already be half-removed by a GC pass that crashed;
        the old key is then an orphan for GC). Otherwise the row keeps its key and
        the fresh copy is redundant. Holds the row's lock until the unit of work
        ends, so no GC pass can remove the blob between this call and the commit.
        """
        ...

    async def release(self, storage_class: StorageClass, content_hash: ContentHash) -> None:
        """Drop one reference; at zero, stamp the release time GC's grace counts from."""
        ...

    async def unreferenced(self, released_before: datetime, limit: int) -> list[BlobLocation]:
        """Blobs with no reference since before `released_before`."""
        ...

    async def forget_if_unreferenced(
        self, location: BlobLocation, released_before: datetime
    ) -> bool:
        """Delete the row if it still has no reference since before `released_before`.

        The row stays locked until the unit of work ends: remove the file before
        committing, and no upload can take a new reference in between.
        """
        ...

    async def claim_orphan(self, location: BlobLocation, size_bytes: int) -> bool:
        """For a file with no row: insert a locked row with no reference; False if a row exists.

        Remove the file, then `forget()` the row, before committing.
        """
        ...

    async def forget(self, location: BlobLocation) -> None:
        """Delete the row whatever its count (GC of a claimed orphan; fsck repair)."""
        ...

    async def known(self, locations: list[BlobLocation]) -> set[BlobLocation]:
        """Which of these locations have a row."""
        ...

    async def locate(self, location: BlobLocation) -> BlobLocation | None:
        """The blob's row as a location, with its key; None if it has no row."""
        ...

    async def unlocated(
        self, storage_class: StorageClass, after: BlobLocation | None, limit: int
    ) -> list[tuple[BlobLocation, int]]:
        """Rows of the class that record no key, with their sizes, in hash order after
        `after` (blobs still at the filesystem's content path; migrate-blobs)."""
        ...

    async def relocate(self, location: BlobLocation, key: str) -> bool:
        """Record `key` on a row that records none; False if the row is gone or has one."""
        ...

    async def known_keys(self, storage_class: StorageClass, keys: list[str]) -> set[str]:
        """Which of these keys a blob row of the class records as its location."""
        ...

    async def audit(self, after: BlobLocation | None, limit: int) -> list[BlobAudit]:
        """Blob rows in (class, hash) order after `after`, with their live object counts."""
        ...

    async def totals(self) -> tuple[int, int]:
        """Number of blob rows and the bytes they hold."""
        ...

    async def set_ref_count(self, location: BlobLocation, ref_count: int) -> None:
        """Repair a drifted count; at zero the release time is stamped now."""
        ...


class LeaseRepository(Protocol):
    async def claim(
        self, name: str, holder: str, until: datetime, *, replacing: str | None = None
    ) -> bool:
        """Take or renew the named lease unless another holder's lease is still valid.

        `replacing` names a holder known to be dead, whose lease may be taken over.
        """
        ...

    async def holder_of(self, name: str) -> str | None: ...

    async def release(self, name: str, holder: str) -> None: ...


class ApiKeyRepository(Protocol):
    async def add(self, record: ApiKeyRecord) -> None: ...

    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_all(self) -> list[ApiKeyRecord]: ...

    async def revoke(self, key_id: str) -> bool:
        """Stamp `revoked_at`; False if no such key or already revoked."""
        ...

    async def count(self) -> int: ...


class UnitOfWork(Protocol):
    """One database transaction. Nothing it wrote is visible unless `commit()` is called.

    Leaving the `async with` block without `commit()`, or with an exception, rolls back.
    """

    @property
    def objects(self) -> ObjectRepository: ...

    @property
    def blobs(self) -> BlobIndex: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    @property
    def leases(self) -> LeaseRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make every write of this unit durable (unless opened with durable=False)."""
        ...


class MetadataStore(Protocol):
    """The database: a factory of units of work plus health and schema upkeep."""

    def transaction(self, *, durable: bool = True) -> UnitOfWork:
        """A read-write unit of work.

        `durable=False` may skip the flush to stable storage at commit; use it only
        for rows whose loss after a crash is harmless (e.g. `WRITING` markers).
        """
        ...

    def snapshot(self) -> UnitOfWork:
        """A read-only unit of work that sees every commit made before it began."""
        ...

    async def migrate(self) -> list[str]:
        """Apply pending schema migrations; the names applied."""
        ...

    async def ping(self) -> None:
        """Raises Unavailable unless the database answers."""
        ...

    async def close(self) -> None: ...


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


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """A blob: its identity is (class, hash); `key` is where a keyed store holds it
    (the `blobs.location` column), None where the place follows from the hash."""

    storage_class: StorageClass
    content_hash: ContentHash
    key: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class TempFile:
    """An upload in flight: a temp file, or an unfinished multipart upload.

    A temp file is `<upload id>.tmp`, or `<upload id>.<owner>.tmp` where `<owner>`
    is the uploading process's identity in URL-safe base64, so GC can leave the
    temp files of live processes alone without asking the database. `handle` is
    what the store needs to remove it (the multipart upload's id)."""

    storage_class: StorageClass
    name: str
    modified_at: datetime
    handle: str = field(default="", compare=False)

    @staticmethod
    def name_for(upload_id: UUID, owner: str = "") -> str:
        if not owner:
            return f"{upload_id}.tmp"
        encoded = base64.urlsafe_b64encode(owner.encode()).decode().rstrip("=")
        return f"{upload_id}.{encoded}.tmp"

    @property
    def upload_id(self) -> str:
        return self.name.removesuffix(".tmp").partition(".")[0]

    @property
    def owner(self) -> str:
        """The owner's identity; "" when the name carries none (or is not ours)."""
        encoded = self.name.removesuffix(".tmp").partition(".")[2]
        try:
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return ""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    location: BlobLocation
    size_bytes: int
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An object of a keyed store; `upload_id` is the upload that wrote it, if any."""

    storage_class: StorageClass
    key: str
    size_bytes: int
    modified_at: datetime
    upload_id: UUID | None


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


class ProcessLiveness(Protocol):
    """Identity of this process, and whether another owner is certainly dead."""

    def identity(self) -> str: ...

    def is_dead(self, owner: str) -> bool:
        """True only when the owner is known to have stopped (never a guess)."""
        ...


class TokenVerifier(Protocol):
    def verify(self, token: str) -> Principal:
        """The principal a signed token names. Raises Unauthorized if invalid."""
        ...
