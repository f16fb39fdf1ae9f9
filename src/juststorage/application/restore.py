"""`restore` (SPEC §8.9; docs/backup.md): one complete backup written into an EMPTY
deployment, on either database, with this deployment's blob stores.

A run:
1. reads the backup's manifest (its hash checked against manifest.sha256) and the
   whole metadata file (its hash and size checked against the manifest, every line
   parsed, the header's format, version and schema understood): any mismatch
   refuses before anything is written;
2. refuses a database that holds any object, blob, inline blob or API key row
   (`NotEmpty`), then runs the migrations (a new database gets its schema);
3. takes GC's backup hold (migration 0011), so the blobs it writes before its
   commit are not removed as orphans, and renews it while it runs;
4. copies every blob row's bytes from `blobs/<hh>/<hash>` of the target, `parallel`
   at a time, hashing them as they stream: at most `inline_max_bytes` go inline (kept
   in memory only up to that size, then spilled to a local temp file with their
   placement), larger ones into their class's store (stage, write, seal, publish,
   confirm: a file already at its content path is found and not written again);
   bytes that do not hash to their name fail the restore, naming the blob;
5. writes every row in ONE transaction (`MetadataLoader.load`), which checks
   emptiness again under its lock: a restore killed before it commits nothing, and
   a re-run starts over (GC removes what the killed run stored once its hold lapsed
   and the grace period passed).
"""

from __future__ import annotations

import hashlib
import json
import struct
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, Literal, Protocol

import anyio

from juststorage.application.backup import HEARTBEAT_S, BackupHold
from juststorage.application.backup_format import (
    BackupCorrupt,
    Manifest,
    MetadataHeader,
    Row,
    blob_key,
    decode_row,
    encode_row,
    list_backups,
    read_manifest,
    read_metadata,
)
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import MetadataStore
from juststorage.application.records import INLINE_PREFIX, BlobLocation
from juststorage.domain.errors import NotFound, StorageError, first_error
from juststorage.domain.model import ContentHash, StorageClass

__all__ = [
    "MetadataLoader",
    "NotEmpty",
    "PlacedBlob",
    "RestoreFailed",
    "RestoreObserver",
    "RestoreReport",
    "RestoreRows",
    "choose_backup",
    "closing_stream",
    "restore_backup",
]

_PAGE = 500


@asynccontextmanager
async def closing_stream(stream: AsyncIterator[bytes]) -> AsyncIterator[AsyncIterator[bytes]]:
    """`stream`, closed when the block ends, also early (a failure, a cancelled task):
    the file or response behind it is released at once, not by the garbage collector."""
    try:
        yield stream
    finally:
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


class RestoreFailed(StorageError):
    """The restore could not be completed; nothing was committed."""


class NotEmpty(RestoreFailed):
    """The deployment already holds objects, blobs or API keys."""


@dataclass(frozen=True, slots=True)
class PlacedBlob:
    """A backup's `blobs` row, and where this deployment keeps its bytes now:
    `location` as the `blobs.location` column holds it (None: the filesystem's content
    address; `inline:<hex>` with `inline` the bytes)."""

    row: Row
    location: str | None
    inline: bytes | None


class RestoreRows(Protocol):
    """What the loader writes, each read once, in this order."""

    def objects(self) -> AsyncIterator[list[Row]]: ...

    def blobs(self) -> AsyncIterator[list[PlacedBlob]]: ...

    def api_keys(self) -> AsyncIterator[list[Row]]: ...


class MetadataLoader(Protocol):
    """The metadata database a restore writes (adapters/metadata/restore.py)."""

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]: ...

    @property
    def latest_schema(self) -> int:
        """The newest migration this juststorage knows: a backup of a newer schema
        is refused."""
        ...

    async def occupied(self) -> list[str]:
        """The tables among objects, api_keys, blobs and inline_blobs that hold a row
        (a database or table that does not exist yet holds none)."""
        ...

    async def load(self, rows: RestoreRows) -> None:
        """Write every row in one transaction, after checking emptiness again inside
        it (NotEmpty), then recount references and counters; commit."""
        ...


class RestoreObserver(Protocol):
    def planned(self, blobs: int, size: int) -> None: ...

    def copied(self, size: int) -> None: ...


class _Quiet:
    def planned(self, blobs: int, size: int) -> None:
        return None

    def copied(self, size: int) -> None:
        return None


