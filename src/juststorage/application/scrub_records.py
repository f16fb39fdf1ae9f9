"""What the scrubber keeps in the database (SPEC §8.9): where its pass stands, and
the blobs it found corrupt or missing; the port that reads and writes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from juststorage.application.records import BlobLocation
from juststorage.domain.model import ContentHash, StorageClass

SCRUB_NAME = "scrub"  # the scrubber's progress row, and the lease of the one that runs


@dataclass(frozen=True, slots=True)
class ScrubPosition:
    """Where a pass stands: it has checked every blob row up to `after` (in
    (storage_class, content_hash) order; None: none yet), `blobs_done` of them,
    `bytes_done` bytes read."""

    pass_number: int
    started_at: datetime
    after: tuple[StorageClass, ContentHash] | None = None
    blobs_done: int = 0
    bytes_done: int = 0
    passes_completed: int = 0
    last_pass_started_at: datetime | None = None
    last_pass_ended_at: datetime | None = None

    @property
    def last_pass_seconds(self) -> float | None:
        if self.last_pass_started_at is None or self.last_pass_ended_at is None:
            return None
        return (self.last_pass_ended_at - self.last_pass_started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class CorruptBlob:
    """A blob whose bytes did not hash to their name (or were gone) when last read."""

    storage_class: StorageClass
    content_hash: ContentHash
    found_at: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class BlobReference:
    """A committed object whose bytes are a given blob (named in the scrub's log)."""

    tenant_id: str
    namespace: str
    key: str
    object_id: UUID

    def describe(self) -> str:
        return f"{self.tenant_id}/{self.namespace}/{self.key}#{self.object_id}"


class ScrubRows(Protocol):
    """The scrubber's rows: `scrub_progress` and `corrupt_blobs`."""

    async def position(self, name: str) -> ScrubPosition | None:
        """The saved position of scrubber `name`, or None before its first pass."""
        ...

    async def save_position(self, name: str, position: ScrubPosition) -> None:
        """Record `position` (insert or replace)."""
        ...

    async def mark_corrupt(
        self, location: BlobLocation, detail: str, found_at: datetime
    ) -> bool | None:
        """Record a blob as corrupt; True if it was not known corrupt yet (then the
        finding is new), False if it was (its detail is updated), None if its blob row
        is gone (GC removed it since the caller looked): then nothing is recorded and a
        known row for it is dropped. The blob row is locked until the commit, so GC
        cannot remove it in between and leave this row behind."""
        ...

    async def clear_corrupt(self, location: BlobLocation) -> bool:
        """Forget a blob found good again (or gone with its row); True if it was known."""
        ...

    async def corrupt(self, limit: int) -> list[CorruptBlob]:
        """Known corrupt blobs, oldest finding first."""
        ...

    async def count_corrupt(self) -> int:
        """How many blobs are known corrupt now (the metric every process agrees on)."""
        ...

    async def referencing(self, location: BlobLocation, limit: int) -> list[BlobReference]:
        """Committed objects whose bytes are this blob (up to `limit`)."""
        ...

    async def blob_row(self, location: BlobLocation) -> tuple[int, str, int] | None:
        """The blob row's size, address and reference count now, or None if the row is
        gone."""
        ...
