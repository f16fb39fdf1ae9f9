"""`backup verify` and `backup prune` (SPEC §8.9; docs/backup.md).

verify: the manifest against manifest.sha256, the metadata file against the
manifest, then every blob the backup's rows reference re-hashed from the target.

prune: keeps the newest N complete backups, removes older ones and stale
incomplete ones (no manifest, no heartbeat for `STALE_AFTER_S`), then the blobs no
remaining backup references. Prune and a backup exclude each other through the
target: prune refuses while a backup's heartbeat is fresh, and writes its own
`prune-in-progress` file first, which a backup checks after writing its own
`in-progress` file (so whichever comes second sees the other).

The heartbeats are judged by clocks, which a stall (SIGSTOP, a paused VM, a listing
slower than a minute) or skewed hosts can fool. So prune also writes a fresh token
to `prune-generation` before each batch of removals and after its last one; a
backup reads it before it lists the target and again after its manifest is
written, and if it changed (a prune removed something meanwhile) the backup is
made incomplete again and fails: it never counts as complete a blob a prune may
have removed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import anyio

from juststorage.application.backup_format import (
    BACKUPS_PREFIX,
    BLOBS_PREFIX,
    BackupCorrupt,
    BackupInfo,
    Manifest,
    blob_key,
    hash_of_blob_key,
    list_backups,
    manifest_hash_key,
    read_manifest,
    read_metadata,
)
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.ports import Clock
from juststorage.domain.errors import NotFound, StorageError
from juststorage.domain.timestamps import parse_utc_text, utc_text

__all__ = [
    "PRUNE_GENERATION",
    "PRUNE_MARKER",
    "STALE_AFTER_S",
    "BackupBusy",
    "PruneReport",
    "VerifyReport",
    "check_no_prune",
    "metadata_damage",
    "prune_generation",
    "prune_backups",
    "referenced_blobs",
    "verify_backup",
]

STALE_AFTER_S = 60.0  # an in-progress (or prune) heartbeat older than this: the run is dead
PRUNE_MARKER = "prune-in-progress"
PRUNE_GENERATION = "prune-generation"  # a new token before and after prune removes
_PRUNE_BEAT_S = 10.0


class BackupBusy(StorageError):
    """A backup or a prune is running on this target (its heartbeat is fresh)."""


@dataclass
class VerifyReport:
    id: str
    blobs_checked: int = 0
    bytes_checked: int = 0
    missing: list[str] = field(default_factory=list)  # hashes
    corrupt: list[str] = field(default_factory=list)  # hashes
    problems: list[str] = field(default_factory=list)  # manifest, metadata

    @property
    def ok(self) -> bool:
        return not (self.missing or self.corrupt or self.problems)


async def referenced_blobs(target: BackupTarget, manifest: Manifest) -> dict[str, int]:
    """hash → size of every blob the backup's rows reference (metadata hash-checked).

    Raises:
        NotFound, BackupCorrupt: the metadata file is missing or does not match.
    """
    sizes: dict[str, int] = {}
    async for item in read_metadata(target, manifest):
        if isinstance(item, tuple) and item[0] == "blobs":
            row = item[1]
            digest, size = row["content_hash"], row["size_bytes"]
            assert isinstance(digest, str) and isinstance(size, int)
            sizes[digest] = size
    return sizes


async def _hash_of(
    target: BackupTarget, digest: str, on_bytes: Callable[[int], None]
) -> tuple[str, int]:
    hasher = hashlib.sha256()
    size = 0
    async for chunk in target.get_stream(blob_key(digest)):
        hasher.update(chunk)
        size += len(chunk)
        on_bytes(len(chunk))
    return hasher.hexdigest(), size


def _ignore(n: int) -> None:
    return None


async def verify_backup(
    target: BackupTarget,
    backup_id: str,
    *,
    parallel: int = 8,
    on_bytes: Callable[[int], None] = _ignore,
    on_total: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Check one backup completely; the report lists what is wrong (nothing: `ok`).
    `on_total(blobs, bytes)` is told what will be re-hashed, `on_bytes` each chunk.

    Raises:
        NotFound: no complete backup has this id.
    """
    report = VerifyReport(backup_id)
    try:
        manifest = await read_manifest(target, backup_id)
    except BackupCorrupt as exc:
        report.problems.append(str(exc))
        return report
    try:
        sizes = await referenced_blobs(target, manifest)
    except (BackupCorrupt, NotFound) as exc:
        report.problems.append(f"metadata: {exc}")
        return report
    if len(sizes) != manifest.blobs:
        report.problems.append(
            f"the metadata names {len(sizes)} blobs, the manifest {manifest.blobs}"
        )
    if on_total is not None:
        on_total(len(sizes), sum(sizes.values()))
    send, receive = anyio.create_memory_object_stream[tuple[str, int]](max(1, parallel))

    async def check(jobs: anyio.abc.ObjectReceiveStream[tuple[str, int]]) -> None:
        async with jobs:
            async for digest, size in jobs:
                try:
                    actual, actual_size = await _hash_of(target, digest, on_bytes)
                except NotFound:
                    report.missing.append(digest)
                    continue
                report.blobs_checked += 1
                report.bytes_checked += actual_size
                if actual != digest or actual_size != size:
                    report.corrupt.append(digest)

    async with anyio.create_task_group() as group:
        for _ in range(max(1, parallel)):
            group.start_soon(check, receive.clone())
        receive.close()
        async with send:
            for digest, size in sorted(sizes.items()):
                await send.send((digest, size))
    report.missing.sort()
    report.corrupt.sort()
    return report


@dataclass
class PruneReport:
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # complete backups removed
    removed_incomplete: list[str] = field(default_factory=list)
    blobs_removed: int = 0
    blobs_kept: int = 0
    dry_run: bool = False


