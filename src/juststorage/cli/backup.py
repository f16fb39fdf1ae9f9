"""`juststorage backup …` (SPEC §8.9; docs/backup.md): create, list, verify, prune.

`backup TARGET` is `backup create TARGET`: the group falls back to `create` when
its first argument is not one of its subcommands (a target named like one, e.g. a
directory called `list`, needs the explicit `backup create list`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from juststorage.application.backup import (
    BackupFailed,
    DatabaseHold,
    RepairReport,
    create_backup,
    repair_blobs,
)
from juststorage.application.backup_format import (
    BackupCorrupt,
    BackupInfo,
    Manifest,
    list_backups,
    read_manifest,
)
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.backup_upkeep import (
    STALE_AFTER_S,
    BackupBusy,
    PruneReport,
    VerifyReport,
    metadata_damage,
    prune_backups,
    verify_backup,
)
from juststorage.bootstrap import (
    Services,
    SystemClock,
    build_backup_target,
    build_metadata_dumper,
)
from juststorage.cli.errors import CommandFailed
from juststorage.cli.progress import Progress, human_size
from juststorage.cli.runtime import run_with_services, settings_of
from juststorage.domain.errors import NotFound
from juststorage.domain.timestamps import utc_text

T = TypeVar("T")

READ_LINE_S = 2.0
_TARGET_HELP = "TARGET is a directory (created if missing) or s3://bucket/prefix."


class _BackupGroup(click.Group):
    """A group whose first argument, when it names no subcommand, is `create`'s."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["create", *args]
        return super().parse_args(ctx, args)


@click.group("backup", cls=_BackupGroup)
def backup() -> None:
    """Back up the store: `juststorage backup TARGET` (= `backup create TARGET`).

    A consistent snapshot of the metadata and every blob it references, taken
    beside a running server; blobs already in TARGET are not copied again.
    TARGET is a directory (created if missing) or s3://bucket/prefix (with the
    JUSTSTORAGE_BACKUP_AWS_* settings, each falling back to its AWS_* one). See
    docs/backup.md.
    """


def _with_target(
    ctx: click.Context, target: str, work: Callable[[BackupTarget], Awaitable[T]]
) -> T:
    """Run `work` on the target, without opening the store (list, verify, prune)."""
    settings = settings_of(ctx)

    async def main() -> T:
        made = build_backup_target(settings, target)
        try:
            return await work(made)
        finally:
            await made.close()

    return _translated(lambda: asyncio.run(main()))


def _translated(call: Callable[[], T]) -> T:
    """A backup's own failures are exit status 1 with their message."""
    try:
        return call()
    except (BackupFailed, BackupCorrupt, BackupBusy) as exc:
        raise CommandFailed(exc.message) from None


class _CopyProgress:
    """The BackupObserver of the CLI: the progress line (bytes copied / to copy, rate,
    ETA) on stderr, once the snapshot tells how much is to be copied."""

    def __init__(self, enabled: bool | None) -> None:
        self._enabled = enabled
        self._progress: Progress | None = None
        self._early = 0
        self._shown_read = 0.0

    def read(self, rows: int) -> None:
        """While the snapshot is read: a line at most every READ_LINE_S (shown as the
        progress line is: on a terminal, or with --progress)."""
        show = self._enabled if self._enabled is not None else sys.stderr.isatty()
        now = time.monotonic()
        if show and now - self._shown_read >= READ_LINE_S:
            self._shown_read = now
            click.echo(f"backup: reading the snapshot: {rows} rows", err=True)

    def planned(self, blobs: int, size: int) -> None:
        click.echo(f"backup: {blobs} blobs ({human_size(size)}) to copy", err=True)
        self._progress = Progress(size, "backup", self._enabled, min_bytes=1)
        if self._early:
            self._progress(self._early)

    def copied(self, size: int) -> None:
        if self._progress is None:
            self._early += size  # inline blobs, copied while the snapshot is read
        else:
            self._progress(size)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()


async def _create(services: Services, target: str, parallel: int, progress: _CopyProgress) -> Any:
    made = build_backup_target(services.settings, target)
    try:
        hold = DatabaseHold(services.metadata, services.clock, services.liveness.identity())
        return await create_backup(
            target=made,
            dumper=build_metadata_dumper(services.settings, services.clock),
            blobs=services.blobs,
            clock=services.clock,
            parallel=parallel,
            observer=progress,
            hold=hold,
        )
    finally:
        await made.close()


