"""The backup format, version 1 (SPEC §8.9; docs/backup.md): the layout of a target,
the manifest, the metadata dump's rows and their JSON codec, and the readers a
restore uses. Everything here is plain data and stdlib; targets are `BackupTarget`s.

Layout, relative to the target:

    blobs/<hh>/<sha256 hex>             one copy of each blob, whatever its class
                                        (inline blobs too); written once, atomically:
                                        present means complete
    backups/<id>/metadata.jsonl.gz      the snapshot's rows (gzip'd JSON lines)
    backups/<id>/manifest.json          written after everything else ...
    backups/<id>/manifest.sha256        ... then this, last: hex SHA-256 of manifest.json
    backups/<id>/in-progress            {started_at, heartbeat} while a run is going on

A backup is complete iff manifest.json and manifest.sha256 both exist and match.
An id is `YYYYMMDDTHHMMSSZ-<8 hex>` (UTC; the hex digits are the microsecond, then
3 random ones): ids sort by their start time.

metadata.jsonl.gz: a header line
    {"format": "juststorage-backup-metadata", "version": 1, "schema": N,
     "backend": "sqlite"|"postgresql", "snapshot_at": "<ISO 8601>"}
then one line per row, {"table": name, "row": {column: value}}, the tables in the
order of `TABLES` (objects by commit_seq, blobs by hash, api_keys by id).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import secrets
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from juststorage.domain.errors import NotFound, StorageError

if TYPE_CHECKING:
    from juststorage.application.backup_ports import BackupTarget

__all__ = [
    "BLOBS_PREFIX",
    "BACKUPS_PREFIX",
    "COLUMNS",
    "FORMAT",
    "MANIFEST_FORMAT",
    "TABLES",
    "VERSION",
    "BackupCorrupt",
    "BackupInfo",
    "ColumnType",
    "Manifest",
    "MetadataHeader",
    "MetadataRef",
    "Row",
    "TenantUsage",
    "Value",
    "blob_key",
    "decode_row",
    "encode_row",
    "hash_of_blob_key",
    "in_progress_key",
    "list_backups",
    "manifest_hash_key",
    "manifest_key",
    "metadata_key",
    "new_backup_id",
    "read_manifest",
    "read_metadata",
    "check_metadata",
    "is_backup_id",
    "MetadataWriter",
    "json_line",
]

FORMAT = "juststorage-backup-metadata"
MANIFEST_FORMAT = "juststorage-backup"
VERSION = 1

BLOBS_PREFIX = "blobs/"
BACKUPS_PREFIX = "backups/"
METADATA_NAME = "metadata.jsonl.gz"
MANIFEST_NAME = "manifest.json"
MANIFEST_HASH_NAME = "manifest.sha256"
IN_PROGRESS_NAME = "in-progress"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{8}")

Value = str | int | datetime | bytes | list[str] | None
Row = dict[str, Value]
ColumnType = Literal["text", "int", "timestamp", "bytes", "text_list"]

# The columns each table's rows carry, in the order of the dump, with their types.
COLUMNS: dict[str, dict[str, ColumnType]] = {
    "objects": {
        "id": "text",  # a UUID in its canonical text form
        "tenant_id": "text",
        "namespace": "text",
        "key": "text",
        "state": "text",  # always COMMITTED in a backup
        "storage_class": "text",
        "content_type": "text",
        "content_hash": "text",
        "size_bytes": "int",
        "created_at": "timestamp",
        "updated_at": "timestamp",
        "commit_seq": "int",
        "owner": "text",
        "s3_etag": "text",
        "user_metadata": "text",  # JSON text, as stored
    },
    "blobs": {
        "storage_class": "text",
        "content_hash": "text",
        "size_bytes": "int",
        "created_at": "timestamp",
    },
    "api_keys": {
        "id": "text",
        "key_hash": "text",
        "tenants": "text_list",
        "scopes": "text_list",
        "created_at": "timestamp",
        "revoked_at": "timestamp",
    },
}
TABLES = tuple(COLUMNS)


class BackupCorrupt(StorageError):
    """A backup's files are missing, incomplete or do not match their hashes."""