def _fresh(beat: datetime | None, now: datetime) -> bool:
    return beat is not None and now - beat < timedelta(seconds=STALE_AFTER_S)


async def _marker_beat(target: BackupTarget, key: str) -> datetime | None:
    try:
        return parse_utc_text(json.loads(await target.get_bytes(key))["heartbeat"])
    except NotFound:
        return None
    except (KeyError, TypeError, ValueError):
        return None


async def check_no_prune(target: BackupTarget, now: datetime) -> None:
    """Raises BackupBusy if a prune is running on the target (a backup's check)."""
    if _fresh(await _marker_beat(target, PRUNE_MARKER), now):
        raise BackupBusy(f"a prune is running on {target.description}: try again later")


async def prune_generation(target: BackupTarget) -> str:
    """The target's prune generation ("" before any prune removed anything): a backup
    compares it at its start and end."""
    try:
        return (await target.get_bytes(PRUNE_GENERATION)).decode(errors="replace").strip()
    except NotFound:
        return ""


async def _next_generation(target: BackupTarget) -> None:
    await target.put_bytes(PRUNE_GENERATION, secrets.token_hex(16).encode() + b"\n")


async def metadata_damage(target: BackupTarget, infos: list[BackupInfo]) -> dict[str, str]:
    """id → problem for each complete backup whose metadata file is missing or not
    the size its manifest records (one listing of `backups/`: cheap; `verify`
    re-hashes the file and every blob)."""
    sizes: dict[str, int] = {}
    async for page in target.list_sizes(BACKUPS_PREFIX):
        sizes.update(page)
    damage: dict[str, str] = {}
    for info in infos:
        if info.manifest is None:
            continue
        ref = info.manifest.metadata
        size = sizes.get(ref.path)
        if size is None:
            damage[info.id] = f"its metadata file {ref.path} is missing"
        elif size != ref.size:
            damage[info.id] = f"its metadata file has {size} bytes, the manifest says {ref.size}"
    return damage


def _refuse_if_running(infos: list[BackupInfo], target: BackupTarget, now: datetime) -> None:
    running = [i.id for i in infos if not i.complete and _fresh(i.heartbeat, now)]
    if running:
        raise BackupBusy(
            f"backup {running[0]} is in progress on {target.description}"
            " (its heartbeat is fresh): try again when it is done"
        )


async def _keys_of(target: BackupTarget, backup_id: str) -> list[str]:
    return [k async for page in target.list_keys(f"{BACKUPS_PREFIX}{backup_id}/") for k in page]


async def _remove_backup(target: BackupTarget, backup_id: str) -> None:
    # manifest.sha256 first: from then on the backup is incomplete, never half-removed
    # but still taken for complete.
    await target.delete(manifest_hash_key(backup_id))
    for key in await _keys_of(target, backup_id):
        await target.delete(key)


async def _beat(target: BackupTarget, clock: Clock, started_at: datetime) -> None:
    data = {
        "started_at": utc_text(started_at, fraction_digits=6),
        "heartbeat": utc_text(clock.now(), fraction_digits=6),
    }
    await target.put_bytes(PRUNE_MARKER, json.dumps(data).encode() + b"\n")


async def _beating(target: BackupTarget, clock: Clock, started_at: datetime) -> None:
    while True:
        await anyio.sleep(_PRUNE_BEAT_S)
        await _beat(target, clock, started_at)


async def prune_backups(
    target: BackupTarget, clock: Clock, *, keep: int, dry_run: bool = False
) -> PruneReport:
    """Keep the newest `keep` complete backups; remove the rest, the stale incomplete
    ones, and the blobs no kept backup references.

    Raises:
        BackupBusy: a backup is in progress on the target (or another prune).
        BackupCorrupt: a kept backup's metadata cannot be read (no blob is removed
            then: which ones it needs is unknown).
    """
    if keep < 1:
        raise ValueError("keep at least one backup")
    report = PruneReport(dry_run=dry_run)
    now = clock.now()
    infos = await list_backups(target)
    _refuse_if_running(infos, target, now)
    await check_no_prune(target, now)
    if not dry_run:
        await _beat(target, clock, now)
        # A backup that started before our marker was written shows its heartbeat now.
        infos = await list_backups(target)
        _refuse_if_running(infos, target, clock.now())
    try:
        async with anyio.create_task_group() as group:
            if not dry_run:
                group.start_soon(_beating, target, clock, now)
            await _prune(target, infos, keep, dry_run, report)
            if not dry_run:
                await target.clean_temp(STALE_AFTER_S)
                await _next_generation(target)  # after the last removal
            group.cancel_scope.cancel()
    finally:
        if not dry_run:
            await target.delete(PRUNE_MARKER)
    return report


async def _prune(
    target: BackupTarget, infos: list[BackupInfo], keep: int, dry_run: bool, report: PruneReport
) -> None:
    complete = [i for i in infos if i.complete]
    kept = complete[-keep:]
    report.kept = [i.id for i in kept]
    for info in infos:
        if info in kept:
            continue
        (report.removed if info.complete else report.removed_incomplete).append(info.id)
        if not dry_run:
            await _next_generation(target)
            await _remove_backup(target, info.id)
    needed: set[str] = set()
    for info in kept:
        assert info.manifest is not None
        needed.update(await referenced_blobs(target, info.manifest))
    async for page in target.list_keys(BLOBS_PREFIX):
        doomed: list[str] = []
        for key in page:
            digest = hash_of_blob_key(key)
            if digest is None:
                continue
            if digest in needed:
                report.blobs_kept += 1
                continue
            report.blobs_removed += 1
            doomed.append(key)
        if doomed and not dry_run:
            await _next_generation(target)  # before each batch: a stalled prune too
            for key in doomed:
                await target.delete(key)
