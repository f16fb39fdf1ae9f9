"""The unit of work both SQL adapters share: repositories on one session, and
nothing kept unless `commit()` is called (STYLE G3).

A backend says how a transaction begins, commits and ends (`_begin`, `_commit`,
`_end`), which session its statements run on and which dialect they speak; the
order of those steps, the read-only check and the repositories are here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self

from juststorage.adapters.metadata.blob_index import SqlBlobIndex
from juststorage.adapters.metadata.leases_keys import (
    SqlApiKeyRepository,
    SqlBackupHolds,
    SqlLeaseRepository,
)
from juststorage.adapters.metadata.limits import SqlQuotaReservations, SqlRateBuckets
from juststorage.adapters.metadata.repositories import SqlObjectRepository
from juststorage.adapters.metadata.scrub import SqlScrubRows
from juststorage.adapters.metadata.sessions import SqlUploadSessionRows
from juststorage.adapters.metadata.sql import Dialect, SqlSession


class SqlUnitOfWork(ABC):
    """One transaction (`read_only=False`) or one read-only snapshot.

    `durable=False` lets the backend relax the sync of this transaction's commit
    only (a WRITING row: losing it on a crash loses nothing acknowledged). The
    repositories exist from `async with` on, all on the one session.
    """

    objects: SqlObjectRepository
    blobs: SqlBlobIndex
    api_keys: SqlApiKeyRepository
    leases: SqlLeaseRepository
    holds: SqlBackupHolds
    quota: SqlQuotaReservations
    buckets: SqlRateBuckets
    sessions: SqlUploadSessionRows
    scrub: SqlScrubRows

    def __init__(self, *, read_only: bool, durable: bool) -> None:
        self._read_only = read_only
        self._durable = durable
        self._committed = False

    @abstractmethod
    async def _begin(self) -> None:
        """Take a connection and, unless read-only, begin a transaction on it."""

    @abstractmethod
    async def _commit(self) -> None:
        """Commit the transaction begun by `_begin`."""

    @abstractmethod
    async def _end(self) -> None:
        """Roll back unless `self._committed`, then give the connection back."""

    @abstractmethod
    def _current_session(self) -> SqlSession | None:
        """The session inside `async with`, else None."""

    @abstractmethod
    def _dialect(self) -> Dialect:
        """The dialect the repositories use (inside `async with`)."""

    async def __aenter__(self) -> Self:
        await self._begin()
        session, dialect = self.session, self._dialect()
        self.objects = SqlObjectRepository(session, dialect)
        self.blobs = SqlBlobIndex(session, dialect)
        self.api_keys = SqlApiKeyRepository(session, dialect)
        self.leases = SqlLeaseRepository(session, dialect)
        self.holds = SqlBackupHolds(session, dialect)
        self.quota = SqlQuotaReservations(session, dialect)
        self.buckets = SqlRateBuckets(session, dialect)
        self.sessions = SqlUploadSessionRows(session, dialect)
        self.scrub = SqlScrubRows(session, dialect)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # With or without an exception: `_end` rolls back whatever was not committed.
        await self._end()

    @property
    def session(self) -> SqlSession:
        """Where this unit of work's statements run."""
        session = self._current_session()
        if session is None:
            raise RuntimeError("use the unit of work inside `async with`")
        return session

    async def commit(self) -> None:
        """Make the work visible and durable (unless `durable=False`)."""
        if self._read_only:
            raise RuntimeError("commit() on a read-only snapshot")
        await self._commit()
        self._committed = True
