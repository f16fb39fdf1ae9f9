"""FakeBlobIndex: the `BlobIndex` port over `State`."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from fakes.clock import FakeClock
from fakes.state import BlobRecord, State, committed
from juststorage.application.records import BlobAudit, BlobLocation, StoredBlob
from juststorage.domain.model import ContentHash, StorageClass


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

    async def acquire_referenced(self, blob: BlobLocation, size_bytes: int) -> BlobLocation | None:
        row_key = (blob.storage_class, blob.content_hash.hex)
        row = self._state.blobs.get(row_key)
        if row is None or row.ref_count == 0 or row.size_bytes != size_bytes:
            return None
        row = dataclasses.replace(row, ref_count=row.ref_count + 1)
        self._state.blobs[row_key] = row
        return _location(*row_key, row)

    async def acquire_many(self, blobs: Sequence[tuple[BlobLocation, int]]) -> list[BlobLocation]:
        return [await self.acquire(blob, size) for blob, size in blobs]

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
        self._state.inline.pop(row_key, None)
        self._state.corrupt.pop(row_key, None)
        return True

    async def claim_orphan(self, location: BlobLocation, size_bytes: int) -> bool:
        row_key = (location.storage_class, location.content_hash.hex)
        if row_key in self._state.blobs:
            return False
        now = self._clock.now()
        recorded = None if location.address == location.content_hash.hex else location.address
        self._state.blobs[row_key] = BlobRecord(
            size_bytes, 0, now, released_at=now, location=recorded
        )
        return True

    async def forget(self, location: BlobLocation) -> None:
        self._state.blobs.pop((location.storage_class, location.content_hash.hex), None)
        self._state.inline.pop((location.storage_class, location.content_hash.hex), None)
        self._state.corrupt.pop((location.storage_class, location.content_hash.hex), None)

    async def store_inline(self, location: BlobLocation, data: bytes | bytearray) -> bool:
        row_key = (location.storage_class, location.content_hash.hex)
        if row_key in self._state.inline:
            return False
        self._state.inline[row_key] = bytes(data)
        return True

    async def store_inline_many(
        self, rows: Sequence[tuple[BlobLocation, bytes | bytearray]]
    ) -> list[bool]:
        return [await self.store_inline(location, data) for location, data in rows]

    async def inline_data(self, location: BlobLocation) -> bytes | None:
        return self._state.inline.get((location.storage_class, location.content_hash.hex))

    async def inline_stored(
        self, storage_class: StorageClass, after: str, limit: int
    ) -> list[tuple[ContentHash, int]]:
        rows = sorted(
            (h, len(data))
            for (cls, h), data in self._state.inline.items()
            if cls is storage_class and h > after
        )[:limit]
        return [(ContentHash(h), size) for h, size in rows]

    async def to_move(
        self, storage_class: StorageClass, *, inline: bool, max_bytes: int, after: str, limit: int
    ) -> list[tuple[BlobLocation, int]]:
        rows = sorted(
            (h, row)
            for (cls, h), row in self._state.blobs.items()
            if cls is storage_class
            and h > after
            and (
                (inline and row.location != f"inline:{h}" and row.size_bytes <= max_bytes)
                or (
                    not inline
                    and row.location == f"inline:{h}"
                    and (row.size_bytes > max_bytes or max_bytes == 0)
                )
            )
        )[:limit]
        return [(_location(storage_class, h, row), row.size_bytes) for h, row in rows]

    async def count_to_move(
        self, storage_class: StorageClass, *, inline: bool, max_bytes: int
    ) -> int:
        rows = await self.to_move(
            storage_class,
            inline=inline,
            max_bytes=max_bytes,
            after="",
            limit=len(self._state.blobs),
        )
        return len(rows)

    async def move_inline(self, location: BlobLocation, data: bytes | bytearray) -> bool:
        row_key = (location.storage_class, location.content_hash.hex)
        row = self._state.blobs.get(row_key)
        if row is None or _location(*row_key, row).address != location.address:
            return False
        self._state.blobs[row_key] = dataclasses.replace(row, location=f"inline:{row_key[1]}")
        self._state.inline[row_key] = bytes(data)
        return True

    async def move_out_of_line(self, location: BlobLocation, address: str) -> bool:
        row_key = (location.storage_class, location.content_hash.hex)
        row = self._state.blobs.get(row_key)
        if row is None or row.location != f"inline:{row_key[1]}":
            return False
        recorded = None if address == row_key[1] else address
        self._state.blobs[row_key] = dataclasses.replace(row, location=recorded)
        self._state.inline.pop(row_key, None)
        return True

    async def known(self, storage_class: StorageClass, stored: list[StoredBlob]) -> set[str]:
        recorded = {
            row.location for (cls, _), row in self._state.blobs.items() if cls is storage_class
        }
        return {
            s.address
            for s in stored
            if (s.content_hash is not None and self._same_kind(storage_class, s))
            or (s.content_hash is None and s.address in recorded)
        }

    def _same_kind(self, storage_class: StorageClass, stored: StoredBlob) -> bool:
        """A row of the content that keeps a copy of this thing's kind (inline or not)."""
        assert stored.content_hash is not None
        row = self._state.blobs.get((storage_class, stored.content_hash.hex))
        if row is None:
            return False
        row_inline = row.location == f"inline:{stored.content_hash.hex}"
        return row_inline == stored.address.startswith("inline:")

    async def claim_stale(self, location: BlobLocation) -> bool:
        stored = StoredBlob(location.storage_class, location.address, 0, self._clock.now())
        stored = dataclasses.replace(stored, content_hash=location.content_hash)
        row_key = (location.storage_class, location.content_hash.hex)
        if row_key not in self._state.blobs or self._same_kind(location.storage_class, stored):
            return False
        if location.address.startswith("inline:"):
            self._state.inline.pop(row_key, None)
        return True

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
