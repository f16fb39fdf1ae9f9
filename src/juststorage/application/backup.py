"""`backup create` (SPEC §8.9; docs/backup.md): one consistent snapshot of the
metadata and every blob it references, copied to a target beside a running server.

A run:
1. names the backup (`new_backup_id`) and writes its `in-progress` file, reads the
   target's prune generation, then rewrites `in-progress` every `heartbeat_s` while
   it runs (from before the listing on);
2. lists the target's `blobs/` once, with sizes: a blob there with its recorded size
   is complete and is not copied again (so a killed run's successor resumes, and a
   second backup of an unchanged store copies nothing); one of another size is
   copied again;
3. takes ONE snapshot and streams its rows into `metadata.jsonl.gz`; the blobs
   missing from the target are noted in a local spill file (bounded memory; inline
   blobs with their bytes, read in the snapshot), and the snapshot closes: nothing
   is copied to the target while it is open;
4. copies the noted blobs, `parallel` at a time, each through the BlobStore port,
   hashing while it streams: bytes that do not hash to their name fail the backup
   and leave nothing at the blob's key;
5. writes manifest.json, then manifest.sha256 (the backup is complete from here),
   reads the prune generation again (changed: a prune removed blobs this run may
   count on; manifest.sha256 is removed and the run fails), and removes
   `in-progress`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import anyio

from juststorage.application.backup_copy import (
    READ_REPORT_ROWS,
    BackupFailed,
    BackupObserver,
    BlobCorrupt,
    Copier,
    Relocate,
    Spill,
    Totals,
    present_blob_sizes,
    present_blobs,
)
from juststorage.application.backup_format import (
    Manifest,
    MetadataHeader,
    MetadataRef,
    MetadataWriter,
    TenantUsage,
    in_progress_key,
    manifest_hash_key,
    manifest_key,
    metadata_key,
    new_backup_id,
    read_metadata,
)
from juststorage.application.backup_ports import (
    BackupTarget,
    DumpedBlob,
    MetadataDumper,
    MetadataSnapshot,
)
from juststorage.application.backup_upkeep import check_no_prune, prune_generation
from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import Clock, MetadataStore
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import StorageError, first_error
from juststorage.domain.model import ContentHash, StorageClass
from juststorage.domain.timestamps import parse_utc_text, utc_text

__all__ = [
    "BackupFailed",
    "BackupHold",
    "BackupObserver",
    "BlobCorrupt",
    "DatabaseHold",
    "RepairReport",
    "create_backup",
    "present_blobs",
    "repair_blobs",
]

HEARTBEAT_S = 10.0
HOLD_TTL_S = 300.0  # a hold lapses this long after its last renewal (a killed run's)
RENEW_ATTEMPTS = 5  # heartbeats (and hold renewals) failing in a row that fail the run
RETRY_S = 2.0  # the pause before trying a failed heartbeat again


class BackupHold(Protocol):
    """Keeps GC from removing what the backup still has to copy (docs/durability.md):
    taken before the snapshot, renewed while the run goes, released at its end."""

    async def take(self) -> None: ...

    async def renew(self) -> None: ...

    async def release(self) -> None: ...


class _Quiet:
    def planned(self, blobs: int, size: int) -> None:
        return None

    def copied(self, size: int) -> None:
        return None

    def read(self, rows: int) -> None:
        return None


def _relocator(dumper: MetadataDumper) -> Relocate:
    async def relocate(blob: DumpedBlob) -> BlobLocation | bytes | None:
        return await dumper.locate(blob.storage_class, blob.content_hash)

    return relocate


_NAMED_OBJECTS = 10


def _describer(dumper: MetadataDumper) -> Callable[[DumpedBlob], Awaitable[str]]:
    async def describe(blob: DumpedBlob) -> str:
        try:
            found = await dumper.objects_of(blob.storage_class, blob.content_hash, _NAMED_OBJECTS)
        except StorageError:
            return "its objects could not be read"
        if not found:
            return "no committed object references it now"
        named = ", ".join(f"{object_id} (tenant {tenant})" for tenant, object_id in found)
        more = " and more" if len(found) >= _NAMED_OBJECTS else ""
        return f"objects: {named}{more}"

    return describe


class DatabaseHold:
    """A `backup_holds` row (migration 0011): while it is valid and `holder` (this
    process's identity) alive, GC removes no blob released since it began and no
    orphan (application/gc.py)."""

    def __init__(
        self, metadata: MetadataStore, clock: Clock, holder: str, ttl_s: float = HOLD_TTL_S
    ) -> None:
        self._metadata = metadata
        self._clock = clock
        self._holder = holder
        self._ttl = timedelta(seconds=ttl_s)
        self.id = secrets.token_hex(8)
        self.started_at: datetime | None = None  # set by take()

    async def take(self) -> None:
        async with self._metadata.transaction() as uow:
            self.started_at = await uow.holds.take(
                self.id, self._holder, self._clock.now() + self._ttl
            )
            await uow.commit()

    async def renew(self) -> None:
        async with self._metadata.transaction() as uow:
            renewed = await uow.holds.renew(self.id, self._clock.now() + self._ttl)
            if not renewed:
                # Lapsed and removed (the run stalled): hold again, from the ORIGINAL
                # start, so GC spares what it spared before. Blobs GC took during the
                # lapse make their copy fail (missing), never a bad backup.
                await uow.holds.take(
                    self.id, self._holder, self._clock.now() + self._ttl, self.started_at
                )
            await uow.commit()

    async def release(self) -> None:
        async with self._metadata.transaction() as uow:
            await uow.holds.release(self.id)
            await uow.commit()


async def _dump(
    snapshot: MetadataSnapshot,
    writer: MetadataWriter,
    totals: Totals,
    present: dict[str, int],
    observer: BackupObserver,
    spill: Spill,
) -> AsyncIterator[bytes]:
    """The gzip'd bytes of the snapshot's rows; on the way, the blobs missing from
    the target go to the spill file (inline ones with their bytes)."""
    rows = 0

    def count() -> None:
        nonlocal rows
        rows += 1
        if rows % READ_REPORT_ROWS == 0:
            observer.read(rows)

    async for page in snapshot.objects():
        for row in page:
            count()
            if chunk := writer.write("objects", row):
                yield chunk  # gzip hands out bytes a block at a time
            size = row["size_bytes"]
            tenant, storage_class = row["tenant_id"], row["storage_class"]
            assert isinstance(size, int) and isinstance(tenant, str)
            assert isinstance(storage_class, str)
            totals.objects += 1
            totals.object_bytes += size
            totals.usage.setdefault(tenant, TenantUsage()).add(storage_class, size)
    last_hash = ""
    async for blobs in snapshot.blobs():
        for blob in blobs:
            count()
            if chunk := writer.write("blobs", blob.row):
                yield chunk
            digest = blob.content_hash.hex
            if digest == last_hash:
                continue  # the same bytes in another class: one copy per hash
            last_hash = digest
            totals.blobs += 1
            totals.blob_bytes += blob.size_bytes
            if present.get(digest) == blob.size_bytes:
                totals.skipped_blobs += 1
                continue
            # Missing, or of another size (truncated, damaged): copied (again), once.
            present[digest] = blob.size_bytes
            totals.planned_blobs += 1
            totals.planned_bytes += blob.size_bytes
            if blob.address.startswith("inline:"):
                data = await snapshot.inline_bytes(blob.storage_class, blob.content_hash)
                spill.add(blob, data)
            else:
                spill.add(blob)
    async for page in snapshot.api_keys():
        for row in page:
            count()
            if chunk := writer.write("api_keys", row):
                yield chunk
    observer.read(rows)
    yield writer.finish()


async def _heartbeats(
    target: BackupTarget,
    key: str,
    started_at: datetime,
    clock: Clock,
    every_s: float,
    hold: BackupHold | None,
) -> None:
    failures = 0
    while True:
        await anyio.sleep(every_s if failures == 0 else min(every_s, RETRY_S))
        try:
            await _beat(target, key, started_at, clock)
            if hold is not None:
                await hold.renew()
        except StorageError:
            # A database or target hiccup: try again soon; only a run that cannot
            # beat for RENEW_ATTEMPTS tries in a row (long before its hold lapses or
            # its heartbeat goes stale) fails.
            failures += 1
            if failures >= RENEW_ATTEMPTS:
                raise
        else:
            failures = 0


async def _beat(target: BackupTarget, key: str, started_at: datetime, clock: Clock) -> None:
    data = {
        "started_at": utc_text(started_at, fraction_digits=6),
        "heartbeat": utc_text(clock.now(), fraction_digits=6),
        "pid": os.getpid(),
    }
    await target.put_bytes(key, json.dumps(data).encode() + b"\n")


async def create_backup(
    *,
    target: BackupTarget,
    dumper: MetadataDumper,
    blobs: BlobStore,
    clock: Clock,
    parallel: int = 8,
    observer: BackupObserver | None = None,
    hold: BackupHold | None = None,
    heartbeat_s: float = HEARTBEAT_S,
) -> tuple[Manifest, float]:
    """Take one backup into `target`; its manifest and the seconds it took.

    `hold` (GC's backup hold, `DatabaseHold`) is taken before the snapshot, renewed
    with each heartbeat and released at the end. A blob missing at the address the
    snapshot named is looked up again in the live database by (class, hash) (it may
    have moved since: migrate-blobs, inline moves) before the backup fails.

    Raises:
        BlobCorrupt: a source blob does not hash to its name (named, with its objects).
        BackupFailed: a blob is missing at its source.
        StorageError: the database, the blob store or the target failed.
    """
    run = _Run(
        target,
        dumper,
        blobs,
        clock,
        max(1, parallel),
        observer or _Quiet(),
        hold,
        heartbeat_s,
        started=time.monotonic(),
        started_at=clock.now(),
    )
    try:
        return await run.create()
    except BaseExceptionGroup as group:
        raise first_error(group) from None


@dataclass
class _Run:
    """One run of `create_backup`."""

    target: BackupTarget
    dumper: MetadataDumper
    blobs: BlobStore
    clock: Clock
    parallel: int
    observer: BackupObserver
    hold: BackupHold | None
    heartbeat_s: float
    started: float
    started_at: datetime
    totals: Totals = field(default_factory=Totals)

    def __post_init__(self) -> None:
        self.id = new_backup_id(self.started_at)
        self.progress_key = in_progress_key(self.id)

    async def create(self) -> tuple[Manifest, float]:
        await _beat(self.target, self.progress_key, self.started_at, self.clock)
        try:
            await check_no_prune(self.target, self.clock.now())
            return await self._copy()
        except BaseException:
            # Not complete: without its in-progress file it is listed as incomplete at
            # once (and prune removes it), rather than as running for another minute.
            with anyio.CancelScope(shield=True), suppress(StorageError):
                await self.target.delete(self.progress_key)
            raise

    async def _copy(self) -> tuple[Manifest, float]:
        generation = await prune_generation(self.target)
        async with AsyncExitStack() as stack:
            if self.hold is not None:
                await self.hold.take()
                stack.push_async_callback(self.hold.release)
            spill = Spill()
            stack.callback(spill.close)
            async with anyio.create_task_group() as beats:
                beats.start_soon(
                    _heartbeats,
                    self.target,
                    self.progress_key,
                    self.started_at,
                    self.clock,
                    self.heartbeat_s,
                    self.hold,
                )
                # Beating already: a long listing is not taken for a dead run.
                present = await present_blob_sizes(self.target)
                metadata = await self._dump(present, spill)
                self.observer.planned(self.totals.planned_blobs, self.totals.planned_bytes)
                copier = Copier(
                    self.target,
                    self.blobs,
                    self.parallel,
                    self.observer,
                    self.totals,
                    _relocator(self.dumper),
                    _describer(self.dumper),
                )
                async with anyio.create_task_group() as workers:
                    copier.start(workers)
                    try:
                        async for page in spill.entries():
                            for blob, inline in page:
                                await copier.put(blob, inline)
                    finally:
                        await copier.close()
                beats.cancel_scope.cancel()
            manifest = self._manifest(*metadata)
            raw = manifest.to_bytes()
            await self.target.put_bytes(manifest_key(self.id), raw)
            digest = hashlib.sha256(raw).hexdigest()
            await self.target.put_bytes(manifest_hash_key(self.id), digest.encode() + b"\n")
            if await prune_generation(self.target) != generation:
                await self.target.delete(manifest_hash_key(self.id))
                raise BackupFailed(
                    f"a prune removed backups or blobs from {self.target.description} while"
                    " this backup ran (it took the backup for dead: a stall, or clocks more"
                    " than a minute apart), so blobs this backup counts on may be gone; it"
                    " is left incomplete: run the backup again (it resumes)"
                )
            await self.target.delete(self.progress_key)
        return manifest, time.monotonic() - self.started

    async def _dump(
        self, present: dict[str, int], spill: Spill
    ) -> tuple[MetadataHeader, datetime, MetadataRef]:
        """Stream the snapshot into metadata.jsonl.gz (the missing blobs to the spill
        file); its header, taken_by and reference."""
        async with self.dumper.snapshot() as snapshot:
            lost = await snapshot.objects_without_blob()
            if lost:
                raise BackupFailed(
                    f"{lost} committed objects name a blob the database has no row for:"
                    " their bytes cannot be backed up. Run `juststorage fsck` (and"
                    " `fsck --repair`) first."
                )
            header = MetadataHeader(snapshot.schema, snapshot.backend, snapshot.snapshot_at)
            writer = MetadataWriter(header)
            await self.target.put_stream(
                metadata_key(self.id),
                _dump(snapshot, writer, self.totals, present, self.observer, spill),
            )
            ref = MetadataRef(metadata_key(self.id), writer.sha256, writer.size)
            return header, snapshot.taken_by, ref

    def _manifest(
        self, header: MetadataHeader, taken_by: datetime, metadata: MetadataRef
    ) -> Manifest:
        totals = self.totals
        return Manifest(
            id=self.id,
            started_at=self.started_at,
            snapshot_at=header.snapshot_at,
            snapshot_taken_by=taken_by,
            finished_at=self.clock.now(),
            backend=header.backend,
            schema=header.schema,
            objects=totals.objects,
            object_bytes=totals.object_bytes,
            blobs=totals.blobs,
            blob_bytes=totals.blob_bytes,
            usage=totals.usage,
            metadata=metadata,
            copied_blobs=totals.copied_blobs,
            copied_bytes=totals.copied_bytes,
            skipped_blobs=totals.skipped_blobs,
        )


@dataclass
class RepairReport:
    """What `repair_blobs` copied again, and what it could not (hash → why)."""

    repaired: list[str] = field(default_factory=list)
    unrepairable: dict[str, str] = field(default_factory=dict)


async def repair_blobs(
    *,
    target: BackupTarget,
    manifest: Manifest,
    hashes: list[str],
    dumper: MetadataDumper,
    blobs: BlobStore,
) -> RepairReport:
    """Copy again, from the live store, the blobs of a backup that `verify` found
    missing or corrupt in the target (`backup verify --repair`; docs/backup.md).

    Each is looked up by (class, hash) in the live database, read through the blob
    store and published only if it hashes to its name, as a backup copies. One the
    store no longer holds (deleted and collected since) cannot be repaired: the
    report says so, and the backup stays damaged.

    Raises:
        NotFound, BackupCorrupt: the backup's metadata cannot be read.
        StorageError: the database or the target failed.
    """
    wanted = set(hashes)
    rows: dict[str, list[DumpedBlob]] = {}
    async for item in read_metadata(target, manifest):
        if isinstance(item, tuple) and item[0] == "blobs":
            row = item[1]
            digest = row["content_hash"]
            if digest in wanted:
                size, created = row["size_bytes"], row["created_at"]
                assert isinstance(digest, str) and isinstance(size, int)
                created_at = (
                    created if isinstance(created, datetime) else parse_utc_text(str(created))
                )
                blob = DumpedBlob(
                    StorageClass(str(row["storage_class"])),
                    ContentHash.trusted(digest),
                    size,
                    created_at,
                    "",
                )
                rows.setdefault(digest, []).append(blob)
    report = RepairReport()
    copier = Copier(target, blobs, 1, _Quiet(), Totals(), _relocator(dumper), _describer(dumper))
    try:
        for digest in sorted(wanted):
            why = "the backup's metadata names no such blob"
            for blob in rows.get(digest, []):
                where = await dumper.locate(blob.storage_class, blob.content_hash)
                if where is None:
                    why = "the store no longer holds it"
                    continue
                try:
                    if isinstance(where, bytes):
                        await copier.copy_now(blob, where)
                    else:
                        await copier.copy_now(_at(blob, where.address), None)
                except BackupFailed as exc:
                    why = exc.message
                    continue
                report.repaired.append(digest)
                break
            else:
                report.unrepairable[digest] = why
    finally:
        copier.close_unstarted()
    return report


def _at(blob: DumpedBlob, address: str) -> DumpedBlob:
    return DumpedBlob(
        blob.storage_class, blob.content_hash, blob.size_bytes, blob.created_at, address
    )
