"""`backup create` (SPEC §8.9; docs/backup.md): one consistent snapshot of the
metadata and every blob it references, copied to a target beside a running server.

A run:
1. names the backup (`new_backup_id`) and writes its `in-progress` file, then
   rewrites it every `heartbeat_s` while it runs;
2. lists the target's `blobs/` once: what is there is complete and is not copied
   again (so a killed run's successor resumes, and a second backup of an unchanged
   store copies nothing);
3. takes ONE snapshot and streams its rows into `metadata.jsonl.gz`; inline blobs
   missing from the target are copied from the snapshot as their rows pass; the
   other missing blobs are noted in a local spill file (bounded memory), and the
   snapshot closes;
4. copies the noted blobs, `parallel` at a time, each through the BlobStore port,
   hashing while it streams: bytes that do not hash to their name fail the backup
   and leave nothing at the blob's key;
5. writes manifest.json, then manifest.sha256 (the backup is complete from here),
   and removes `in-progress`.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Protocol

import anyio
from anyio.abc import TaskGroup

from juststorage.application.backup_format import (
    BLOBS_PREFIX,
    Manifest,
    MetadataHeader,
    MetadataRef,
    MetadataWriter,
    TenantUsage,
    blob_key,
    hash_of_blob_key,
    in_progress_key,
    manifest_hash_key,
    manifest_key,
    metadata_key,
    new_backup_id,
)
from juststorage.application.backup_ports import (
    BackupTarget,
    DumpedBlob,
    MetadataDumper,
    MetadataSnapshot,
)
from juststorage.application.backup_upkeep import BackupBusy, check_no_prune
from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import Clock, MetadataStore
from juststorage.application.records import BlobLocation
from juststorage.domain.errors import NotFound, StorageError
from juststorage.domain.model import ContentHash, StorageClass
from juststorage.domain.timestamps import parse_utc_text, utc_text

__all__ = [
    "BackupFailed",
    "BackupHold",
    "BackupObserver",
    "BlobCorrupt",
    "DatabaseHold",
    "create_backup",
    "present_blobs",
]

HEARTBEAT_S = 10.0
HOLD_TTL_S = 300.0  # a hold lapses this long after its last renewal (a killed run's)
# Where a blob is now, by its (class, hash), in the live database: its location, or
# its bytes when it is inline now; None when no row knows it any more.
Relocate = Callable[[DumpedBlob], Awaitable[BlobLocation | bytes | None]]


class BackupFailed(StorageError):
    """The backup could not be completed (what is written stays incomplete; a
    re-run resumes it, `prune` removes it)."""


class BlobCorrupt(BackupFailed):
    """A source blob's bytes do not hash to its name."""


class BackupObserver(Protocol):
    """What a run reports while it goes (the CLI's progress line)."""

    def planned(self, blobs: int, size: int) -> None:
        """Known after the snapshot: the blobs (and their bytes) still to copy."""
        ...

    def copied(self, size: int) -> None:
        """Bytes of blob copied (called as they stream)."""
        ...


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


@dataclass
class _Totals:
    objects: int = 0
    object_bytes: int = 0
    blobs: int = 0
    blob_bytes: int = 0
    usage: dict[str, TenantUsage] = field(default_factory=dict)
    copied_blobs: int = 0
    copied_bytes: int = 0
    skipped_blobs: int = 0
    planned_blobs: int = 0
    planned_bytes: int = 0


async def present_blobs(target: BackupTarget) -> set[str]:
    """The hashes whose blob the target holds (one listing of `blobs/`)."""
    present: set[str] = set()
    async for page in target.list_keys(BLOBS_PREFIX):
        for key in page:
            digest = hash_of_blob_key(key)
            if digest is not None:
                present.add(digest)
    return present


