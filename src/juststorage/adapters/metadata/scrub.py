"""The scrubber's rows in SQL (`ScrubRows`), written once for SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from juststorage.adapters.metadata.sql import Row, SqlRepository
from juststorage.application.records import BlobLocation
from juststorage.application.scrub_records import BlobReference, CorruptBlob, ScrubPosition
from juststorage.domain.model import ContentHash, StorageClass

_POSITION_COLUMNS = (
    "pass_number, started_at, storage_class, content_hash, blobs_done, bytes_done,"
    " passes_completed, last_pass_started_at, last_pass_ended_at"
)
_KEY = "storage_class = ? AND content_hash = ?"


class SqlScrubRows(SqlRepository):
    """`ScrubRows` over a SQL session."""

    def _position(self, row: Row) -> ScrubPosition:
        d = self._d
        after = (StorageClass(row[2]), ContentHash(row[3])) if row[2] is not None else None
        return ScrubPosition(
            pass_number=int(row[0]),
            started_at=d.ts_out(row[1]),
            after=after,
            blobs_done=int(row[4]),
            bytes_done=int(row[5]),
            passes_completed=int(row[6]),
            last_pass_started_at=d.ts_out(row[7]) if row[7] is not None else None,
            last_pass_ended_at=d.ts_out(row[8]) if row[8] is not None else None,
        )

    async def position(self, name: str) -> ScrubPosition | None:
        row = await self._s.fetchone(
            f"SELECT {_POSITION_COLUMNS} FROM scrub_progress WHERE name = ?", (name,)
        )
        return self._position(row) if row else None

    async def save_position(self, name: str, position: ScrubPosition) -> None:
        d = self._d
        after_class, after_hash = (
            (position.after[0].value, position.after[1].hex) if position.after else (None, None)
        )
        last_started = position.last_pass_started_at
        last_ended = position.last_pass_ended_at
        await self._s.execute(
            f"INSERT INTO scrub_progress (name, {_POSITION_COLUMNS}, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET pass_number = excluded.pass_number,"
            " started_at = excluded.started_at, storage_class = excluded.storage_class,"
            " content_hash = excluded.content_hash, blobs_done = excluded.blobs_done,"
            " bytes_done = excluded.bytes_done, passes_completed = excluded.passes_completed,"
            " last_pass_started_at = excluded.last_pass_started_at,"
            " last_pass_ended_at = excluded.last_pass_ended_at,"
            " updated_at = excluded.updated_at",
            (
                name,
                position.pass_number,
                d.ts_in(position.started_at),
                after_class,
                after_hash,
                position.blobs_done,
                position.bytes_done,
                position.passes_completed,
                d.ts_in(last_started) if last_started else None,
                d.ts_in(last_ended) if last_ended else None,
                self._now(),
            ),
        )

    async def mark_corrupt(
        self, location: BlobLocation, detail: str, found_at: datetime
    ) -> bool | None:
        # A no-op update: it locks the blob row (PostgreSQL) until the commit, so GC's
        # removal of the row, which drops its corrupt row too, waits for this one.
        held = await self._s.fetchone(
            f"UPDATE blobs SET ref_count = ref_count WHERE {_KEY} RETURNING ref_count",
            (location.storage_class.value, location.content_hash.hex),
        )
        if held is None:
            await self.clear_corrupt(location)
            return None
        known = await self._s.fetchone(
            f"UPDATE corrupt_blobs SET detail = ? WHERE {_KEY} RETURNING content_hash",
            (detail, location.storage_class.value, location.content_hash.hex),
        )
        if known is not None:
            return False
        row = await self._s.fetchone(
            "INSERT INTO corrupt_blobs (storage_class, content_hash, found_at, detail)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (storage_class, content_hash) DO NOTHING"
            " RETURNING content_hash",
            (
                location.storage_class.value,
                location.content_hash.hex,
                self._d.ts_in(found_at),
                detail,
            ),
        )
        return row is not None

    async def clear_corrupt(self, location: BlobLocation) -> bool:
        row = await self._s.fetchone(
            f"DELETE FROM corrupt_blobs WHERE {_KEY} RETURNING content_hash",
            (location.storage_class.value, location.content_hash.hex),
        )
        return row is not None

    async def corrupt(self, limit: int) -> list[CorruptBlob]:
        rows = await self._s.fetchall(
            "SELECT storage_class, content_hash, found_at, detail FROM corrupt_blobs"
            " ORDER BY found_at, storage_class, content_hash LIMIT ?",
            (limit,),
        )
        return [
            CorruptBlob(StorageClass(r[0]), ContentHash(r[1]), self._d.ts_out(r[2]), str(r[3]))
            for r in rows
        ]

    async def count_corrupt(self) -> int:
        row = await self._s.fetchone("SELECT COUNT(*) FROM corrupt_blobs")
        return int(row[0]) if row else 0

    async def referencing(self, location: BlobLocation, limit: int) -> list[BlobReference]:
        rows = await self._s.fetchall(
            "SELECT tenant_id, namespace, key, id FROM objects WHERE storage_class = ?"
            " AND content_hash = ? AND state = 'COMMITTED' ORDER BY id LIMIT ?",
            (location.storage_class.value, location.content_hash.hex, limit),
        )
        return [
            BlobReference(str(r[0]), str(r[1]), str(r[2]), self._d.uuid_out(r[3])) for r in rows
        ]

    async def blob_row(self, location: BlobLocation) -> tuple[int, str, int] | None:
        row = await self._s.fetchone(
            "SELECT size_bytes, COALESCE(location, content_hash), ref_count FROM blobs"
            f" WHERE {_KEY}",
            (location.storage_class.value, location.content_hash.hex),
        )
        return (int(row[0]), str(row[1]), int(row[2])) if row else None