_PARALLEL = click.option(
    "--parallel",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Blobs copied (or re-hashed) at a time.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")


@backup.command("create")
@click.argument("target")
@_PARALLEL
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show the progress line on stderr (default: when stderr is a terminal).",
)
@_JSON
@click.pass_context
def create(
    ctx: click.Context, target: str, parallel: int, progress: bool | None, as_json: bool
) -> None:
    """Take one backup of the store into TARGET.

    TARGET is a directory (created if missing) or s3://bucket/prefix. Prints a
    summary (id, objects, blobs copied and already present, bytes copied,
    seconds). A killed run leaves an incomplete backup: run again (a new snapshot;
    blobs already copied are not copied again), and `backup prune` removes it.
    Exit 1 if the backup failed (e.g. a source blob does not match its hash: run
    `juststorage fsck`).
    """
    observer = _CopyProgress(progress)
    try:
        manifest, seconds = _translated(
            lambda: run_with_services(ctx, lambda s: _create(s, target, parallel, observer))
        )
    finally:
        observer.close()
    summary = {
        "id": manifest.id,
        "snapshot_at": utc_text(manifest.snapshot_at, fraction_digits=6),
        "objects": manifest.objects,
        "bytes": manifest.object_bytes,
        "blobs": manifest.blobs,
        "blobs_copied": manifest.copied_blobs,
        "blobs_present": manifest.skipped_blobs,
        "bytes_copied": manifest.copied_bytes,
        "seconds": round(seconds, 3),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"backup {manifest.id}: {manifest.objects} objects ({human_size(manifest.object_bytes)}),"
        f" {manifest.blobs} blobs: {manifest.copied_blobs} copied"
        f" ({human_size(manifest.copied_bytes)}), {manifest.skipped_blobs} already present;"
        f" {seconds:.1f} s"
    )


def _state(info: BackupInfo, damage: dict[str, str] | None = None) -> str:
    if info.complete:
        return "damaged" if damage and info.id in damage else "complete"
    beat = info.heartbeat
    if beat is not None and (SystemClock().now() - beat).total_seconds() < STALE_AFTER_S:
        return "in-progress"
    return "incomplete"


def _info_json(info: BackupInfo, damage: dict[str, str]) -> dict[str, Any]:
    m: Manifest | None = info.manifest
    return {
        "id": info.id,
        "state": _state(info, damage),
        "started_at": utc_text(m.started_at, fraction_digits=6) if m else None,
        "snapshot_at": utc_text(m.snapshot_at, fraction_digits=6) if m else None,
        "finished_at": utc_text(m.finished_at, fraction_digits=6) if m else None,
        "objects": m.objects if m else None,
        "bytes": m.object_bytes if m else None,
        "blobs": m.blobs if m else None,
        "heartbeat": utc_text(info.heartbeat, fraction_digits=6) if info.heartbeat else None,
        "problem": damage.get(info.id, info.problem),
    }


@backup.command("list")
@click.argument("target")
@_JSON
@click.pass_context
def list_command(ctx: click.Context, target: str, as_json: bool) -> None:
    """List the backups in TARGET, oldest first: complete, damaged (a complete one
    whose metadata file is missing or of the wrong size), in-progress (a fresh
    heartbeat) or incomplete (killed or failed: `backup prune` removes it). Only
    `backup verify` re-hashes the metadata and the blobs."""

    async def work(made: BackupTarget) -> tuple[list[BackupInfo], dict[str, str]]:
        infos = await list_backups(made)
        return infos, await metadata_damage(made, infos)

    infos, damage = _with_target(ctx, target, work)
    if as_json:
        click.echo(json.dumps([_info_json(i, damage) for i in infos]))
        return
    for info in infos:
        m = info.manifest
        if m is not None and info.id in damage:
            click.echo(f"{info.id}  damaged      {damage[info.id]}")
        elif m is not None:
            click.echo(
                f"{info.id}  complete     {m.objects} objects, {human_size(m.object_bytes)},"
                f" {m.blobs} blobs; snapshot {utc_text(m.snapshot_at)}"
            )
        else:
            click.echo(f"{info.id}  {_state(info):<11}  {info.problem}")
    if not infos:
        click.echo(f"no backups in {target}", err=True)


async def _newest_complete(target: BackupTarget) -> str:
    complete = [i.id for i in await list_backups(target) if i.complete]
    if not complete:
        raise NotFound(f"no complete backup in {target.description}")
    return complete[-1]