async def _verified(
    chunks: AsyncIterator[bytes],
    blob: DumpedBlob,
    observer: BackupObserver,
    describe: Callable[[DumpedBlob], Awaitable[str]],
) -> AsyncIterator[bytes]:
    """The chunks, hashed as they pass; raises BlobCorrupt after the last one if they
    do not hash to the blob's name or size (so the put is aborted)."""
    hasher = hashlib.sha256()
    size = 0
    async for chunk in chunks:
        hasher.update(chunk)
        size += len(chunk)
        observer.copied(len(chunk))
        yield chunk
    if hasher.hexdigest() != blob.content_hash.hex or size != blob.size_bytes:
        raise BlobCorrupt(
            f"blob {blob.content_hash.hex} ({blob.storage_class.value}) is corrupt at its"
            f" source: its {size} bytes hash to {hasher.hexdigest()};"
            f" {await describe(blob)}. Run `juststorage fsck`."
        )


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class _Copier:
    """Copies blobs to the target, `parallel` at a time, through a bounded queue."""

    def __init__(
        self,
        target: BackupTarget,
        blobs: BlobStore,
        parallel: int,
        observer: BackupObserver,
        totals: _Totals,
        relocate: Relocate,
        describe: Callable[[DumpedBlob], Awaitable[str]],
    ) -> None:
        self._target = target
        self._blobs = blobs
        self._observer = observer
        self._totals = totals
        self._relocate = relocate
        self._describe = describe
        self._send, self._receive = anyio.create_memory_object_stream[
            tuple[DumpedBlob, bytes | None]
        ](max_buffer_size=max(1, parallel))
        self._parallel = max(1, parallel)

    def start(self, group: TaskGroup) -> None:
        for _ in range(self._parallel):
            group.start_soon(self._work, self._receive.clone())
        self._receive.close()

    async def put(self, blob: DumpedBlob, inline: bytes | None) -> None:
        await self._send.send((blob, inline))

    async def close(self) -> None:
        await self._send.aclose()

    async def _work(
        self, jobs: anyio.abc.ObjectReceiveStream[tuple[DumpedBlob, bytes | None]]
    ) -> None:
        async with jobs:
            async for blob, inline in jobs:
                await self._copy(blob, inline)

    async def _copy(self, blob: DumpedBlob, inline: bytes | None) -> None:
        key = blob_key(blob.content_hash.hex)
        if inline is not None:
            source: AsyncIterator[bytes] = _one(inline)
            await self._store(key, blob, source)
            return
        try:
            reader = await self._blobs.open(
                BlobLocation(blob.storage_class, blob.content_hash, blob.address)
            )
        except NotFound:
            reader = None
        if reader is None:
            # Moved since the snapshot (migrate-blobs, inline moves): where is it now?
            moved = await self._relocate(blob)
            if moved is None:
                raise BackupFailed(
                    f"blob {blob.content_hash.hex} ({blob.storage_class.value}) is missing"
                    f" at its source; {await self._describe(blob)}. Run `juststorage fsck`."
                )
            if isinstance(moved, bytes):
                await self._store(key, blob, _one(moved))
                return
            reader = await self._blobs.open(moved)
        try:
            await self._store(key, blob, reader.chunks(0, blob.size_bytes))
        finally:
            await reader.close()

    async def _store(self, key: str, blob: DumpedBlob, source: AsyncIterator[bytes]) -> None:
        await self._target.put_stream(key, _verified(source, blob, self._observer, self._describe))
        self._totals.copied_blobs += 1
        self._totals.copied_bytes += blob.size_bytes


class _Spill:
    """The blobs to copy after the snapshot closes, in a local temp file (one JSON
    line each): millions of them need no memory."""

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.count = 0

    def add(self, blob: DumpedBlob) -> None:
        line = [
            blob.storage_class.value,
            blob.content_hash.hex,
            blob.size_bytes,
            utc_text(blob.created_at, fraction_digits=6),
            blob.address,
        ]
        self._file.write(json.dumps(line).encode() + b"\n")
        self.count += 1

    async def pages(self, size: int = 1000) -> AsyncIterator[list[DumpedBlob]]:
        self._file.flush()
        self._file.seek(0)
        page: list[DumpedBlob] = []
        for raw in self._file:
            storage_class, digest, size_bytes, created_at, address = json.loads(raw)
            page.append(
                DumpedBlob(
                    StorageClass(storage_class),
                    ContentHash.trusted(digest),
                    int(size_bytes),
                    parse_utc_text(created_at),
                    address,
                )
            )
            if len(page) >= size:
                yield page
                page = []
        if page:
            yield page

    def close(self) -> None:
        self._file.close()


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

    async def take(self) -> None:
        async with self._metadata.transaction() as uow:
            await uow.holds.take(self.id, self._holder, self._clock.now() + self._ttl)
            await uow.commit()

    async def renew(self) -> None:
        async with self._metadata.transaction() as uow:
            renewed = await uow.holds.renew(self.id, self._clock.now() + self._ttl)
            if not renewed:
                # Lapsed and removed (the run stalled): hold again from now on. Blobs
                # GC took meanwhile make their copy fail (missing), never a bad backup.
                await uow.holds.take(self.id, self._holder, self._clock.now() + self._ttl)
            await uow.commit()

    async def release(self) -> None:
        async with self._metadata.transaction() as uow:
            await uow.holds.release(self.id)
            await uow.commit()