@dataclass(slots=True)
class RestoreReport:
    id: str
    backend: str  # the backup's source database
    objects: int = 0
    api_keys: int = 0
    blobs: int = 0  # blob rows restored
    blob_bytes: int = 0
    stored_blobs: int = 0  # written into a file or S3 object by this run
    present_blobs: int = 0  # files found at their content path already (a re-run)
    inline_blobs: int = 0
    seconds: float = 0.0
    manifest: Manifest | None = field(default=None, repr=False)


async def choose_backup(target: BackupTarget, backup_id: str | None) -> Manifest:
    """The manifest of backup `backup_id`, or of the newest finished backup.

    Raises:
        NotFound: no such complete backup.
        BackupCorrupt: its manifest does not match manifest.sha256.
    """
    if backup_id is not None:
        return await read_manifest(target, backup_id)
    return await _newest_finished(target)


async def _newest_finished(target: BackupTarget) -> Manifest:
    """The manifest of the newest backup that finished (wrote manifest.sha256).
    Only runs that never finished are skipped: a finished one whose manifest fails
    its hash is refused, never passed over for an older backup."""
    for info in reversed(await list_backups(target)):
        if info.manifest is not None:
            return info.manifest
        try:
            return await read_manifest(target, info.id)
        except NotFound:
            continue  # never finished (killed, or still running)
        except BackupCorrupt as exc:
            raise BackupCorrupt(
                f"the newest backup {info.id} is damaged: {exc} (restore an older one with --id)"
            ) from None
    raise NotFound(f"no complete backup in {target.description}")


@dataclass(slots=True)
class _Plan:
    header: MetadataHeader | None = None
    objects: int = 0
    api_keys: int = 0
    blobs: int = 0
    blob_bytes: int = 0


async def _check(target: BackupTarget, manifest: Manifest, latest_schema: int) -> _Plan:
    """Read the whole metadata file once: its hash and size, every line, the header."""
    plan = _Plan()
    async for item in read_metadata(target, manifest):
        if isinstance(item, MetadataHeader):
            plan.header = item
            continue
        table, row = item
        if table == "objects":
            plan.objects += 1
            if row["state"] != "COMMITTED":
                raise BackupCorrupt(f"an object row in state {row['state']!r}")
        elif table == "api_keys":
            plan.api_keys += 1
        else:
            size = row["size_bytes"]
            assert isinstance(size, int)
            plan.blobs += 1
            plan.blob_bytes += size
    header = plan.header
    assert header is not None
    if header.schema > latest_schema:
        raise BackupCorrupt(
            f"the backup was taken of schema version {header.schema}; this juststorage"
            f" knows versions up to {latest_schema}: restore it with a newer juststorage"
        )
    if header.schema != manifest.schema or header.backend != manifest.backend:
        raise BackupCorrupt("the metadata header does not match the manifest")
    if plan.objects != manifest.objects:
        raise BackupCorrupt(
            f"the metadata holds {plan.objects} objects, the manifest {manifest.objects}"
        )
    return plan


class _Placements:
    """The blobs placed so far, in a local temp file: millions of them need no
    memory until the load reads them back. One record each: three big-endian u32
    lengths (the row as JSON, the location, the inline bytes; 0xFFFFFFFF for
    none), then those bytes. The inline bytes are written as they are: no
    encoding on the event loop (JSON with base64 cost more than the copy)."""

    _LENGTHS = struct.Struct(">III")
    _NONE = 0xFFFFFFFF

    def __init__(self) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115

    def add(self, placed: PlacedBlob) -> None:
        row = json.dumps(encode_row("blobs", placed.row)).encode()
        location = b"" if placed.location is None else placed.location.encode()
        inline = placed.inline
        self._file.write(
            self._LENGTHS.pack(
                len(row),
                self._NONE if placed.location is None else len(location),
                self._NONE if inline is None else len(inline),
            )
        )
        self._file.write(row)
        self._file.write(location)
        if inline is not None:
            self._file.write(inline)

    def _read(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) != size:
            raise RestoreFailed("the placements spill file (a local temp file) is truncated")
        return data

    async def pages(self) -> AsyncIterator[list[PlacedBlob]]:
        self._file.flush()
        self._file.seek(0)
        page: list[PlacedBlob] = []
        while header := self._file.read(self._LENGTHS.size):
            row_n, location_n, inline_n = self._LENGTHS.unpack(self._read_rest(header))
            row = decode_row("blobs", json.loads(self._read(row_n)))
            location = None if location_n == self._NONE else self._read(location_n).decode()
            inline = None if inline_n == self._NONE else self._read(inline_n)
            page.append(PlacedBlob(row, location, inline))
            if len(page) >= _PAGE:
                yield page
                page = []
        if page:
            yield page

    def _read_rest(self, header: bytes) -> bytes:
        if len(header) == self._LENGTHS.size:
            return header
        return header + self._read(self._LENGTHS.size - len(header))

    def close(self) -> None:
        self._file.close()