@backup.command("verify")
@click.argument("target")
@click.option("--id", "backup_id", help="The backup to verify (default: the newest complete).")
@click.option(
    "--repair",
    is_flag=True,
    help="Copy missing or corrupt blobs again from the live store (needs the store's"
    " settings), where the store still holds them.",
)
@_PARALLEL
@_JSON
@click.pass_context
def verify(
    ctx: click.Context,
    target: str,
    backup_id: str | None,
    repair: bool,
    parallel: int,
    as_json: bool,
) -> None:
    """Check one backup: the manifest's hash, the metadata's hash, and every blob the
    backup references re-hashed. Exit 0 only if all is good (with --repair: once
    every damaged blob was copied again); 1 listing what is missing or corrupt; 3
    if there is no such (complete) backup."""
    shown: list[Progress] = []

    def total(blobs: int, size: int) -> None:
        shown.append(Progress(size, f"verify {blobs} blobs", None, min_bytes=1))

    def advance(n: int) -> None:
        if shown:
            shown[0](n)

    async def work(made: BackupTarget) -> VerifyReport:
        chosen = backup_id or await _newest_complete(made)
        return await verify_backup(
            made, chosen, parallel=parallel, on_bytes=advance, on_total=total
        )

    fixed = RepairReport()

    async def work_and_repair(services: Services) -> VerifyReport:
        made = build_backup_target(services.settings, target)
        try:
            report = await work(made)
            damaged = report.missing + report.corrupt
            if damaged and not report.problems:
                for bar in shown:
                    bar.close()
                click.echo(f"repair: {len(damaged)} blobs to copy again", err=True)
                repaired = await repair_blobs(
                    target=made,
                    manifest=await read_manifest(made, report.id),
                    hashes=damaged,
                    dumper=build_metadata_dumper(services.settings, services.clock),
                    blobs=services.blobs,
                )
                fixed.repaired[:] = repaired.repaired
                fixed.unrepairable.update(repaired.unrepairable)
            return report
        finally:
            await made.close()

    try:
        if repair:
            report = _translated(lambda: run_with_services(ctx, work_and_repair))
        else:
            report = _with_target(ctx, target, work)
    finally:
        for bar in shown:
            bar.close()
    ok = report.ok or (
        not report.problems
        and not fixed.unrepairable
        and set(fixed.repaired) == set(report.missing + report.corrupt)
    )
    if as_json:
        out: dict[str, Any] = {
            "id": report.id,
            "ok": ok,
            "blobs_checked": report.blobs_checked,
            "bytes_checked": report.bytes_checked,
            "missing": report.missing,
            "corrupt": report.corrupt,
            "problems": report.problems,
        }
        if repair:
            out["repaired"] = fixed.repaired
            out["unrepairable"] = fixed.unrepairable
        click.echo(json.dumps(out))
    else:
        for problem in report.problems:
            click.echo(f"problem: {problem}")
        for digest in report.missing:
            click.echo(f"missing blob sha256:{digest}")
        for digest in report.corrupt:
            click.echo(f"corrupt blob sha256:{digest}")
        click.echo(
            f"verify {report.id}: {report.blobs_checked} blobs,"
            f" {human_size(report.bytes_checked)} checked; {len(report.missing)} missing,"
            f" {len(report.corrupt)} corrupt, {len(report.problems)} other problems"
        )
        for digest in fixed.repaired:
            click.echo(f"repaired blob sha256:{digest}")
        for digest, why in sorted(fixed.unrepairable.items()):
            click.echo(f"unrepairable blob sha256:{digest}: {why}")
    if not ok:
        raise CommandFailed(f"backup {report.id} is damaged")


@backup.command("prune")
@click.argument("target")
@click.option("--keep", type=click.IntRange(min=1), required=True, help="Complete backups kept.")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@_JSON
@click.pass_context
def prune(ctx: click.Context, target: str, keep: int, dry_run: bool, as_json: bool) -> None:
    """Keep the newest N complete backups in TARGET; remove older ones and stale
    incomplete ones, then the blobs no remaining backup references. Refuses (exit 1)
    while a backup is in progress on TARGET (its heartbeat is fresh)."""
    clock = SystemClock()
    report: PruneReport = _with_target(
        ctx, target, lambda made: prune_backups(made, clock, keep=keep, dry_run=dry_run)
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "dry_run": report.dry_run,
                    "kept": report.kept,
                    "removed": report.removed,
                    "removed_incomplete": report.removed_incomplete,
                    "blobs_removed": report.blobs_removed,
                    "blobs_kept": report.blobs_kept,
                }
            )
        )
        return
    verb = "would remove" if dry_run else "removed"
    for backup_id in report.removed:
        click.echo(f"{verb} backup {backup_id}")
    for backup_id in report.removed_incomplete:
        click.echo(f"{verb} incomplete backup {backup_id}")
    click.echo(
        f"prune: kept {len(report.kept)} backups; {verb} {len(report.removed)} backups,"
        f" {len(report.removed_incomplete)} incomplete, {report.blobs_removed} blobs"
        f" ({report.blobs_kept} blobs kept)"
    )