# -- keys ---------------------------------------------------------------------------


def new_backup_id(now: datetime) -> str:
    """`YYYYMMDDTHHMMSSZ-<8 hex>` for a backup started at `now`: the 8 hex digits are
    the microsecond (5 digits) then 3 random ones, so ids sort by start time within a
    second too, and two backups started at once still differ."""
    moment = now.astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{moment.microsecond:05x}{secrets.token_hex(2)[:3]}"


def is_backup_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None


def blob_key(hex_digest: str) -> str:
    """`blobs/<hh>/<hex>`: where the blob of this SHA-256 is kept."""
    return f"{BLOBS_PREFIX}{hex_digest[:2]}/{hex_digest}"


def hash_of_blob_key(key: str) -> str | None:
    """The hex digest a `blobs/` key names, or None for any other key."""
    if not key.startswith(BLOBS_PREFIX):
        return None
    folder, _, name = key.removeprefix(BLOBS_PREFIX).partition("/")
    if _HEX64.fullmatch(name) is None or folder != name[:2]:
        return None
    return name


def _backup_key(backup_id: str, name: str) -> str:
    if not is_backup_id(backup_id):
        raise ValueError(f"not a backup id: {backup_id!r}")
    return f"{BACKUPS_PREFIX}{backup_id}/{name}"


def metadata_key(backup_id: str) -> str:
    return _backup_key(backup_id, METADATA_NAME)


def manifest_key(backup_id: str) -> str:
    return _backup_key(backup_id, MANIFEST_NAME)


def manifest_hash_key(backup_id: str) -> str:
    return _backup_key(backup_id, MANIFEST_HASH_NAME)


def in_progress_key(backup_id: str) -> str:
    return _backup_key(backup_id, IN_PROGRESS_NAME)


# -- values -------------------------------------------------------------------------


def _timestamp_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a timestamp without a time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"a timestamp without a UTC offset: {text!r}")
    return moment.astimezone(UTC)


def _encode_value(kind: ColumnType, value: Value) -> Any:
    if value is None:
        return None
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "timestamp" and isinstance(value, datetime):
        return _timestamp_text(value)
    if kind == "bytes" and isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if kind == "text_list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"not a {kind} value: {type(value).__name__}")


def _decode_value(kind: ColumnType, value: Any) -> Value:
    if value is None:
        return None
    if kind == "text" and isinstance(value, str):
        return value
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "timestamp" and isinstance(value, str):
        return _parse_timestamp(value)
    if kind == "bytes" and isinstance(value, str):
        return base64.b64decode(value, validate=True)
    if kind == "text_list" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"not a {kind} value in JSON: {value!r}")


def encode_row(table: str, row: Mapping[str, Value]) -> dict[str, Any]:
    """A row's JSON object: text as strings, timestamps ISO 8601 with their UTC
    offset, bytes base64, integers as integers, lists as arrays, NULL as null.

    Raises:
        ValueError: an unknown table, a missing or extra column, a value of the
            wrong type.
    """
    columns = COLUMNS[table]
    if row.keys() != columns.keys():
        raise ValueError(f"{table} row columns {sorted(row)} are not {sorted(columns)}")
    return {name: _encode_value(kind, row[name]) for name, kind in columns.items()}


def decode_row(table: str, data: Mapping[str, Any]) -> Row:
    """The canonical values of a row's JSON object (the inverse of `encode_row`).

    Raises:
        ValueError: as `encode_row`.
    """
    columns = COLUMNS.get(table)
    if columns is None:
        raise ValueError(f"unknown table {table!r}")
    if data.keys() != columns.keys():
        raise ValueError(f"{table} row columns {sorted(data)} are not {sorted(columns)}")
    return {name: _decode_value(kind, data[name]) for name, kind in columns.items()}


