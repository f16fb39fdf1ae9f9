"""The blob index in SQL, written once for SQLite and PostgreSQL: one row per
(storage class, hash) with its reference count and the address its store gave it.

The row locks taken here are what keeps GC from removing a blob an upload is
about to reference: docs/durability.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from juststorage.adapters.metadata.queries import inline_address
from juststorage.adapters.metadata.sql import SqlRepository
from juststorage.application.records import (
    BlobAudit,
    BlobLocation,
    StoredBlob,
    is_inline_address,
)
from juststorage.domain.model import ContentHash, StorageClass

# A row's address: the one it records, else its content address (the hash's hex).
_ADDRESS = "COALESCE(location, content_hash)"
# The address of a blob kept in the database (SPEC §8.1): its bytes are in inline_blobs.
_INLINE_ADDRESS = inline_address("content_hash")
_KEY = "storage_class = ? AND content_hash = ?"


class SqlBlobIndex(SqlRepository):
    """`BlobIndex` over a SQL session."""

    async def acquire(self, blob: BlobLocation, size_bytes: int) -> BlobLocation:
        storage_class, content_hash, address = blob.storage_class, blob.content_hash, blob.address
        # The upsert's row lock lasts until commit: GC cannot delete this row meanwhile.
        # A row without references takes the new address: its old copy may be
        # half-removed by a GC pass that crashed before its commit (docs/durability.md).
        # The content address is stored as NULL (rows from before addresses existed).
        recorded = None if address == content_hash.hex else address
        row = await self._s.fetchone(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count, created_at,"
            " location) VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (storage_class, content_hash)"
            " DO UPDATE SET ref_count = blobs.ref_count + 1, released_at = NULL,"
            " location = CASE WHEN blobs.ref_count = 0 THEN excluded.location"
            " ELSE blobs.location END"
            f" RETURNING {_ADDRESS}",
            (storage_class.value, content_hash.hex, size_bytes, self._now(), recorded),
        )
        return BlobLocation(storage_class, content_hash, row[0] if row else address)

    async def acquire_referenced(self, blob: BlobLocation, size_bytes: int) -> BlobLocation | None:
        # The UPDATE's row lock lasts until commit, as acquire's does. `ref_count > 0`
        # is read under that lock: a GC pass deletes a row (and its bytes) only while
        # holding it with ref_count = 0, so a row that still has a reference has its
        # bytes, and this one keeps them there.
        row = await self._s.fetchone(
            f"UPDATE blobs SET ref_count = ref_count + 1 WHERE {_KEY} AND size_bytes = ?"
            f" AND ref_count > 0 RETURNING {_ADDRESS}",
            (blob.storage_class.value, blob.content_hash.hex, size_bytes),
        )
        if row is None:
            return None
        return BlobLocation(blob.storage_class, blob.content_hash, row[0])

    async def acquire_many(self, blobs: Sequence[tuple[BlobLocation, int]]) -> list[BlobLocation]:
        if not self._d.batch_statements or len(blobs) < 2:
            return [await self.acquire(blob, size) for blob, size in blobs]
        # One row per blob, taking as many references as it appears; the first
        # appearance's address is the one a new (or unreferenced) row records.
        rows: dict[tuple[str, str], tuple[int, int, str | None]] = {}  # size, refs, address
        for blob, size in blobs:
            key = (blob.storage_class.value, blob.content_hash.hex)
            held = rows.get(key)
            if held is not None:
                rows[key] = (held[0], held[1] + 1, held[2])
            else:
                recorded = None if blob.address == blob.content_hash.hex else blob.address
                rows[key] = (size, 1, recorded)
        now = self._now()
        params = [v for (c, h), (size, n, at) in rows.items() for v in (c, h, size, n, now, at)]
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows))
        found = await self._s.fetchall(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count, created_at,"
            f" location) VALUES {values} ON CONFLICT (storage_class, content_hash)"
            " DO UPDATE SET ref_count = blobs.ref_count + excluded.ref_count,"
            " released_at = NULL,"
            " location = CASE WHEN blobs.ref_count = 0 THEN excluded.location"
            " ELSE blobs.location END"
            f" RETURNING storage_class, content_hash, {_ADDRESS}",
            tuple(params),
        )
        address = {(str(r[0]), str(r[1])): str(r[2]) for r in found}
        return [
            BlobLocation(
                blob.storage_class,
                blob.content_hash,
                address[(blob.storage_class.value, blob.content_hash.hex)],
            )
            for blob, _ in blobs
        ]

    async def release(self, storage_class: StorageClass, content_hash: ContentHash) -> None:
        # Right-hand sides see the old row: released_at is stamped when 1 becomes 0.
        await self._s.execute(
            "UPDATE blobs SET ref_count = ref_count - 1,"
            " released_at = CASE WHEN ref_count = 1 THEN ? ELSE released_at END"
            " WHERE storage_class = ? AND content_hash = ? AND ref_count > 0",
            (self._now(), storage_class.value, content_hash.hex),
        )

    async def unreferenced(self, released_before: datetime, limit: int) -> list[BlobLocation]:
        rows = await self._s.fetchall(
            f"SELECT storage_class, content_hash, {_ADDRESS} FROM blobs WHERE ref_count = 0"
            " AND released_at <= ? ORDER BY released_at LIMIT ?",
            (self._d.ts_in(released_before), limit),
        )
        return [BlobLocation(StorageClass(r[0]), ContentHash(r[1]), r[2]) for r in rows]

    async def forget_if_unreferenced(
        self, location: BlobLocation, released_before: datetime
    ) -> bool:
        row = await self._s.fetchone(
            "DELETE FROM blobs WHERE storage_class = ? AND content_hash = ? AND ref_count = 0"
            " AND released_at <= ? RETURNING content_hash",
            (
                location.storage_class.value,
                location.content_hash.hex,
                self._d.ts_in(released_before),
            ),
        )
        if row is None:
            return False
        await self._forget_inline(location)  # the bytes go with their row
        await self._forget_corrupt(location)
        return True

    async def _forget_corrupt(self, location: BlobLocation) -> None:
        """A blob row removed takes its scrub finding along (no corrupt blob is left
        counted that no row names)."""
        await self._s.execute(
            f"DELETE FROM corrupt_blobs WHERE {_KEY}",
            (location.storage_class.value, location.content_hash.hex),
        )

    async def _forget_inline(self, location: BlobLocation) -> None:
        """Delete the row's inline bytes, if any, in the transaction that deletes the row
        (or moves it off inline): no inline bytes outlive the row that names them."""
        await self._s.execute(
            f"DELETE FROM inline_blobs WHERE {_KEY}",
            (location.storage_class.value, location.content_hash.hex),
        )

    async def claim_orphan(self, location: BlobLocation, size_bytes: int) -> bool:
        now = self._now()
        content_hash = location.content_hash.hex
        recorded = None if location.address == content_hash else location.address
        row = await self._s.fetchone(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count,"
            " released_at, created_at, location) VALUES (?, ?, ?, 0, ?, ?, ?)"
            " ON CONFLICT (storage_class, content_hash) DO NOTHING RETURNING content_hash",
            (location.storage_class.value, content_hash, size_bytes, now, now, recorded),
        )
        return row is not None

    async def forget(self, location: BlobLocation) -> None:
        await self._s.execute(
            "DELETE FROM blobs WHERE storage_class = ? AND content_hash = ?",
            (location.storage_class.value, location.content_hash.hex),
        )
        await self._forget_inline(location)
        await self._forget_corrupt(location)

    async def claim_stale(self, location: BlobLocation) -> bool:
        # An UPDATE that changes nothing, for its row lock (held until the commit): no
        # upload can re-point the row at this copy while it is removed.
        row = await self._s.fetchone(
            f"UPDATE blobs SET ref_count = ref_count WHERE {_KEY}"
            f" RETURNING COALESCE(location, '') = {_INLINE_ADDRESS}",
            (location.storage_class.value, location.content_hash.hex),
        )
        if row is None or bool(row[0]) == location.is_inline:
            return False  # no row (claim_orphan's case), or the row's own copy
        if location.is_inline:
            await self._forget_inline(location)
        return True

    async def store_inline(self, location: BlobLocation, data: bytes | bytearray) -> bool:
        row = await self._s.fetchone(
            "INSERT INTO inline_blobs (storage_class, content_hash, data) VALUES (?, ?, ?)"
            " ON CONFLICT (storage_class, content_hash) DO NOTHING RETURNING content_hash",
            (location.storage_class.value, location.content_hash.hex, data),
        )
        return row is not None

    async def store_inline_many(
        self, rows: Sequence[tuple[BlobLocation, bytes | bytearray]]
    ) -> list[bool]:
        if not self._d.batch_statements or len(rows) < 2:
            return [await self.store_inline(location, data) for location, data in rows]
        first: dict[tuple[str, str], int] = {}  # each blob's first row: the one stored
        for index, (location, _) in enumerate(rows):
            first.setdefault((location.storage_class.value, location.content_hash.hex), index)
        params = [
            value
            for (cls, digest), index in first.items()
            for value in (cls, digest, rows[index][1])
        ]
        stored = await self._s.fetchall(
            "INSERT INTO inline_blobs (storage_class, content_hash, data) VALUES"
            f" {', '.join(['(?, ?, ?)'] * len(first))}"
            " ON CONFLICT (storage_class, content_hash) DO NOTHING"
            " RETURNING storage_class, content_hash",
            tuple(params),
        )
        inserted = {(str(r[0]), str(r[1])) for r in stored}
        return [
            index == first[key] and key in inserted
            for index, key in enumerate(
                (location.storage_class.value, location.content_hash.hex) for location, _ in rows
            )
        ]

    async def inline_data(self, location: BlobLocation) -> bytes | None:
        row = await self._s.fetchone(
            f"SELECT data FROM inline_blobs WHERE {_KEY}",
            (location.storage_class.value, location.content_hash.hex),
        )
        if row is None:
            return None
        if isinstance(row[0], str):
            # A damaged SQLite row holding TEXT: its bytes, for the hash check to flag.
            return row[0].encode("utf-8", "surrogateescape")
        return bytes(row[0])

    async def inline_stored(
        self, storage_class: StorageClass, after: str, limit: int
    ) -> list[tuple[ContentHash, int]]:
        rows = await self._s.fetchall(
            "SELECT content_hash, length(data) FROM inline_blobs WHERE storage_class = ?"
            " AND content_hash > ? ORDER BY content_hash LIMIT ?",
            (storage_class.value, after, limit),
        )
        return [(ContentHash(r[0]), int(r[1])) for r in rows]

    def _to_move_where(self, inline: bool) -> str:
        big = self._d.bigint
        if inline:  # blobs kept elsewhere (a file, an S3 object) small enough for inline
            return f"COALESCE(location, '') <> {_INLINE_ADDRESS} AND size_bytes <= {big}"
        # Inline blobs now over the threshold; at 0 (off) every one, 0-byte blobs too.
        return f"location = {_INLINE_ADDRESS} AND (size_bytes > {big} OR {big} = 0)"

    def _to_move_params(self, inline: bool, max_bytes: int) -> tuple[int, ...]:
        return (max_bytes,) if inline else (max_bytes, max_bytes)

    async def to_move(
        self, storage_class: StorageClass, *, inline: bool, max_bytes: int, after: str, limit: int
    ) -> list[tuple[BlobLocation, int]]:
        rows = await self._s.fetchall(
            f"SELECT content_hash, size_bytes, {_ADDRESS} FROM blobs WHERE storage_class = ?"
            f" AND {self._to_move_where(inline)} AND content_hash > ?"
            " ORDER BY content_hash LIMIT ?",
            (storage_class.value, *self._to_move_params(inline, max_bytes), after, limit),
        )
        return [(BlobLocation(storage_class, ContentHash(r[0]), r[2]), int(r[1])) for r in rows]

    async def count_to_move(
        self, storage_class: StorageClass, *, inline: bool, max_bytes: int
    ) -> int:
        row = await self._s.fetchone(
            f"SELECT COUNT(*) FROM blobs WHERE storage_class = ? AND {self._to_move_where(inline)}",
            (storage_class.value, *self._to_move_params(inline, max_bytes)),
        )
        return int(row[0]) if row else 0

    async def move_inline(self, location: BlobLocation, data: bytes | bytearray) -> bool:
        row = await self._s.fetchone(
            f"UPDATE blobs SET location = {_INLINE_ADDRESS} WHERE {_KEY}"
            f" AND {_ADDRESS} = ? RETURNING content_hash",
            (location.storage_class.value, location.content_hash.hex, location.address),
        )
        if row is None:
            return False
        # A leftover of an earlier inline life of this row may still be there.
        await self._s.execute(
            "INSERT INTO inline_blobs (storage_class, content_hash, data) VALUES (?, ?, ?)"
            " ON CONFLICT (storage_class, content_hash) DO UPDATE SET data = excluded.data",
            (location.storage_class.value, location.content_hash.hex, data),
        )
        return True

    async def move_out_of_line(self, location: BlobLocation, address: str) -> bool:
        recorded = None if address == location.content_hash.hex else address
        row = await self._s.fetchone(
            f"UPDATE blobs SET location = ? WHERE {_KEY} AND location = {_INLINE_ADDRESS}"
            " RETURNING content_hash",
            (recorded, location.storage_class.value, location.content_hash.hex),
        )
        if row is None:
            return False
        await self._forget_inline(location)
        return True

    async def known(self, storage_class: StorageClass, stored: list[StoredBlob]) -> set[str]:
        found: set[str] = set()
        by_hash = {s.content_hash.hex: s.address for s in stored if s.content_hash is not None}
        for condition, params in self._d.any_of("content_hash", list(by_hash), "text"):
            # A row accounts for the copy of its kind only: inline bytes for an inline
            # row, a file for any other (the filesystem serves a row by its hash).
            rows = await self._s.fetchall(
                f"SELECT content_hash, COALESCE(location, '') = {_INLINE_ADDRESS} FROM blobs"
                f" WHERE storage_class = ? AND {condition}",
                (storage_class.value, *params),
            )
            found.update(
                by_hash[r[0]] for r in rows if bool(r[1]) == is_inline_address(by_hash[r[0]])
            )
        by_address = [s.address for s in stored if s.content_hash is None]
        for condition, params in self._d.any_of("location", by_address, "text"):
            rows = await self._s.fetchall(
                f"SELECT location FROM blobs WHERE storage_class = ? AND {condition}",
                (storage_class.value, *params),
            )
            found.update(r[0] for r in rows)
        return found

    async def content_addressed(
        self, storage_class: StorageClass, after: BlobLocation | None, limit: int
    ) -> list[tuple[BlobLocation, int]]:
        rows = await self._s.fetchall(
            "SELECT content_hash, size_bytes FROM blobs WHERE storage_class = ?"
            " AND location IS NULL AND content_hash > ? ORDER BY content_hash LIMIT ?",
            (storage_class.value, after.content_hash.hex if after else "", limit),
        )
        return [(BlobLocation(storage_class, ContentHash(r[0])), r[1]) for r in rows]

    async def relocate(self, location: BlobLocation, address: str) -> bool:
        row = await self._s.fetchone(
            "UPDATE blobs SET location = ? WHERE storage_class = ? AND content_hash = ?"
            " AND location IS NULL RETURNING content_hash",
            (address, location.storage_class.value, location.content_hash.hex),
        )
        return row is not None

    async def audit(self, after: BlobLocation | None, limit: int) -> list[BlobAudit]:
        start = (after.storage_class.value, after.content_hash.hex) if after else ("", "")
        rows = await self._s.fetchall(
            "SELECT b.storage_class, b.content_hash, b.size_bytes, b.ref_count,"
            " (SELECT COUNT(*) FROM objects o WHERE o.storage_class = b.storage_class"
            " AND o.content_hash = b.content_hash AND o.state = 'COMMITTED'),"
            " COALESCE(b.location, b.content_hash)"
            " FROM blobs b WHERE (b.storage_class, b.content_hash) > (?, ?)"
            " ORDER BY b.storage_class, b.content_hash LIMIT ?",
            (*start, limit),
        )
        return [
            BlobAudit(
                BlobLocation(StorageClass(r[0]), ContentHash(r[1]), r[5]), r[2], r[3], int(r[4])
            )
            for r in rows
        ]

    async def totals(self) -> tuple[int, int]:
        row = await self._s.fetchone("SELECT COUNT(*), COALESCE(SUM(size_bytes), 0) FROM blobs")
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def set_ref_count(self, location: BlobLocation, ref_count: int) -> None:
        count = self._d.bigint
        await self._s.execute(
            f"UPDATE blobs SET ref_count = {count},"
            f" released_at = CASE WHEN {count} = 0 THEN COALESCE(released_at, ?) ELSE NULL END"
            " WHERE storage_class = ? AND content_hash = ?",
            (
                ref_count,
                ref_count,
                self._now(),
                location.storage_class.value,
                location.content_hash.hex,
            ),
        )
