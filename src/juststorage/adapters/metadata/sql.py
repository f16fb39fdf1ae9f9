"""What the shared SQL repositories run on: a session and a dialect.

Statements use `?` placeholders and run on a `SqlSession` (the PostgreSQL session
numbers them `$n`); what truly differs between the databases — value conversions,
locking, batching of `IN` lists, usage counting — is asked of a `Dialect`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from juststorage.adapters.metadata.queries import CensusDeltas
from juststorage.application.ports import Clock
from juststorage.domain.model import StorageClass

Row = tuple[Any, ...]
UsageDeltas = dict[StorageClass, tuple[int, int]]  # storage class → (objects, bytes)


class SqlSession(Protocol):
    """Runs `?`-style statements inside one unit of work; errors come out as domain errors."""

    @property
    def clock(self) -> Clock: ...

    async def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        """The statement's first row, or None."""
        ...

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        """Every row of the statement."""
        ...

    async def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Run a statement whose rows (if any) are not needed."""
        ...


class Dialect(Protocol):
    """What differs between the databases under the same SQL."""

    next_commit_seq: str  # SQL expression: the next commit_seq value
    skip_locked: str  # suffix of a subquery choosing rows to update: "" or FOR UPDATE SKIP LOCKED
    # after "FROM objects" in the upload-by-hash probe (HOLDS_CONTENT_SQL): the clause
    # that pins it to objects_committed_by_tenant_blob where the database takes one, or ""
    tenant_content_index: str
    nullable_ts: str  # a timestamp placeholder that may be bound to NULL (typed if needed)
    bigint: str  # an integer placeholder used twice (typed once if needed)
    least: str  # the function of the smaller of two values: LEAST / MIN
    greatest: str  # the function of the larger of two values: GREATEST / MAX
    epoch_now: str  # SQL expression: the database's clock, seconds since the epoch
    # SQL expressions over `objects o`: the `ObjectSummary` fields but the tenant and
    # namespace (the query's own) in their JSON form (formatted by the database, not
    # per row in Python), then commit_seq
    summary_columns: str
    find_text: str  # SQL function: 1-based position of a substring (0: absent), in characters

    def ts_in(self, moment: datetime) -> Any:
        """A timestamp as the driver binds it."""
        ...

    def ts_out(self, value: Any) -> datetime:
        """A stored timestamp back as an aware datetime."""
        ...

    def uuid_in(self, value: UUID) -> Any:
        """A UUID as the driver binds it."""
        ...

    def uuid_out(self, value: Any) -> UUID:
        """A stored UUID back."""
        ...

    def uuid_text_in(self, value: str) -> Any:
        """A UUID in its canonical text form (as listings return it) as the driver
        binds it, without a round trip through `UUID` where the column holds text."""
        ...

    def list_in(self, values: list[str]) -> Any:
        """A list of strings (api key tenants/scopes) as stored."""
        ...

    def list_out(self, value: Any) -> list[str]:
        """A stored list of strings back."""
        ...

    def any_of(
        self, column: str, values: list[Any], sql_type: str
    ) -> Iterator[tuple[str, tuple[Any, ...]]]:
        """(condition, params) batches that together test `column` against every value.

        No batch for no values.
        """
        ...

    async def lock_key(self, session: SqlSession, name: str) -> None:
        """Serialise commits to one key (`name`) until the transaction ends."""
        ...

    # Whether several rows' work goes in one statement (`insert_committed_many`,
    # `acquire_many`): worth it where a statement is a round trip.
    batch_statements: bool

    async def lock_keys(self, session: SqlSession, names: list[str]) -> None:
        """`lock_key` for each of `names`, in their order, in one statement."""
        ...

    async def lock_api_keys(self, session: SqlSession) -> None:
        """Before counting api keys: serialise first-start key creation of processes."""
        ...

    async def count_usage(self, session: SqlSession, tenant: str, deltas: UsageDeltas) -> None:
        """Add usage counter deltas within the transaction (now, or at its commit)."""
        ...

    async def count_census(self, session: SqlSession, deltas: CensusDeltas) -> None:
        """Add census counter deltas within the transaction (now, or at its commit)."""
        ...


class SqlRepository:
    """A repository on one session of a unit of work, with its dialect."""

    def __init__(self, session: SqlSession, dialect: Dialect) -> None:
        self._s = session
        self._d = dialect

    def _now(self) -> Any:
        return self._d.ts_in(self._s.clock.now())
