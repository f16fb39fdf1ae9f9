"""What the fake metadata store holds: rows in dicts of frozen values.

A unit of work edits a copy and swaps it in only on `commit()`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from juststorage.application.records import ApiKeyRecord
from juststorage.application.scrub_records import CorruptBlob, ScrubPosition
from juststorage.domain.model import NewUpload, ObjectState, ObjectVersion, StorageClass


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
    # quota reservations: id -> (tenant, bytes, expiry)
    reservations: dict[UUID, tuple[str, int, datetime]] = field(default_factory=dict)
    # rate buckets: (tenant, resource) -> (tokens, stamp)
    buckets: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    # inline blob bytes (SPEC §8.1): (class, hash) -> bytes
    inline: dict[tuple[StorageClass, str], bytes] = field(default_factory=dict)
    # the scrub (SPEC §8.9): saved positions by name, corrupt blobs by (class, hash)
    scrub_positions: dict[str, ScrubPosition] = field(default_factory=dict)
    corrupt: dict[tuple[StorageClass, str], CorruptBlob] = field(default_factory=dict)
    # backup holds: id -> (holder, started_at, expires_at)
    holds: dict[str, tuple[str, datetime, datetime]] = field(default_factory=dict)

    def copy(self) -> State:
        # Values are frozen, so copying the dicts copies the state.
        return State(
            dict(self.objects),
            dict(self.writing),
            dict(self.blobs),
            dict(self.api_keys),
            dict(self.updated_at),
            dict(self.leases),
            dict(self.reservations),
            dict(self.buckets),
            dict(self.inline),
            dict(self.scrub_positions),
            dict(self.corrupt),
            dict(self.holds),
        )


def committed(state: State) -> list[ObjectVersion]:
    return [v for v in state.objects.values() if v.state is ObjectState.COMMITTED]
