"""Ports: what the application needs from the outside world, as Protocols only.

Adapters in `juststorage.adapters` implement them; `juststorage.bootstrap` picks
which. Every method documents its guarantees; adapters translate their own
exceptions into `juststorage.domain.errors` at their boundary. The records they
pass are in `records.py`.

The metadata ports are split by their callers: an adapter's one repository object
satisfies all of them (`ObjectRepository`, `BlobIndex`), and each use case needs
only the narrow one named after what it does.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from juststorage.application.records import (
    ApiKeyRecord,
    BlobAudit,
    BlobLocation,
    Census,
    ClassUsage,
    CommonPrefix,
    ListQuery,
    LocatedVersion,
    NamespaceUsage,
    StoredBlob,
    WritingUpload,
)
from juststorage.application.scrub_records import ScrubRows
from juststorage.application.session_records import SessionPart, UploadSession
from juststorage.application.summaries import Listed
from juststorage.domain.auth import Principal
from juststorage.domain.limits import BucketAsk, BucketTake
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectVersion,
    StorageClass,
    TenantId,
)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class ObjectReads(Protocol):
    """Reads of committed versions: downloads, preconditions, listings, usage, metrics."""

    async def located(
        self, tenant_id: TenantId, object_id: UUID, *, with_bytes: bool = True
    ) -> LocatedVersion | None:
        """A `COMMITTED` version by id, only if it belongs to `tenant_id`, with where
        its blob is (one read: the GET path) and, with `with_bytes`, its inline bytes
        when it is kept inline (HEAD passes False: none are sent)."""
        ...

    async def newest_located(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey, *, with_bytes: bool = True
    ) -> LocatedVersion | None:
        """The newest `COMMITTED` version of a key with where its blob is, or None
        (`with_bytes` as for `located`)."""
        ...

    async def newest(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> ObjectVersion | None:
        """The newest `COMMITTED` version of a key, or None."""
        ...

    async def holds_content(
        self,
        tenant_id: TenantId,
        storage_class: StorageClass,
        content_hash: ContentHash,
        size_bytes: int,
    ) -> bool:
        """True if `tenant_id` has a `COMMITTED` version of this content and size in
        `storage_class`, in any namespace (upload by hash, SPEC §8.3).

        One read through an index that starts with the tenant: what other tenants
        store changes neither its answer nor its cost (SPEC §5).
        """
        ...

    async def s3_etags(self, object_ids: Sequence[str]) -> dict[str, str]:
        """The recorded S3 ETags of these versions (ids as listings give them), by id;
        versions without one are left out."""
        ...

    async def list_page(self, query: ListQuery) -> list[Listed]:
        """Up to `query.limit` committed versions after the cursor, summarized.

        Ordered by key (UTF-8 byte order), then newest first. Without
        `all_versions`, only the newest committed version of each key. Cost is
        independent of how deep the cursor is.
        """
        ...

    async def list_delimited(self, query: ListQuery) -> list[Listed | CommonPrefix]:
        """Up to `query.limit` entries after the cursor for a query with a delimiter:
        versions as `list_page` lists them, but a key that holds the delimiter after
        the prefix is one `CommonPrefix` entry, at its place in key order, for all the
        keys that share it.

        A rolled-up prefix costs one index seek, however many keys start with it
        (SPEC §8.4). Its entry does not depend on `storage_class`, which filters the
        versions only: whether a prefix holds a version of one class would take
        reading every key under it.
        """
        ...

    async def usage(self, tenant_id: TenantId) -> list[ClassUsage]:
        """Counts and logical bytes of the tenant's committed versions per class."""
        ...

    async def census(self) -> list[Census]:
        """Counts of every live state (all but DELETED), for metrics."""
        ...

    async def namespaces(self, tenant_id: TenantId) -> list[NamespaceUsage]:
        """The namespaces holding committed versions of the tenant, in any order, with
        their counts; read from counters, so the cost does not grow with the objects."""
        ...


