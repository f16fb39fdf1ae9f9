"""FakeMetadataStore and its units of work (the `MetadataStore` / `UnitOfWork` ports).

A unit of work edits a copy of the state and swaps it in only on `commit()` (so it
rolls back unless committed, STYLE G3). Writers are serialised by a lock, as the
SQLite adapter serialises them.
"""

from __future__ import annotations

from collections.abc import Hashable
from types import TracebackType
from typing import Self
from uuid import UUID

import anyio

from fakes.blob_index import FakeBlobIndex
from fakes.clock import FakeClock
from fakes.leases_keys import FakeApiKeyRepository, FakeBackupHolds, FakeLeaseRepository
from fakes.limits import FakeQuotaReservations, FakeRateBuckets
from fakes.objects import FakeObjectRepository
from fakes.scrub import FakeScrubRows
from fakes.state import BlobRecord, State
from juststorage.domain.model import ContentHash, StorageClass


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

    @property
    def holds(self) -> FakeBackupHolds:
        return FakeBackupHolds(self._current(), self._store.clock)

    @property
    def quota(self) -> FakeQuotaReservations:
        return FakeQuotaReservations(self._current(), self._store.clock)

    @property
    def buckets(self) -> FakeRateBuckets:
        return FakeRateBuckets(self._current(), self._store.clock)

    @property
    def scrub(self) -> FakeScrubRows:
        return FakeScrubRows(self._current(), self._store.clock)

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
        self.transactions = 0  # write transactions begun, committed or not (likewise)
        self.revocations = 0

    def transaction(self, *, durable: bool = True) -> FakeUnitOfWork:
        self.transactions += 1
        return FakeUnitOfWork(self, read_only=False)

    def snapshot(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self, read_only=True)

    async def migrate(self) -> list[str]:
        return []

    async def has_schema(self) -> bool:
        return True  # in memory: there from the start

    async def ping(self) -> None:
        if self.closed:
            raise RuntimeError("store is closed")

    async def close(self) -> None:
        self.closed = True

    def revocation_stamp(self) -> Hashable | None:
        return self.revocations

    async def announce_revocation(self) -> None:
        self.revocations += 1

    # Inspection helpers for tests (not part of the port).
    def blob_record(
        self, storage_class: StorageClass, content_hash: ContentHash
    ) -> BlobRecord | None:
        return self.state.blobs.get((storage_class, content_hash.hex))

    def writing_ids(self) -> set[UUID]:
        return set(self.state.writing)