class _Rows:
    """The rows of one more read of the metadata, for the loader: objects, then the
    placements, then API keys (the metadata's order: one pass serves both tables)."""

    def __init__(self, target: BackupTarget, manifest: Manifest, placements: _Placements) -> None:
        self._items = aiter(read_metadata(target, manifest))
        self._placements = placements
        self._pending: tuple[str, Row] | None = None

    async def _next(self) -> tuple[str, Row] | None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            return pending
        async for item in self._items:
            if isinstance(item, MetadataHeader):
                continue
            return item
        return None

    async def _table(self, name: str) -> AsyncIterator[list[Row]]:
        page: list[Row] = []
        while (item := await self._next()) is not None:
            table, row = item
            if table == "blobs" and name != "blobs":
                continue  # placed by the copy: the placements carry these rows
            if table != name:
                self._pending = item
                break
            page.append(row)
            if len(page) >= _PAGE:
                yield page
                page = []
        if page:
            yield page

    def objects(self) -> AsyncIterator[list[Row]]:
        return self._table("objects")

    def blobs(self) -> AsyncIterator[list[PlacedBlob]]:
        return self._placements.pages()

    async def api_keys(self) -> AsyncIterator[list[Row]]:
        async for page in self._table("api_keys"):
            yield page
        # Drain to the end: the file's hash is checked after its last line.
        while await self._next() is not None:
            pass


class _Copier:
    """Puts each blob row's bytes where this deployment keeps them."""

    def __init__(
        self,
        target: BackupTarget,
        blobs: BlobStore,
        metadata: MetadataStore,
        inline_max_bytes: int,
        owner: str,
        observer: RestoreObserver,
        report: RestoreReport,
        placements: _Placements,
    ) -> None:
        self._target = target
        self._blobs = blobs
        self._metadata = metadata
        self._inline_max = inline_max_bytes
        self._owner = owner
        self._observer = observer
        self._report = report
        self._placements = placements

    async def _chunks(self, row: Row) -> AsyncIterator[bytes]:
        digest = row["content_hash"]
        assert isinstance(digest, str)
        try:
            # Closed at once when the copy stops early (a failure, a cancelled worker):
            # the target's file or response is not left to the garbage collector.
            async with closing_stream(self._target.get_stream(blob_key(digest))) as stream:
                async for chunk in stream:
                    self._observer.copied(len(chunk))
                    yield chunk
        except NotFound:
            raise RestoreFailed(
                f"blob sha256:{digest} is missing from {self._target.description}"
                " (run `juststorage backup verify`)"
            ) from None

    @staticmethod
    def _corrupt(row: Row, digest: str, size: int) -> RestoreFailed:
        name, storage_class = str(row["content_hash"]), str(row["storage_class"])
        return RestoreFailed(
            f"blob sha256:{name} ({storage_class}) is corrupt in the"
            f" backup: its {size} bytes hash to {digest} (run `juststorage backup verify`)"
        )

    async def copy(self, row: Row) -> None:
        storage_class = StorageClass(str(row["storage_class"]))
        digest = str(row["content_hash"])
        size = row["size_bytes"]
        assert isinstance(size, int)
        if self._inline_max > 0 and size <= self._inline_max:
            parts: list[bytes] = []
            got = 0
            hasher = hashlib.sha256()
            async with closing_stream(self._chunks(row)) as chunks:
                async for chunk in chunks:
                    hasher.update(chunk)
                    parts.append(chunk)
                    got += len(chunk)
                    if got > size:
                        break
            if hasher.hexdigest() != digest or got != size:
                raise self._corrupt(row, hasher.hexdigest(), got)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            self._placements.add(PlacedBlob(row, INLINE_PREFIX + digest, bytes(data)))
            self._report.inline_blobs += 1
            return
        async with (
            self._blobs.stage(storage_class, uuid.uuid4(), self._owner) as staged,
            closing_stream(self._chunks(row)) as chunks,
        ):
            async for chunk in chunks:
                await staged.write(chunk)
            sealed, written = await staged.seal()  # hashed while it streamed
            if sealed.hex != digest or written != size:
                raise self._corrupt(row, sealed.hex, written)  # leaving stage removes it
            created = await staged.publish()
            location = BlobLocation(storage_class, ContentHash.trusted(digest), staged.address)
            async with self._metadata.transaction() as uow:
                # Keeps the bytes when the block ends (the stores write nothing through
                # `uow`: it is never committed).
                await staged.confirm(location, uow=uow)
        self._placements.add(
            PlacedBlob(row, None if location.address == digest else location.address, None)
        )
        if created or location.address != digest:  # S3: written under its own key at seal
            self._report.stored_blobs += 1
        else:
            self._report.present_blobs += 1