async def _dump(
    snapshot: MetadataSnapshot,
    writer: MetadataWriter,
    totals: _Totals,
    present: set[str],
    copier: _Copier,
    spill: _Spill,
) -> AsyncIterator[bytes]:
    """The gzip'd bytes of the snapshot's rows; on the way, inline blobs missing from
    the target go to the copier and the other missing blobs to the spill file."""
    async for page in snapshot.objects():
        for row in page:
            yield writer.write("objects", row)
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
            yield writer.write("blobs", blob.row)
            digest = blob.content_hash.hex
            if digest == last_hash:
                continue  # the same bytes in another class: one copy per hash
            last_hash = digest
            totals.blobs += 1
            totals.blob_bytes += blob.size_bytes
            if digest in present:
                totals.skipped_blobs += 1
                continue
            present.add(digest)  # planned: copied once, whichever row comes first
            totals.planned_blobs += 1
            totals.planned_bytes += blob.size_bytes
            if blob.address.startswith("inline:"):
                data = await snapshot.inline_bytes(blob.storage_class, blob.content_hash)
                await copier.put(blob, data)
            else:
                spill.add(blob)
    async for page in snapshot.api_keys():
        for row in page:
            yield writer.write("api_keys", row)
    yield writer.finish()


async def _heartbeats(
    target: BackupTarget,
    key: str,
    started_at: datetime,
    clock: Clock,
    every_s: float,
    hold: BackupHold | None,
) -> None:
    while True:
        await anyio.sleep(every_s)
        await _beat(target, key, started_at, clock)
        if hold is not None:
            await hold.renew()


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
    try:
        return await _create(
            target,
            dumper,
            blobs,
            clock,
            parallel,
            observer or _Quiet(),
            hold,
            _relocator(dumper),
            _describer(dumper),
            heartbeat_s,
        )
    except BaseExceptionGroup as group:
        raise _first_error(group) from None


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a task group's failure stands for: a storage error if there is one
    (the others are its consequences: cancellations, closed streams)."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for exc in g.exceptions:
            if isinstance(exc, BaseExceptionGroup):
                walk(exc)
            else:
                leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, StorageError):
            return exc
    return leaves[0] if leaves else group


async def _create(
    target: BackupTarget,
    dumper: MetadataDumper,
    blobs: BlobStore,
    clock: Clock,
    parallel: int,
    observer: BackupObserver,
    hold: BackupHold | None,
    relocate: Relocate,
    describe: Callable[[DumpedBlob], Awaitable[str]],
    heartbeat_s: float,
) -> tuple[Manifest, float]:
    started = time.monotonic()
    started_at = clock.now()
    backup_id = new_backup_id(started_at)
    progress_key = in_progress_key(backup_id)
    totals = _Totals()
    await _beat(target, progress_key, started_at, clock)
    try:
        await check_no_prune(target, clock.now())
    except BackupBusy:
        await target.delete(progress_key)
        raise
    present = await present_blobs(target)
    async with AsyncExitStack() as stack:
        if hold is not None:
            await hold.take()
            stack.push_async_callback(hold.release)
        spill = _Spill()
        stack.callback(spill.close)
        async with anyio.create_task_group() as beats:
            beats.start_soon(
                _heartbeats, target, progress_key, started_at, clock, heartbeat_s, hold
            )
            copier = _Copier(target, blobs, parallel, observer, totals, relocate, describe)
            async with anyio.create_task_group() as workers:
                copier.start(workers)
                try:
                    async with dumper.snapshot() as snapshot:
                        writer = MetadataWriter(
                            MetadataHeader(snapshot.schema, snapshot.backend, snapshot.snapshot_at)
                        )
                        await target.put_stream(
                            metadata_key(backup_id),
                            _dump(snapshot, writer, totals, present, copier, spill),
                        )
                        header = (
                            snapshot.schema,
                            snapshot.backend,
                            snapshot.snapshot_at,
                            snapshot.taken_by,
                        )
                    observer.planned(totals.planned_blobs, totals.planned_bytes)
                    async for page in spill.pages():
                        for blob in page:
                            await copier.put(blob, None)
                finally:
                    await copier.close()
            beats.cancel_scope.cancel()
        schema, backend, snapshot_at, taken_by = header
        manifest = Manifest(
            id=backup_id,
            started_at=started_at,
            snapshot_at=snapshot_at,
            snapshot_taken_by=taken_by,
            finished_at=clock.now(),
            backend=backend,
            schema=schema,
            objects=totals.objects,
            object_bytes=totals.object_bytes,
            blobs=totals.blobs,
            blob_bytes=totals.blob_bytes,
            usage=totals.usage,
            metadata=MetadataRef(metadata_key(backup_id), writer.sha256, writer.size),
            copied_blobs=totals.copied_blobs,
            copied_bytes=totals.copied_bytes,
            skipped_blobs=totals.skipped_blobs,
        )
        raw = manifest.to_bytes()
        await target.put_bytes(manifest_key(backup_id), raw)
        await target.put_bytes(
            manifest_hash_key(backup_id), hashlib.sha256(raw).hexdigest().encode() + b"\n"
        )
        await target.delete(progress_key)
    return manifest, time.monotonic() - started