class UploadRows(Protocol):
    """An upload's rows: its `WRITING` marker and its commit (uploads, group commit)."""

    async def add_writing(self, upload: NewUpload) -> None:
        """Record an upload in flight as a `WRITING` row, invisible to every read."""
        ...

    async def touch_writing(self, upload_id: UUID) -> None:
        """Mark a long upload as alive, so GC does not take it for a dead one."""
        ...

    async def discard_writing(
        self, upload_id: UUID, *, last_touched: datetime | None = None
    ) -> bool:
        """Remove a `WRITING` row; with `last_touched`, only if not touched since then.

        True if a row was removed (absent is no error).
        """
        ...

    async def lock_keys(self, keys: Sequence[tuple[TenantId, Namespace, ObjectKey]]) -> None:
        """Serialise writers of these keys, across processes, until the unit of work
        ends; taken in the order given (callers sort them: no deadlock between two)."""
        ...

    async def commit_upload(
        self,
        upload_id: UUID,
        content_hash: ContentHash,
        size_bytes: int,
        *,
        s3_etag: str | None = None,
    ) -> ObjectVersion:
        """Turn the `WRITING` row into the newest `COMMITTED` version of its key
        (recording `s3_etag`, known only once the bytes are in, when given).

        Assigns the next commit sequence number, which orders versions of a key.

        Raises:
            NotFound: the row is gone (for example, reaped as stale).
        """
        ...

    async def insert_committed(
        self, upload: NewUpload, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        """Record an upload that had no `WRITING` row as the newest `COMMITTED` version
        of its key (as `add_writing` followed by `commit_upload`)."""
        ...

    async def insert_committed_many(
        self, uploads: Sequence[tuple[NewUpload, ContentHash, int]]
    ) -> list[ObjectVersion]:
        """`insert_committed` for each (upload, hash, size), in one statement where the
        database allows it; the versions in the order given. The uploads' keys differ."""
        ...


class ObjectDeletes(Protocol):
    """Hiding versions (deletes)."""

    async def mark_deleting(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        """`COMMITTED` → `DELETING` for one version of `tenant_id`; None if not committed."""
        ...

    async def mark_key_deleting(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> list[ObjectVersion]:
        """`COMMITTED` → `DELETING` for every version of a key; the versions changed."""
        ...


class ObjectUpkeep(Protocol):
    """What GC and fsck ask of the object rows."""

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

    async def without_blob_row_among(self, upload_ids: list[UUID]) -> list[ObjectVersion]:
        """The versions of these uploads (a version's id is its upload's) that are
        `COMMITTED` or `DELETING` while their blob has no row: bytes stored under the
        upload's name are then the lost row's blob (damage; GC keeps them, fsck
        records the row again), not a dedup hit's redundant copy."""
        ...


class ObjectRepository(ObjectReads, UploadRows, ObjectDeletes, ObjectUpkeep, Protocol):
    """Object versions of one unit of work: every narrow object port in one."""


class BlobReferences(Protocol):
    """Reference counts as uploads and deletes change them."""

    async def acquire(self, blob: BlobLocation, size_bytes: int) -> BlobLocation:
        """Add one reference, creating the row if needed; where the blob lives now.

        `blob.address` is where the caller's fresh copy of the bytes lives
        (`StagedBlob.address`). It is recorded when the row is new, and also when the
        row had no reference left (its old copy may already be half-removed by a GC
        pass that crashed; the old address is then an orphan for GC). Otherwise the
        row keeps its address and the fresh copy is redundant. Holds the row's lock
        until the unit of work ends, so no GC pass can remove the blob between this
        call and the commit.
        """
        ...

    async def acquire_referenced(self, blob: BlobLocation, size_bytes: int) -> BlobLocation | None:
        """Add one reference to a blob that holds at least one already (upload by hash,
        which brings no bytes of its own); where the blob lives. None, and nothing
        changed, if the row is gone, has no reference left (GC may be removing its
        bytes, or a pass that crashed may have removed them) or records another size.

        `blob.address` is ignored: a referenced row keeps its address. Holds the row's
        lock until the unit of work ends, as `acquire` does: a referenced blob's bytes
        are in place, and no GC pass can remove them before the commit.
        """

    async def acquire_many(self, blobs: Sequence[tuple[BlobLocation, int]]) -> list[BlobLocation]:
        """`acquire` for each (blob, size), in the order given (callers give (class, hash)
        order: rows are locked in it), in one statement where the database allows it;
        where each blob lives now, in that order. The same blob twice takes two
        references, and the second keeps the address the first recorded, as two calls
        of `acquire` would."""
        ...

    async def release(self, storage_class: StorageClass, content_hash: ContentHash) -> None:
        """Drop one reference; at zero, stamp the release time GC's grace counts from."""
        ...


class BlobCollection(Protocol):
    """What GC asks of the blob rows (fsck shares the orphan checks)."""

    async def unreferenced(self, released_before: datetime, limit: int) -> list[BlobLocation]:
        """Blobs with no reference since before `released_before`."""
        ...

    async def forget_if_unreferenced(
        self, location: BlobLocation, released_before: datetime
    ) -> bool:
        """Delete the row if it still has no reference since before `released_before`.

        The row stays locked until the unit of work ends: remove the blob before
        committing, and no upload can take a new reference in between.
        """
        ...

    async def claim_orphan(self, location: BlobLocation, size_bytes: int) -> bool:
        """For stored bytes with no row: insert a locked row with no reference that
        records `location.address`; False if a row exists. Remove the bytes, then
        `forget()` the row, before committing (GC); or set its count (fsck's repair).
        """
        ...

    async def forget(self, location: BlobLocation) -> None:
        """Delete the row whatever its count (GC of a claimed orphan; fsck repair)."""
        ...

    async def known(self, storage_class: StorageClass, stored: list[StoredBlob]) -> set[str]:
        """The addresses of `stored` that a row of the class accounts for: by its hash
        where the address names content (whatever address the row records), by the
        recorded address otherwise."""
        ...


class BlobAuditing(Protocol):
    """What fsck asks beyond GC's checks."""

    async def audit(self, after: BlobLocation | None, limit: int) -> list[BlobAudit]:
        """Blob rows in (class, hash) order after `after`, with their live object counts."""
        ...

    async def set_ref_count(self, location: BlobLocation, ref_count: int) -> None:
        """Repair a drifted count; at zero the release time is stamped now."""
        ...

    async def totals(self) -> tuple[int, int]:
        """Number of blob rows and the bytes they hold."""
        ...


class BlobMoves(Protocol):
    """What migrate-blobs asks: rows still at their content address."""

    async def content_addressed(
        self, storage_class: StorageClass, after: BlobLocation | None, limit: int
    ) -> list[tuple[BlobLocation, int]]:
        """Rows of the class whose address is still the content address (they record
        none), with their sizes, in hash order after `after`."""
        ...

    async def relocate(self, location: BlobLocation, address: str) -> bool:
        """Record `address` on a row still at its content address; False if the row is
        gone or has another address."""
        ...


class InlineBytes(Protocol):
    """The bytes of blobs kept in the database (SPEC §8.1), one row per blob row whose
    address is `inline:<hex>`. They are deleted with their blob row (`forget`,
    `forget_if_unreferenced`), in the same transaction."""

    async def claim_stale(self, location: BlobLocation) -> bool:
        """For stored bytes of a content whose row records a copy of the other kind
        (the row inline and these a file, or the reverse: left by a threshold change
        or a row re-pointed once unreferenced): lock the row until the unit of work
        ends and say True, deleting these bytes already when they are inline; the
        caller removes a file before committing. False if there is no row, or the
        row's copy is of this kind (these bytes may be the blob)."""
        ...

    async def store_inline(self, location: BlobLocation, data: bytes | bytearray) -> bool:
        """Write a blob's bytes (an upload's `confirm()`, in its commit's transaction:
        its buffer as it is, not a copy); False if they were there already."""
        ...

    async def store_inline_many(
        self, rows: Sequence[tuple[BlobLocation, bytes | bytearray]]
    ) -> list[bool]:
        """`store_inline` for each (location, data), in the order given, in one statement
        where the database allows it; a blob named twice is stored by its first row."""
        ...

    async def inline_data(self, location: BlobLocation) -> bytes | None:
        """A blob's inline bytes, or None."""
        ...

    async def inline_stored(
        self, storage_class: StorageClass, after: str, limit: int
    ) -> list[tuple[ContentHash, int]]:
        """Inline rows of the class after the hash `after` (hex), in hash order, with
        their sizes (the inline store's `scan`)."""
        ...

    async def to_move(
        self, storage_class: StorageClass, *, inline: bool, max_bytes: int, after: str, limit: int
    ) -> list[tuple[BlobLocation, int]]:
        """migrate-blobs: with `inline`, rows kept elsewhere (a file, an S3 object) of at
        most `max_bytes`; without, inline rows over `max_bytes` (every inline row when
        `max_bytes` is 0: inlining is off); in hash order after `after`, at their
        addresses, with their sizes."""
        ...

    async def count_to_move(
        self, storage_class: StorageClass, *, inline: bool, max_bytes: int
    ) -> int:
        """How many rows `to_move` would list in all (one count, no rows loaded)."""
        ...

    async def move_inline(self, location: BlobLocation, data: bytes | bytearray) -> bool:
        """Keep `data` inline for a row still at `location.address` and record the
        inline address; False (nothing changed) if the row is gone or re-pointed."""
        ...

    async def move_out_of_line(self, location: BlobLocation, address: str) -> bool:
        """Point an inline row at `address` (its copy must be durable there first) and
        delete its inline bytes; False (nothing changed) if the row is not inline."""
        ...


class BlobIndex(BlobReferences, BlobCollection, BlobAuditing, BlobMoves, InlineBytes, Protocol):
    """Reference counts of stored blobs, one row per (storage class, hash): every
    narrow blob-row port in one."""


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

    async def renew(self, name: str, holder: str, until: datetime) -> bool:
        """Extend to `until` the named lease `holder` holds, if it is still valid; never
        takes one (a lease released or lapsed stays so). False if not renewed."""
        ...

    async def release_valid(self, name: str, holder: str) -> bool:
        """Release the named lease if `holder` holds it and it is still valid; False if
        it lapsed or is gone (what it covered may have been taken for garbage)."""
        ...

    async def named(self, prefix: str) -> list[tuple[str, str, datetime]]:
        """Every lease whose name starts with `prefix`, valid or not: (name, holder,
        expiry)."""
        ...


class BackupHolds(Protocol):
    """Backups in progress, which GC must not take blobs from (docs/durability.md)."""

    async def take(
        self, hold_id: str, holder: str, until: datetime, started_at: datetime | None = None
    ) -> datetime:
        """Record a hold valid until `until`; its start, returned: `started_at` if
        given (a lapsed hold taken again keeps its start), else the earlier of the
        clock's now and the database's."""
        ...

    async def renew(self, hold_id: str, until: datetime) -> bool:
        """Push the hold's expiry to `until`; False if the row is gone."""
        ...

    async def release(self, hold_id: str) -> None: ...

    async def all(self) -> list[tuple[str, str, datetime, datetime]]:
        """Every hold, lapsed or not: (id, holder, started_at, expires_at), oldest first."""
        ...


class QuotaReservations(Protocol):
    """Bytes that uploads in flight may still commit (SPEC §4: concurrent uploads never
    take a tenant's usage over its quota, across every process sharing the database)."""

    async def reserve_up_to(
        self,
        reservation_id: UUID,
        tenant_id: TenantId,
        minimum: int,
        wanted: int,
        quota_bytes: int,
        expires_at: datetime,
        *,
        replacing: UUID | None = None,
    ) -> int | None:
        """Record the reservation (new, grown, or taken again after it lapsed) at as
        much of `wanted` as the tenant's quota has room for beside its committed usage
        and its other live reservations (but `replacing`, that of what this upload
        replaces), if that is at least `minimum`: the size recorded, or None, changing
        nothing.

        The check and the write hold the tenant's quota lock until the unit of work
        ends, so two reservations never both take the last bytes. Lapsed rows of the
        tenant are dropped on the way.
        """
        ...

    async def renew(self, reservation_id: UUID, expires_at: datetime) -> bool:
        """Push a live reservation's expiry to `expires_at`; False if it is gone or lapsed
        (others may have counted on its bytes since: reserve again)."""
        ...

    async def settle(self, reservation_id: UUID) -> None:
        """Drop the reservation: in the transaction that commits its upload (whose bytes
        then count as usage), or when the upload fails. Absent is no error."""
        ...


class RateBuckets(Protocol):
    """Token buckets shared by every process sharing the database, refilled from the
    database's clock (so hosts need not agree on the time)."""

    async def take(self, tenant_id: str, resource: str, ask: BucketAsk) -> BucketTake:
        """Refill the (tenant, resource) bucket, full when new, then grant what `ask`
        asks for if the refilled balance is at least `ask.minimum` (nothing otherwise).

        One `UPDATE … RETURNING` on an existing bucket (a new one is inserted first):
        concurrent takes of every process are serialised by the row.
        """
        ...


class ApiKeyRepository(Protocol):
    async def add(self, record: ApiKeyRecord) -> None: ...

    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    async def list_all(self) -> list[ApiKeyRecord]: ...

    async def revoke(self, key_id: str) -> bool:
        """Stamp `revoked_at`; False if no such key or already revoked."""
        ...

    async def count(self) -> int: ...


class UploadSessionRows(Protocol):
    """The rows of resumable multipart uploads (SPEC §8.2): sessions and their parts.

    A session's parts count against its tenant's quota through their reservations
    (`SessionPart.reservation_id`), which live as long as the session does.
    """

    async def add_session(self, session: UploadSession) -> None: ...

    async def session(self, session_id: UUID, *, with_parts: bool = True) -> UploadSession | None:
        """The session (open or completed, expired or not), or None."""
        ...

    async def part(self, session_id: UUID, number: int) -> SessionPart | None:
        """Part `number` of the session as stored now, or None."""
        ...

    async def open_page(
        self,
        tenant_id: TenantId,
        namespace: Namespace,
        after: tuple[str, UUID] | None,
        limit: int,
    ) -> list[UploadSession]:
        """Open, unexpired sessions of the namespace after `(key, id)`, in key order
        (then id), with their parts."""
        ...

    async def put_part(
        self, session_id: UUID, part: SessionPart, expires_at: datetime
    ) -> SessionPart | None:
        """Record `part` (replacing the part of its number), push the session's expiry
        and its parts' reservations to `expires_at`, and settle the replaced part's
        reservation; the replaced part, whose bytes the caller removes after the commit.

        Raises:
            NotFound: the session is not open or has expired.
        """
        ...

    async def drop_part(self, session_id: UUID, number: int, address: str) -> SessionPart | None:
        """Delete part `number` of the open session if its row still names `address`
        (its bytes were found damaged), settling its reservation: the part, or None
        (replaced meanwhile, or the session is no longer open). The caller removes
        its bytes after the commit."""
        ...

    async def claim_completion(
        self, session_id: UUID, object_id: UUID, expires_at: datetime
    ) -> list[SessionPart]:
        """Mark the open, unexpired session completed by `object_id` (in the transaction
        that commits the object) until `expires_at` (retried completions answer its
        object until then); delete its part rows and settle their reservations. The
        parts as they are now: the session row is locked first, and every part's write
        updates it, so no part changes until the transaction ends (the caller checks
        them against the ones it assembled, and rolls back if they differ). The
        caller removes their bytes after the commit.

        Raises:
            NotFound: the session is not open (completed, aborted) or has expired.
        """
        ...

    async def remove_session(
        self, session_id: UUID, *, open_only: bool = False
    ) -> list[SessionPart] | None:
        """Delete the session (`open_only`: if it is open) and its parts, settling their
        reservations; the parts (for their bytes), or None if no such session was
        deleted."""
        ...

    async def expired_sessions(self, now: datetime, limit: int) -> list[UploadSession]:
        """Sessions past `expires_at` (open or completed), without parts."""
        ...

    async def part_addresses(self, session_ids: list[UUID]) -> dict[UUID, set[str]]:
        """For each of `session_ids` that is open: its parts' addresses (maybe none).
        Everything stored for another session (completed, aborted, expired) is garbage."""
        ...

    async def parts_page(
        self, after: tuple[UUID, int] | None, limit: int
    ) -> list[tuple[UUID, StorageClass, SessionPart]]:
        """Every part row after `(session id, part number)` in that order, with its
        session's storage class (fsck)."""
        ...


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

    @property
    def holds(self) -> BackupHolds: ...

    @property
    def quota(self) -> QuotaReservations: ...

    @property
    def buckets(self) -> RateBuckets: ...

    @property
    def sessions(self) -> UploadSessionRows: ...

    @property
    def scrub(self) -> ScrubRows: ...

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

    async def has_schema(self) -> bool:
        """Whether the store exists: its schema (the migrations table) is there.

        Creates nothing, not even an empty database file: only `migrate` does.
        """
        ...

    async def ping(self) -> None:
        """Raises Unavailable unless the database answers."""
        ...

    async def close(self) -> None: ...

    def revocation_stamp(self) -> Hashable | None:
        """A value that changes whenever `announce_revocation()` runs in any process
        sharing this store, read without a database round; None when the store has
        no such signal (then every API key check reads the key's row)."""
        ...

    async def announce_revocation(self) -> None:
        """Change `revocation_stamp()` for every process sharing the store; called
        after an API key revocation has committed. Best effort: a failure is not
        raised (checks then see the revocation within their cache's age limit)."""
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
