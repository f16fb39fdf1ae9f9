"""FakeScrubRows: the scrub's rows (SPEC §8.9) over `State`."""

from __future__ import annotations

from datetime import datetime

from fakes.clock import FakeClock
from fakes.state import State
from juststorage.application.records import BlobLocation
from juststorage.application.scrub_records import BlobReference, CorruptBlob, ScrubPosition
from juststorage.domain.model import ObjectState


class FakeScrubRows:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def position(self, name: str) -> ScrubPosition | None:
        return self._state.scrub_positions.get(name)

    async def save_position(self, name: str, position: ScrubPosition) -> None:
        self._state.scrub_positions[name] = position

    async def mark_corrupt(
        self, location: BlobLocation, detail: str, found_at: datetime
    ) -> bool | None:
        key = (location.storage_class, location.content_hash.hex)
        row = self._state.blobs.get(key)
        if row is None:
            self._state.corrupt.pop(key, None)
            return None
        known = self._state.corrupt.get(key)
        at = known.found_at if known else found_at
        self._state.corrupt[key] = CorruptBlob(
            location.storage_class, location.content_hash, at, detail
        )
        return known is None

    async def clear_corrupt(self, location: BlobLocation) -> bool:
        key = (location.storage_class, location.content_hash.hex)
        return self._state.corrupt.pop(key, None) is not None

    async def corrupt(self, limit: int) -> list[CorruptBlob]:
        rows = sorted(self._state.corrupt.values(), key=lambda c: c.found_at)
        return rows[:limit]

    async def count_corrupt(self) -> int:
        return len(self._state.corrupt)

    async def referencing(self, location: BlobLocation, limit: int) -> list[BlobReference]:
        found = [
            BlobReference(v.tenant_id, v.namespace, v.key, v.id)
            for v in sorted(self._state.objects.values(), key=lambda v: v.id)
            if v.state is ObjectState.COMMITTED
            and v.storage_class is location.storage_class
            and v.content_hash == location.content_hash
        ]
        return found[:limit]

    async def blob_row(self, location: BlobLocation) -> tuple[int, str, int] | None:
        row = self._state.blobs.get((location.storage_class, location.content_hash.hex))
        if row is None:
            return None
        return row.size_bytes, row.location or location.content_hash.hex, row.ref_count