async def _blob_rows(target: BackupTarget, manifest: Manifest) -> AsyncIterator[Row]:
    async for item in read_metadata(target, manifest):
        if not isinstance(item, MetadataHeader) and item[0] == "blobs":
            yield item[1]


async def _renewing(hold: BackupHold, every_s: float) -> None:
    while True:
        await anyio.sleep(every_s)
        # The copy's end cancels this loop: a renewal is finished, not cut off inside
        # its transaction (the database's busy timeout bounds it).
        with anyio.CancelScope(shield=True):
            await hold.renew()


async def _renewing_through_load(hold: BackupHold, every_s: float) -> None:
    """Renews the hold until the load has committed: until then the stored blobs have
    no visible row (orphans to GC). A renewal that fails is retried: on SQLite the
    load holds the write lock, so GC cannot run either until it commits."""
    while True:
        await anyio.sleep(every_s)
        try:
            with anyio.CancelScope(shield=True):  # see _renewing
                await hold.renew()
        except StorageError:
            continue


async def restore_backup(
    *,
    target: BackupTarget,
    loader: MetadataLoader,
    metadata: MetadataStore,
    blobs: BlobStore,
    inline_max_bytes: int,
    owner: str,
    backup_id: str | None = None,
    parallel: int = 8,
    observer: RestoreObserver | None = None,
    hold: BackupHold | None = None,
    renew_s: float = HEARTBEAT_S,
    on_checked: Callable[[Manifest], None] | None = None,
) -> RestoreReport:
    """Restore one backup (the newest complete one unless `backup_id`) into this
    empty deployment. `blobs` keeps the blobs over `inline_max_bytes` (the store
    behind the inline one); `metadata` is migrated before anything is written.

    Raises:
        NotFound: no such complete backup.
        BackupCorrupt: the manifest, the metadata file or its header is not what it
            should be (nothing written).
        NotEmpty: the deployment holds rows already (nothing written).
        RestoreFailed: a blob is missing or corrupt in the backup (nothing committed).
        StorageError: the database, a blob store or the target failed.
    """
    started = time.monotonic()
    manifest = await choose_backup(target, backup_id)
    plan = await _check(target, manifest, loader.latest_schema)
    occupied = await loader.occupied()
    if occupied:
        raise NotEmpty(
            f"the database is not empty: it holds {', '.join(occupied)} rows;"
            " restore writes only into an empty deployment"
        )
    if on_checked is not None:
        on_checked(manifest)
    report = RestoreReport(manifest.id, manifest.backend, manifest=manifest)
    report.objects, report.api_keys = plan.objects, plan.api_keys
    report.blobs, report.blob_bytes = plan.blobs, plan.blob_bytes
    observer = observer or _Quiet()
    await metadata.migrate()
    await blobs.prepare()
    try:
        async with AsyncExitStack() as stack:
            if hold is not None:
                await hold.take()
                stack.push_async_callback(hold.release)
            placements = _Placements()
            stack.callback(placements.close)
            copier = _Copier(
                target, blobs, metadata, inline_max_bytes, owner, observer, report, placements
            )
            observer.planned(plan.blobs, plan.blob_bytes)
            async with anyio.create_task_group() as renewal:
                if hold is not None:
                    renewal.start_soon(_renewing, hold, renew_s)
                await _copy_all(target, manifest, copier, parallel)
                renewal.cancel_scope.cancel()
            async with anyio.create_task_group() as renewal:
                if hold is not None:
                    renewal.start_soon(_renewing_through_load, hold, renew_s)
                await loader.load(_Rows(target, manifest, placements))
                renewal.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise first_error(group) from None
    report.seconds = time.monotonic() - started
    return report


async def _copy_all(
    target: BackupTarget, manifest: Manifest, copier: _Copier, parallel: int
) -> None:
    send, receive = anyio.create_memory_object_stream[Row](max_buffer_size=max(1, parallel))

    async def work(jobs: anyio.abc.ObjectReceiveStream[Row]) -> None:
        async with jobs:
            async for row in jobs:
                await copier.copy(row)

    async with anyio.create_task_group() as group:
        for _ in range(max(1, parallel)):
            group.start_soon(work, receive.clone())
        receive.close()
        async with send:
            async for row in _blob_rows(target, manifest):
                await send.send(row)