def json_line(data: Mapping[str, Any]) -> bytes:
    """One JSON line (compact, UTF-8, keys in their order)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# -- header, manifest ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetadataHeader:
    """The first line of metadata.jsonl.gz."""

    schema: int
    backend: Literal["sqlite", "postgresql"]
    snapshot_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "schema": self.schema,
            "backend": self.backend,
            "snapshot_at": _timestamp_text(self.snapshot_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetadataHeader:
        """Raises BackupCorrupt: not a version 1 header."""
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise BackupCorrupt(
                f"the metadata is not {FORMAT} version {VERSION}: "
                f"{data.get('format')!r} {data.get('version')!r}"
            )
        try:
            backend = data["backend"]
            if backend not in ("sqlite", "postgresql"):
                raise ValueError(f"backend {backend!r}")
            return cls(int(data["schema"]), backend, _parse_timestamp(data["snapshot_at"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BackupCorrupt(f"the metadata header is malformed: {exc}") from None


@dataclass(frozen=True, slots=True)
class TenantUsage:
    """One tenant's committed versions and their bytes, per storage class, as
    `GET /v1/usage` counts them (a restore can be checked against it)."""

    objects: dict[str, int] = field(default_factory=dict)  # storage class → versions
    size_bytes: dict[str, int] = field(default_factory=dict)  # storage class → bytes

    def add(self, storage_class: str, size: int) -> None:
        self.objects[storage_class] = self.objects.get(storage_class, 0) + 1
        self.size_bytes[storage_class] = self.size_bytes.get(storage_class, 0) + size

    def to_json(self) -> dict[str, Any]:
        return {"objects": dict(self.objects), "bytes": dict(self.size_bytes)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TenantUsage:
        objects = {str(k): int(v) for k, v in data["objects"].items()}
        return cls(objects, {str(k): int(v) for k, v in data["bytes"].items()})


@dataclass(frozen=True, slots=True)
class MetadataRef:
    """The metadata file of a backup: key (relative to the target), SHA-256, size."""

    path: str
    sha256: str
    size: int


@dataclass(slots=True)
class Manifest:
    """manifest.json: what one complete backup holds (docs/backup.md)."""

    id: str
    started_at: datetime
    snapshot_at: datetime  # every upload acknowledged before it is in the backup
    snapshot_taken_by: datetime  # no upload begun after it is
    finished_at: datetime
    backend: Literal["sqlite", "postgresql"]
    schema: int
    objects: int  # committed versions
    object_bytes: int  # the sum of their sizes ("bytes" in the JSON)
    blobs: int  # distinct hashes those versions reference
    blob_bytes: int  # the sum of those blobs' sizes (one per hash)
    usage: dict[str, TenantUsage]  # tenant → usage
    metadata: MetadataRef
    copied_blobs: int  # this run's copies ...
    copied_bytes: int
    skipped_blobs: int  # ... and the blobs it found in the target already

    def to_bytes(self) -> bytes:
        """The manifest's JSON (the bytes manifest.sha256 hashes)."""
        data: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "version": VERSION,
            "id": self.id,
            "started_at": _timestamp_text(self.started_at),
            "snapshot_at": _timestamp_text(self.snapshot_at),
            "snapshot_taken_by": _timestamp_text(self.snapshot_taken_by),
            "finished_at": _timestamp_text(self.finished_at),
            "source": {"backend": self.backend, "schema": self.schema},
            "objects": self.objects,
            "bytes": self.object_bytes,
            "blobs": self.blobs,
            "blob_bytes": self.blob_bytes,
            "usage": {t: u.to_json() for t, u in sorted(self.usage.items())},
            "metadata": asdict(self.metadata),
            "run": {
                "copied_blobs": self.copied_blobs,
                "copied_bytes": self.copied_bytes,
                "skipped_blobs": self.skipped_blobs,
            },
        }
        return json.dumps(data, indent=2, sort_keys=False).encode() + b"\n"

    @classmethod
    def from_bytes(cls, raw: bytes, *, expected_sha256: str | None = None) -> Manifest:
        """Parse manifest.json; with `expected_sha256` (manifest.sha256's text), check
        the bytes against it first.

        Raises:
            BackupCorrupt: the hash does not match, or the JSON is not a version 1
                manifest.
        """
        if expected_sha256 is not None:
            actual = hashlib.sha256(raw).hexdigest()
            if actual != expected_sha256.strip():
                raise BackupCorrupt(
                    f"manifest.json does not match manifest.sha256 "
                    f"(sha256 {actual}, recorded {expected_sha256.strip()[:64]})"
                )
        try:
            data = json.loads(raw)
            if data.get("format") != MANIFEST_FORMAT or data.get("version") != VERSION:
                raise ValueError(f"not {MANIFEST_FORMAT} version {VERSION}")
            run = data["run"]
            return cls(
                id=data["id"],
                started_at=_parse_timestamp(data["started_at"]),
                snapshot_at=_parse_timestamp(data["snapshot_at"]),
                snapshot_taken_by=_parse_timestamp(data["snapshot_taken_by"]),
                finished_at=_parse_timestamp(data["finished_at"]),
                backend=data["source"]["backend"],
                schema=int(data["source"]["schema"]),
                objects=int(data["objects"]),
                object_bytes=int(data["bytes"]),
                blobs=int(data["blobs"]),
                blob_bytes=int(data["blob_bytes"]),
                usage={t: TenantUsage.from_json(u) for t, u in data["usage"].items()},
                metadata=MetadataRef(**data["metadata"]),
                copied_blobs=int(run["copied_blobs"]),
                copied_bytes=int(run["copied_bytes"]),
                skipped_blobs=int(run["skipped_blobs"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupCorrupt(f"manifest.json is malformed: {exc}") from None


# -- reading a target -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """One backup id found in a target: complete (with its manifest) or not."""

    id: str
    manifest: Manifest | None  # None: incomplete, or its manifest fails its hash
    problem: str | None  # why it is not complete
    heartbeat: datetime | None  # of an incomplete one: its in-progress file's last beat

    @property
    def complete(self) -> bool:
        return self.manifest is not None


async def read_manifest(target: BackupTarget, backup_id: str) -> Manifest:
    """The manifest of a complete backup, its hash checked.

    Raises:
        NotFound: no backup of this id is complete (no manifest.sha256 or manifest.json).
        BackupCorrupt: the manifest does not match its hash, or is malformed.
    """
    try:
        expected = (await target.get_bytes(manifest_hash_key(backup_id))).decode("ascii", "replace")
        raw = await target.get_bytes(manifest_key(backup_id))
    except NotFound:
        raise NotFound(f"no complete backup {backup_id} in {target.description}") from None
    manifest = Manifest.from_bytes(raw, expected_sha256=expected)
    if manifest.id != backup_id:
        raise BackupCorrupt(f"manifest of {backup_id} names another backup: {manifest.id}")
    return manifest


async def _heartbeat(target: BackupTarget, backup_id: str) -> datetime | None:
    try:
        data = json.loads(await target.get_bytes(in_progress_key(backup_id)))
        return _parse_timestamp(data["heartbeat"])
    except NotFound:
        return None
    except (KeyError, TypeError, ValueError):
        return None


async def list_backups(target: BackupTarget) -> list[BackupInfo]:
    """Every backup id in the target, oldest first, with its manifest when complete."""
    names: dict[str, set[str]] = {}
    async for page in target.list_keys(BACKUPS_PREFIX):
        for key in page:
            backup_id, _, name = key.removeprefix(BACKUPS_PREFIX).partition("/")
            if is_backup_id(backup_id):
                names.setdefault(backup_id, set()).add(name)
    found = []
    for backup_id in sorted(names):
        files = names[backup_id]
        manifest: Manifest | None = None
        problem: str | None = None
        if MANIFEST_HASH_NAME in files and MANIFEST_NAME in files:
            try:
                manifest = await read_manifest(target, backup_id)
            except BackupCorrupt as exc:
                problem = str(exc)
            except NotFound:
                problem = "incomplete: its manifest is gone"
        else:
            problem = "incomplete: no manifest"
        heartbeat = None if manifest else await _heartbeat(target, backup_id)
        found.append(BackupInfo(backup_id, manifest, problem, heartbeat))
    return found


async def _gunzip_lines(
    chunks: AsyncIterator[bytes], hasher: hashlib._Hash
) -> AsyncIterator[bytes]:
    """The lines of a gzip stream, hashing its compressed bytes into `hasher`."""
    inflater = _Inflater()
    async for chunk in chunks:
        hasher.update(chunk)
        for line in inflater.feed(chunk):
            yield line
    for line in inflater.finish():
        yield line


class _Inflater:
    """Incremental gzip → lines (members concatenated are one stream, as gzip reads)."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(wbits=31)
        self._pending = b""

    def _split(self, data: bytes) -> Iterator[bytes]:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        yield from lines

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        out = []
        while chunk:
            out.append(self._d.decompress(chunk, 1 << 20))
            chunk = self._d.unconsumed_tail
            if self._d.eof:
                rest = self._d.unused_data
                self._d = zlib.decompressobj(wbits=31)
                chunk = rest + chunk
        for piece in out:
            yield from self._split(piece)

    def finish(self) -> Iterator[bytes]:
        yield from self._split(self._d.flush())
        if self._pending:
            yield self._pending
            self._pending = b""


async def read_metadata(
    target: BackupTarget, manifest: Manifest
) -> AsyncIterator[MetadataHeader | tuple[str, Row]]:
    """The backup's header, then each (table, row) of its metadata, streamed.

    The file's SHA-256 and size are checked against the manifest as it is read:
    the last row comes out only after the check passed, so a consumer that reaches
    the end read exactly what was backed up (a consumer that must not act on a
    corrupt file checks everything first with `check_metadata`).

    Raises:
        NotFound: the metadata file is missing.
        BackupCorrupt: it does not match the manifest, or a line is malformed.
    """
    hasher = hashlib.sha256()
    size = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal size
        async for chunk in target.get_stream(manifest.metadata.path):
            size += len(chunk)
            yield chunk

    held: tuple[str, Row] | None = None
    first = True
    try:
        async for line in _gunzip_lines(counted(), hasher):
            if not line:
                continue
            data = json.loads(line)
            if first:
                first = False
                yield MetadataHeader.from_json(data)
                continue
            if not isinstance(data, dict) or set(data) != {"table", "row"}:
                raise ValueError("a line is not {table, row}")
            row = decode_row(data["table"], data["row"])
            if held is not None:
                yield held
            held = (data["table"], row)
    except (ValueError, zlib.error) as exc:
        raise BackupCorrupt(f"{manifest.metadata.path} is malformed: {exc}") from None
    if first:
        raise BackupCorrupt(f"{manifest.metadata.path} is empty")
    if hasher.hexdigest() != manifest.metadata.sha256 or size != manifest.metadata.size:
        raise BackupCorrupt(
            f"{manifest.metadata.path} does not match the manifest "
            f"(sha256 {hasher.hexdigest()}, {size} bytes; "
            f"recorded {manifest.metadata.sha256}, {manifest.metadata.size} bytes)"
        )
    if held is not None:
        yield held


async def check_metadata(target: BackupTarget, manifest: Manifest) -> MetadataHeader:
    """Read the whole metadata file and check it (hash, size, every line); its header.

    Raises:
        NotFound, BackupCorrupt: as `read_metadata`.
    """
    header: MetadataHeader | None = None
    async for item in read_metadata(target, manifest):
        if isinstance(item, MetadataHeader):
            header = item
    assert header is not None
    return header


class MetadataWriter:
    """Builds metadata.jsonl.gz in memory-bounded pieces: `write` returns the gzip'd
    bytes ready so far (a caller streams them on), `finish` the rest."""

    def __init__(self, header: MetadataHeader) -> None:
        self._buffer = io.BytesIO()
        self._gzip = gzip.GzipFile(fileobj=self._buffer, mode="wb", compresslevel=6, mtime=0)
        self._hasher = hashlib.sha256()
        self.size = 0
        self.rows: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._gzip.write(json_line(header.to_json()))

    def _take(self) -> bytes:
        data = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        self._hasher.update(data)
        self.size += len(data)
        return data

    def write(self, table: str, row: Mapping[str, Value]) -> bytes:
        self._gzip.write(json_line({"table": table, "row": encode_row(table, row)}))
        self.rows[table] += 1
        return self._take()

    def finish(self) -> bytes:
        self._gzip.close()
        return self._take()

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of every byte returned so far."""
        return self._hasher.hexdigest()
