"""In-memory fakes of the ports, honest enough to pass the contract suites.

`FakeMetadataStore` keeps committed state in dicts; a unit of work edits a copy
and swaps it in only on `commit()` (so it rolls back unless committed, STYLE G3).
Writers are serialised by a lock, as the SQLite adapter serialises them.
`FakeBlobStore` keeps blobs as bytes and tracks staged "temp files" by upload id;
both carry a modification time from the store's clock, as files carry an mtime.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from uuid import UUID, uuid4

import anyio

from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import Clock, MetadataStore
from juststorage.application.records import (
    ApiKeyRecord,
    BlobAudit,
    BlobLocation,
    Census,
    ClassUsage,
    ListQuery,
    LocatedVersion,
    StoredBlob,
    TempFile,
    WritingUpload,
)
from juststorage.application.summaries import Listed, summarize
from juststorage.application.uploads import Uploader, UploadRequest, UploadResult
from juststorage.domain.errors import NotFound, StorageError
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


class FakeClock:
    """A settable clock; always timezone-aware UTC."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = datetime(2025, 12, 11, 10, 30, tzinfo=UTC)
        if start is not None:
            self.set(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")
        self._now = moment.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class BlobRecord:
    size_bytes: int
    ref_count: int
    created_at: datetime
    released_at: datetime | None = None
    location: str | None = None


@dataclass
class State:
    objects: dict[UUID, ObjectVersion] = field(default_factory=dict)  # COMMITTED and later
    writing: dict[UUID, NewUpload] = field(default_factory=dict)  # WRITING rows
    blobs: dict[tuple[StorageClass, str], BlobRecord] = field(default_factory=dict)
    api_keys: dict[str, ApiKeyRecord] = field(default_factory=dict)
    updated_at: dict[UUID, datetime] = field(default_factory=dict)  # of every object row
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # holder, expiry

    def copy(self) -> State:
        # Values are frozen, so copying the dicts copies the state.
        return State(
            dict(self.objects),
            dict(self.writing),
            dict(self.blobs),
            dict(self.api_keys),
            dict(self.updated_at),
            dict(self.leases),
        )


def committed(state: State) -> list[ObjectVersion]:
    return [v for v in state.objects.values() if v.state is ObjectState.COMMITTED]


class FakeObjectRepository:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def add_writing(self, upload: NewUpload) -> None:
        if upload.id in self._state.writing or upload.id in self._state.objects:
            raise StorageError(f"duplicate object id {upload.id}")
        self._state.writing[upload.id] = upload
        self._state.updated_at[upload.id] = upload.created_at

    async def insert_committed(
        self, upload: NewUpload, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        await self.add_writing(upload)
        return await self.commit_upload(upload.id, content_hash, size_bytes)

    async def commit_upload(
        self, upload_id: UUID, content_hash: ContentHash, size_bytes: int
    ) -> ObjectVersion:
        upload = self._state.writing.pop(upload_id, None)
        if upload is None:
            raise NotFound("the upload's WRITING row is gone")
        seq = max((v.commit_seq for v in self._state.objects.values()), default=0) + 1
        version = ObjectVersion(
            id=upload.id,
            tenant_id=upload.tenant_id,
            namespace=upload.namespace,
            key=upload.key,
            content_hash=content_hash,
            size_bytes=size_bytes,
            storage_class=upload.storage_class,
            content_type=upload.content_type,
            created_at=self._clock.now(),  # as in SQL: created_at is the commit time
            state=ObjectState.COMMITTED,
            commit_seq=seq,
        )
        self._state.objects[version.id] = version
        self._state.updated_at[version.id] = version.created_at
        return version

    async def discard_writing(
        self, upload_id: UUID, *, last_touched: datetime | None = None
    ) -> bool:
        touched = self._state.updated_at.get(upload_id)
        if upload_id not in self._state.writing or touched is None:
            return False
        if last_touched is not None and touched > last_touched:
            return False
        del self._state.writing[upload_id]
        del self._state.updated_at[upload_id]
        return True

    def _versions_of(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> list[ObjectVersion]:
        return [
            v
            for v in committed(self._state)
            if (v.tenant_id, v.namespace, v.key) == (tenant_id, namespace, key)
        ]

    async def newest(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> ObjectVersion | None:
        versions = self._versions_of(tenant_id, namespace, key)
        return max(versions, key=lambda v: v.commit_seq, default=None)

    async def lock_key(self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey) -> None:
        """Nothing to do: write units of work are already serialised by the store's lock."""

    def _committed_by_id(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        version = self._state.objects.get(object_id)
        if version is None or version.tenant_id != tenant_id:
            return None
        return version if version.state is ObjectState.COMMITTED else None

    async def located(self, tenant_id: TenantId, object_id: UUID) -> LocatedVersion | None:
        version = self._committed_by_id(tenant_id, object_id)
        return None if version is None else self._located(version)

    async def newest_located(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> LocatedVersion | None:
        version = await self.newest(tenant_id, namespace, key)
        return None if version is None else self._located(version)

    def _located(self, version: ObjectVersion) -> LocatedVersion:
        row = self._state.blobs.get((version.storage_class, version.content_hash.hex))
        address = row.location if row is not None and row.location else ""
        return LocatedVersion(
            version, BlobLocation(version.storage_class, version.content_hash, address)
        )

    def _to_deleting(self, version: ObjectVersion) -> ObjectVersion:
        changed = dataclasses.replace(version, state=ObjectState.DELETING)
        self._state.objects[version.id] = changed
        self._state.updated_at[version.id] = self._clock.now()
        return changed

    async def mark_deleting(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        version = self._committed_by_id(tenant_id, object_id)
        return self._to_deleting(version) if version else None

    async def mark_key_deleting(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
    ) -> list[ObjectVersion]:
        return [self._to_deleting(v) for v in self._versions_of(tenant_id, namespace, key)]

    async def list_page(self, query: ListQuery) -> list[Listed]:
        rows = [
            v
            for v in committed(self._state)
            if v.tenant_id == query.tenant_id
            and v.namespace == query.namespace
            and v.key.startswith(query.prefix)
        ]
        if not query.all_versions:
            newest: dict[str, ObjectVersion] = {}
            for v in rows:
                if v.key not in newest or v.commit_seq > newest[v.key].commit_seq:
                    newest[v.key] = v
            rows = list(newest.values())
        if query.storage_class is not None:
            rows = [v for v in rows if v.storage_class is query.storage_class]
        rows.sort(key=lambda v: (v.key.encode("utf-8"), -v.commit_seq))
        if query.after is not None:
            after_key = query.after.key.encode("utf-8")
            rows = [
                v
                for v in rows
                if v.key.encode("utf-8") > after_key
                # Every version: resume inside the cursor's key; newest only: after it.
                or (
                    query.all_versions
                    and v.key == query.after.key
                    and v.commit_seq < query.after.commit_seq
                )
            ]
        return [(summarize(v), v.commit_seq) for v in rows[: query.limit]]

    async def usage(self, tenant_id: TenantId) -> list[ClassUsage]:
        totals: dict[StorageClass, tuple[int, int]] = {}
        for v in committed(self._state):
            if v.tenant_id == tenant_id:
                count, size = totals.get(v.storage_class, (0, 0))
                totals[v.storage_class] = (count + 1, size + v.size_bytes)
        return [ClassUsage(cls, count, size) for cls, (count, size) in totals.items()]

    async def census(self) -> list[Census]:
        totals: dict[tuple[str, str, ObjectState, StorageClass], tuple[int, int]] = {}
        rows: list[tuple[str, str, ObjectState, StorageClass, int]] = [
            (u.tenant_id, u.namespace, ObjectState.WRITING, u.storage_class, 0)
            for u in self._state.writing.values()
        ]
        rows += [
            (v.tenant_id, v.namespace, v.state, v.storage_class, v.size_bytes)
            for v in self._state.objects.values()
            if v.state is not ObjectState.DELETED
        ]
        for tenant, namespace, state, cls, size in rows:
            count, total = totals.get((tenant, namespace, state, cls), (0, 0))
            totals[(tenant, namespace, state, cls)] = (count + 1, total + size)
        return [Census(*group, count, size) for group, (count, size) in totals.items()]

    async def touch_writing(self, upload_id: UUID) -> None:
        if upload_id in self._state.writing:
            self._state.updated_at[upload_id] = self._clock.now()

    async def writing_older_than(self, older_than: datetime, limit: int) -> list[WritingUpload]:
        old = sorted(
            (
                WritingUpload(u.id, u.storage_class, u.owner, self._state.updated_at[u.id])
                for u in self._state.writing.values()
                if self._state.updated_at[u.id] < older_than
            ),
            key=lambda w: w.updated_at,
        )
        return old[:limit]

    async def writing_among(self, upload_ids: list[UUID]) -> set[UUID]:
        return {i for i in upload_ids if i in self._state.writing}

    def _in_state(self, state: ObjectState) -> list[ObjectVersion]:
        return [v for v in self._state.objects.values() if v.state is state]

    async def finish_deletes(self, limit: int) -> int:
        finishing = self._in_state(ObjectState.DELETING)[:limit]
        for version in finishing:
            self._state.objects[version.id] = dataclasses.replace(
                version, state=ObjectState.DELETED
            )
            self._state.updated_at[version.id] = self._clock.now()
        return len(finishing)

    async def purge_deleted(self, older_than: datetime, limit: int) -> int:
        old = [
            v
            for v in self._in_state(ObjectState.DELETED)
            if self._state.updated_at[v.id] < older_than
        ][:limit]
        for version in old:
            del self._state.objects[version.id], self._state.updated_at[version.id]
        return len(old)

    async def ids_of_blob(self, location: BlobLocation) -> list[UUID]:
        ids = [
            v.id
            for v in committed(self._state)
            if BlobLocation(v.storage_class, v.content_hash) == location
        ]
        return sorted(ids, key=str)

    async def without_blob_row(self, limit: int) -> list[ObjectVersion]:
        return [
            v
            for v in committed(self._state)
            if (v.storage_class, v.content_hash.hex) not in self._state.blobs
        ][:limit]


class FakeBlobIndex:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def acquire(self, blob: BlobLocation, size_bytes: int) -> BlobLocation:
        storage_class, content_hash, address = blob.storage_class, blob.content_hash, blob.address
        row_key = (storage_class, content_hash.hex)
        recorded = None if address == content_hash.hex else address
        row = self._state.blobs.get(row_key)
        if row is None:
            row = BlobRecord(size_bytes, 0, self._clock.now(), location=recorded)
        elif row.ref_count == 0:
            row = dataclasses.replace(row, location=recorded)
        row = dataclasses.replace(row, ref_count=row.ref_count + 1, released_at=None)
        self._state.blobs[row_key] = row
        return _location(storage_class, content_hash.hex, row)

    async def content_addressed(
        self, storage_class: StorageClass, after: BlobLocation | None, limit: int
    ) -> list[tuple[BlobLocation, int]]:
        start = after.content_hash.hex if after else ""
        rows = sorted(
            (h, row.size_bytes)
            for (cls, h), row in self._state.blobs.items()
            if cls is storage_class and row.location is None and h > start
        )[:limit]
        return [(BlobLocation(storage_class, ContentHash(h)), size) for h, size in rows]

    async def relocate(self, location: BlobLocation, address: str) -> bool:
        row_key = (location.storage_class, location.content_hash.hex)
        row = self._state.blobs.get(row_key)
        if row is None or row.location is not None:
            return False
        self._state.blobs[row_key] = dataclasses.replace(row, location=address)
        return True

    async def release(self, storage_class: StorageClass, content_hash: ContentHash) -> None:
        row_key = (storage_class, content_hash.hex)
        row = self._state.blobs.get(row_key)
        if row is None or row.ref_count == 0:
            return
        released_at = self._clock.now() if row.ref_count == 1 else row.released_at
        self._state.blobs[row_key] = dataclasses.replace(
            row, ref_count=row.ref_count - 1, released_at=released_at
        )

    async def unreferenced(self, released_before: datetime, limit: int) -> list[BlobLocation]:
        rows = [
            (row.released_at, _location(cls, hexdigest, row))
            for (cls, hexdigest), row in self._state.blobs.items()
            if row.ref_count == 0
            and row.released_at is not None
            and row.released_at <= released_before
        ]
        rows.sort(key=lambda r: r[0])
        return [location for _, location in rows[:limit]]

    async def forget_if_unreferenced(
        self, location: BlobLocation, released_before: datetime
    ) -> bool:
        row_key = (location.storage_class, location.content_hash.hex)
        row = self._state.blobs.get(row_key)
        if row is None or row.ref_count != 0 or row.released_at is None:
            return False
        if row.released_at > released_before:
            return False
        del self._state.blobs[row_key]
        return True

    async def claim_orphan(self, location: BlobLocation, size_bytes: int) -> bool:
        row_key = (location.storage_class, location.content_hash.hex)
        if row_key in self._state.blobs:
            return False
        now = self._clock.now()
        self._state.blobs[row_key] = BlobRecord(size_bytes, 0, now, released_at=now)
        return True

    async def forget(self, location: BlobLocation) -> None:
        self._state.blobs.pop((location.storage_class, location.content_hash.hex), None)

    async def known(self, storage_class: StorageClass, stored: list[StoredBlob]) -> set[str]:
        recorded = {
            row.location for (cls, _), row in self._state.blobs.items() if cls is storage_class
        }
        return {
            s.address
            for s in stored
            if (
                s.content_hash is not None
                and (storage_class, s.content_hash.hex) in self._state.blobs
            )
            or (s.content_hash is None and s.address in recorded)
        }

    async def audit(self, after: BlobLocation | None, limit: int) -> list[BlobAudit]:
        start = (after.storage_class.value, after.content_hash.hex) if after else ("", "")
        live: dict[tuple[StorageClass, str], int] = {}
        for v in committed(self._state):
            live[(v.storage_class, v.content_hash.hex)] = (
                live.get((v.storage_class, v.content_hash.hex), 0) + 1
            )
        rows = sorted(
            (k for k in self._state.blobs if (k[0].value, k[1]) > start),
            key=lambda k: (k[0].value, k[1]),
        )[:limit]
        return [
            BlobAudit(
                _location(cls, hexdigest, self._state.blobs[(cls, hexdigest)]),
                self._state.blobs[(cls, hexdigest)].size_bytes,
                self._state.blobs[(cls, hexdigest)].ref_count,
                live.get((cls, hexdigest), 0),
            )
            for cls, hexdigest in rows
        ]

    async def totals(self) -> tuple[int, int]:
        return len(self._state.blobs), sum(r.size_bytes for r in self._state.blobs.values())

    async def set_ref_count(self, location: BlobLocation, ref_count: int) -> None:
        row_key = (location.storage_class, location.content_hash.hex)
        row = self._state.blobs.get(row_key)
        if row is None:
            return
        released_at = (row.released_at or self._clock.now()) if ref_count == 0 else None
        self._state.blobs[row_key] = dataclasses.replace(
            row, ref_count=ref_count, released_at=released_at
        )


def _location(storage_class: StorageClass, hexdigest: str, row: BlobRecord) -> BlobLocation:
    """A row's blob at its address: the recorded one, else the content address."""
    return BlobLocation(storage_class, ContentHash(hexdigest), row.location or "")


class FakeLeaseRepository:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def claim(
        self, name: str, holder: str, until: datetime, *, replacing: str | None = None
    ) -> bool:
        current = self._state.leases.get(name)
        if (
            current is not None
            and current[0] not in (holder, replacing)
            and current[1] >= self._clock.now()
        ):
            return False
        self._state.leases[name] = (holder, until)
        return True

    async def holder_of(self, name: str) -> str | None:
        current = self._state.leases.get(name)
        return current[0] if current else None

    async def release(self, name: str, holder: str) -> None:
        current = self._state.leases.get(name)
        if current is not None and current[0] == holder:
            del self._state.leases[name]


class FakeApiKeyRepository:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def add(self, record: ApiKeyRecord) -> None:
        if record.id in self._state.api_keys:
            raise StorageError(f"duplicate API key id {record.id}")
        self._state.api_keys[record.id] = record

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._state.api_keys.get(key_id)

    async def list_all(self) -> list[ApiKeyRecord]:
        return sorted(self._state.api_keys.values(), key=lambda r: r.created_at)

    async def revoke(self, key_id: str) -> bool:
        record = self._state.api_keys.get(key_id)
        if record is None or record.revoked_at is not None:
            return False
        self._state.api_keys[key_id] = dataclasses.replace(record, revoked_at=self._clock.now())
        return True

    async def count(self) -> int:
        return len(self._state.api_keys)


class FakeUnitOfWork:
    """Works on a private copy of the store's state; `commit()` publishes it."""

    def __init__(self, store: FakeMetadataStore, *, read_only: bool) -> None:
        self._store = store
        self._read_only = read_only
        self._state: State | None = None
        self.committed = False

    async def __aenter__(self) -> Self:
        if not self._read_only:
            await self._store.write_lock.acquire()
        self._state = self._store.state.copy()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._state = None  # whatever was not committed is gone
        if not self._read_only:
            self._store.write_lock.release()

    def _current(self) -> State:
        if self._state is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return self._state

    @property
    def objects(self) -> FakeObjectRepository:
        return FakeObjectRepository(self._current(), self._store.clock)

    @property
    def blobs(self) -> FakeBlobIndex:
        return FakeBlobIndex(self._current(), self._store.clock)

    @property
    def api_keys(self) -> FakeApiKeyRepository:
        return FakeApiKeyRepository(self._current(), self._store.clock)

    @property
    def leases(self) -> FakeLeaseRepository:
        return FakeLeaseRepository(self._current(), self._store.clock)

    async def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("commit() on a read-only snapshot")
        self._store.state = self._current().copy()
        self._store.commits += 1
        self.committed = True


class FakeMetadataStore:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.state = State()
        self.write_lock = anyio.Lock()
        self.closed = False
        self.commits = 0  # transactions committed (inspection for tests)

    def transaction(self, *, durable: bool = True) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, read_only=False)

    def snapshot(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, read_only=True)

    async def migrate(self) -> list[str]:
        return []

    async def ping(self) -> None:
        if self.closed:
            raise RuntimeError("store is closed")

    async def close(self) -> None:
        self.closed = True

    # Inspection helpers for tests (not part of the port).
    def blob_record(
        self, storage_class: StorageClass, content_hash: ContentHash
    ) -> BlobRecord | None:
        return self.state.blobs.get((storage_class, content_hash.hex))

    def writing_ids(self) -> set[UUID]:
        return set(self.state.writing)


class FakeLiveness:
    """Process identities: this one, and the owners a test declares dead."""

    def __init__(self, identity: str = "this-process") -> None:
        self._identity = identity
        self.dead: set[str] = set()

    def identity(self) -> str:
        return self._identity

    def is_dead(self, owner: str) -> bool:
        return owner in self.dead


READ_CHUNK_BYTES = 1024 * 1024


class FakeStagedBlob:
    def __init__(self, store: FakeBlobStore, temp: tuple[StorageClass, UUID]) -> None:
        self._store = store
        self._temp = temp
        self._buffer = bytearray()
        self._hasher = hashlib.sha256()
        self._digest: ContentHash | None = None

    async def write(self, chunk: bytes) -> None:
        if self._digest is not None:
            raise RuntimeError("write() after seal()")
        self._hasher.update(chunk)
        self._buffer += chunk
        self._store.temps[self._temp] = self._store.clock.now()  # the temp file's mtime

    async def seal(self) -> tuple[ContentHash, int]:
        self._digest = ContentHash(self._hasher.hexdigest())
        return self._digest, len(self._buffer)

    @property
    def address(self) -> str:
        if self._digest is None:
            raise RuntimeError("address before seal()")
        return self._digest.hex  # like the filesystem: the address follows from the hash

    async def publish(self) -> bool:
        return self._place()

    async def confirm(self, blob: BlobLocation) -> bool:
        if self._digest is None:
            raise RuntimeError("confirm() before seal()")
        if (self._temp[0], self._digest.hex) in self._store.blobs:
            return False
        return self._place()

    def _place(self) -> bool:
        if self._digest is None:
            raise RuntimeError("publish() before seal()")
        written_at = self._store.temps.get(self._temp)
        if written_at is None:
            raise StorageError("storage I/O error: the temp file is gone")
        location = (self._temp[0], self._digest.hex)
        if location in self._store.blobs:
            return False
        self._store.blobs[location] = bytes(self._buffer)
        self._store.modified[location] = written_at  # a hard link keeps the temp's mtime
        return True


class FakeBlobReader:
    path = None

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        if self._data is None:
            raise RuntimeError("reader is closed")
        offset, end = first, first + length
        while offset < end:
            data = self._data[offset : min(end, offset + READ_CHUNK_BYTES)]
            if not data:
                raise StorageError("blob file is shorter than its recorded size")
            offset += len(data)
            yield data

    async def close(self) -> None:
        self._data = None


class FakeBlobStore:
    """Blobs and temp files in dicts, each with the modification time a file would have."""

    def __init__(self, clock: FakeClock | None = None, *, scan_batch: int = 500) -> None:
        self.clock = clock or FakeClock()
        self.blobs: dict[tuple[StorageClass, str], bytes] = {}
        self.modified: dict[tuple[StorageClass, str], datetime] = {}
        self.temps: dict[tuple[StorageClass, UUID], datetime] = {}  # staged uploads
        self.owners: dict[tuple[StorageClass, UUID], str] = {}  # their owners
        self._scan_batch = scan_batch
        self.free_bytes, self.total_bytes = 1 << 30, 1 << 32  # what `space` reports

    async def prepare(self) -> None:
        pass

    @asynccontextmanager
    async def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AsyncIterator[FakeStagedBlob]:
        temp = (storage_class, upload_id)
        if temp in self.temps:
            raise StorageError(f"upload {upload_id} is already staged")
        self.owners[temp] = owner
        self.temps[temp] = self.clock.now()
        try:
            yield FakeStagedBlob(self, temp)
        finally:
            self.temps.pop(temp, None)
            self.owners.pop(temp, None)

    async def open(
        self, location: BlobLocation, *, first: int = 0, length: int | None = None
    ) -> FakeBlobReader:
        data = self.blobs.get((location.storage_class, location.content_hash.hex))
        if data is None:
            raise NotFound("no such object")
        return FakeBlobReader(data)

    async def probe(self, storage_class: StorageClass) -> None:
        pass

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        return self.free_bytes, self.total_bytes

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        key = (storage_class, address)
        self.modified.pop(key, None)
        return self.blobs.pop(key, None) is not None

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        return [
            TempFile(cls, str(upload_id), when, upload_id, self.owners.get((cls, upload_id), ""))
            for (cls, upload_id), when in self.temps.items()
            if cls is storage_class
        ]

    async def remove_temp(self, temp: TempFile) -> None:
        key = (temp.storage_class, temp.upload_id)
        self.temps.pop(key, None)  # type: ignore[arg-type]
        self.owners.pop(key, None)  # type: ignore[arg-type]

    async def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        found = [
            StoredBlob(
                cls,
                hexdigest,
                len(data),
                self.modified[(cls, hexdigest)],
                content_hash=ContentHash(hexdigest),
            )
            for (cls, hexdigest), data in sorted(self.blobs.items())
            if cls is storage_class
        ]
        for start in range(0, len(found), self._scan_batch):
            yield found[start : start + self._scan_batch]

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        data = self.blobs.get((location.storage_class, location.content_hash.hex))
        if data is None:
            raise NotFound("blob file is missing")
        return ContentHash(hashlib.sha256(data).hexdigest())

    # Test helpers (not part of the port): damage and crash leftovers.
    def put(self, location: BlobLocation, data: bytes, modified_at: datetime) -> None:
        """A blob file with these bytes, whatever their hash (a corrupt or orphan file)."""
        key = (location.storage_class, location.content_hash.hex)
        self.blobs[key] = data
        self.modified[key] = modified_at


async def seed_version(
    store: MetadataStore,
    clock: Clock,
    key: str,
    *,
    tenant: str = "acme",
    namespace: str = "files",
    data: bytes = b"x",
    size_bytes: int | None = None,
    storage_class: StorageClass = StorageClass.HOT,
) -> ObjectVersion:
    """Commit one version through the metadata port, without any blob bytes."""
    upload = NewUpload(
        id=uuid4(),
        tenant_id=TenantId(tenant),
        namespace=Namespace(namespace),
        key=ObjectKey(key),
        storage_class=storage_class,
        content_type="application/octet-stream",
        created_at=clock.now(),
    )
    digest = ContentHash(hashlib.sha256(data).hexdigest())
    async with store.transaction() as uow:
        await uow.objects.add_writing(upload)
        version = await uow.objects.commit_upload(
            upload.id, digest, len(data) if size_bytes is None else size_bytes
        )
        await uow.blobs.acquire(BlobLocation(storage_class, digest), version.size_bytes)
        await uow.commit()
    return version


_ACME, _FILES = TenantId("acme"), Namespace("files")


def sha256_of(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


class FakeWorld:
    """A fake clock, metadata store and blob store, plus an upload helper for use-case tests."""

    def __init__(self, blobs: Callable[[FakeClock], BlobStore] = FakeBlobStore) -> None:
        self.clock = FakeClock()
        self.metadata = FakeMetadataStore(self.clock)
        self.blobs = blobs(self.clock)
        self.uploader = Uploader(
            metadata=self.metadata, blobs=self.blobs, clock=self.clock, max_object_bytes=1 << 20
        )

    async def upload(
        self,
        key: str,
        data: bytes,
        cls: StorageClass = StorageClass.HOT,
        *,
        tenant: TenantId = _ACME,
        namespace: Namespace = _FILES,
    ) -> UploadResult:
        async def body() -> AsyncIterator[bytes]:
            yield data

        request = UploadRequest(tenant, namespace, ObjectKey(key), storage_class=cls)
        return await self.uploader.upload(request, body())
