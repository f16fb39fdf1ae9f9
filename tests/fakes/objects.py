"""FakeObjectRepository: the object ports (`ObjectRepository`) over `State`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from fakes.clock import FakeClock
from fakes.state import State, committed
from juststorage.application.records import (
    BlobLocation,
    Census,
    ClassUsage,
    CommonPrefix,
    ListQuery,
    LocatedVersion,
    NamespaceUsage,
    WritingUpload,
)
from juststorage.application.summaries import Listed, summarize
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
    rolled_up,
)


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

    async def insert_committed_many(
        self, uploads: Sequence[tuple[NewUpload, ContentHash, int]]
    ) -> list[ObjectVersion]:
        return [await self.insert_committed(*each) for each in uploads]

    async def commit_upload(
        self,
        upload_id: UUID,
        content_hash: ContentHash,
        size_bytes: int,
        *,
        s3_etag: str | None = None,
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
            s3_etag=s3_etag or upload.s3_etag,
            user_metadata=upload.user_metadata,
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

    async def holds_content(
        self,
        tenant_id: TenantId,
        storage_class: StorageClass,
        content_hash: ContentHash,
        size_bytes: int,
    ) -> bool:
        return any(
            (v.tenant_id, v.storage_class, v.content_hash, v.size_bytes)
            == (tenant_id, storage_class, content_hash, size_bytes)
            for v in committed(self._state)
        )

    async def lock_keys(self, keys: Sequence[tuple[TenantId, Namespace, ObjectKey]]) -> None:
        """Nothing to do: write units of work are already serialised by the store's lock."""

    def _committed_by_id(self, tenant_id: TenantId, object_id: UUID) -> ObjectVersion | None:
        version = self._state.objects.get(object_id)
        if version is None or version.tenant_id != tenant_id:
            return None
        return version if version.state is ObjectState.COMMITTED else None

    async def located(
        self, tenant_id: TenantId, object_id: UUID, *, with_bytes: bool = True
    ) -> LocatedVersion | None:
        version = self._committed_by_id(tenant_id, object_id)
        return None if version is None else self._located(version, with_bytes)

    async def newest_located(
        self, tenant_id: TenantId, namespace: Namespace, key: ObjectKey, *, with_bytes: bool = True
    ) -> LocatedVersion | None:
        version = await self.newest(tenant_id, namespace, key)
        return None if version is None else self._located(version, with_bytes)

    def _located(self, version: ObjectVersion, with_bytes: bool = True) -> LocatedVersion:
        row = self._state.blobs.get((version.storage_class, version.content_hash.hex))
        address = row.location if row is not None and row.location else ""
        inline = None
        if with_bytes and address == f"inline:{version.content_hash.hex}":
            inline = self._state.inline.get((version.storage_class, version.content_hash.hex))
        return LocatedVersion(
            version, BlobLocation(version.storage_class, version.content_hash, address), inline
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

    async def s3_etags(self, object_ids: Sequence[str]) -> dict[str, str]:
        found = {}
        for object_id in object_ids:
            version = self._state.objects.get(UUID(object_id))
            if version is not None and version.s3_etag is not None:
                found[object_id] = version.s3_etag
        return found

    async def list_page(self, query: ListQuery) -> list[Listed]:
        rows = self._listable(query)
        if query.storage_class is not None:
            rows = [v for v in rows if v.storage_class is query.storage_class]
        return [(summarize(v), v.commit_seq) for v in rows[: query.limit]]

    async def list_delimited(self, query: ListQuery) -> list[Listed | CommonPrefix]:
        assert query.delimiter is not None
        entries: list[Listed | CommonPrefix] = []
        for v in self._listable(query):
            common = rolled_up(v.key, query.prefix, query.delimiter)
            if common is not None:
                # Once, where its first key is: the keys after it share it.
                if not entries or entries[-1] != CommonPrefix(common):
                    entries.append(CommonPrefix(common))
            elif query.storage_class is None or v.storage_class is query.storage_class:
                entries.append((summarize(v), v.commit_seq))
        return entries[: query.limit]

    def _listable(self, query: ListQuery) -> list[ObjectVersion]:
        """The committed versions (each key's newest, or all) under the prefix and after
        the cursor, in listing order: by key (UTF-8 bytes), then newest first."""
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
        rows.sort(key=lambda v: (v.key.encode("utf-8"), -v.commit_seq))
        after = query.after
        if after is None:
            return rows
        if after.rolled_up:
            past = after.key.encode("utf-8")
            return [
                v for v in rows if v.key.encode("utf-8") > past and not v.key.startswith(after.key)
            ]
        after_key = after.key.encode("utf-8")
        return [
            v
            for v in rows
            if v.key.encode("utf-8") > after_key
            # Every version: resume inside the cursor's key; newest only: after it.
            or (query.all_versions and v.key == after.key and v.commit_seq < after.commit_seq)
        ]

    async def usage(self, tenant_id: TenantId) -> list[ClassUsage]:
        totals: dict[StorageClass, tuple[int, int]] = {}
        for v in committed(self._state):
            if v.tenant_id == tenant_id:
                count, size = totals.get(v.storage_class, (0, 0))
                totals[v.storage_class] = (count + 1, size + v.size_bytes)
        return [ClassUsage(cls, count, size) for cls, (count, size) in totals.items()]

    async def namespaces(self, tenant_id: TenantId) -> list[NamespaceUsage]:
        totals: dict[str, tuple[int, int]] = {}
        for v in committed(self._state):
            if v.tenant_id == tenant_id:
                count, size = totals.get(v.namespace, (0, 0))
                totals[v.namespace] = (count + 1, size + v.size_bytes)
        return [NamespaceUsage(name, count, size) for name, (count, size) in totals.items()]

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

    async def without_blob_row_among(self, upload_ids: list[UUID]) -> list[ObjectVersion]:
        versions = (self._state.objects.get(i) for i in upload_ids)
        return [
            v
            for v in versions
            if v is not None
            and v.state in (ObjectState.COMMITTED, ObjectState.DELETING)
            and (v.storage_class, v.content_hash.hex) not in self._state.blobs
        ]
