"""`juststorage restore TARGET` (SPEC §8.9; docs/backup.md): one complete backup
written into an empty deployment, on SQLite or PostgreSQL, with this deployment's
blob stores and inline threshold."""

from __future__ import annotations

import asyncio
import json

import click

from juststorage.application.backup import DatabaseHold
from juststorage.application.backup_format import BackupCorrupt, Manifest
from juststorage.application.restore import RestoreFailed, RestoreReport, restore_backup
from juststorage.bootstrap import (
    build,
    build_backup_target,
    build_blob_store,
    build_metadata_loader,
)
from juststorage.cli.errors import CommandFailed
from juststorage.cli.progress import Progress, human_size
from juststorage.cli.runtime import settings_of
from juststorage.config import Settings


class _CopyProgress:
    """The progress line of the blobs being copied (bytes, rate, ETA) on stderr."""

    def __init__(self, enabled: bool | None) -> None:
        self._enabled = enabled
        self._progress: Progress | None = None

    def planned(self, blobs: int, size: int) -> None:
        click.echo(f"restore: {blobs} blobs ({human_size(size)}) to copy", err=True)
        self._progress = Progress(size, "restore", self._enabled, min_bytes=1)

    def copied(self, size: int) -> None:
        if self._progress is not None:
            self._progress(size)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()


def _checked(manifest: Manifest) -> None:
    click.echo(
        f"restore: backup {manifest.id} ({manifest.objects} objects,"
        f" {human_size(manifest.object_bytes)}) checked",
        err=True,
    )


def master_key_warning(settings: Settings, api_keys: int) -> str | None:
    """The line that tells an operator to carry the S3 master key over: a backup does
    not hold it (it would let whoever reads the backup compute every key's S3
    secret), and the restored keys' S3 secrets derive from it. None without keys."""
    if api_keys == 0:
        return None
    if settings.s3_master_key is None and not settings.s3_master_key_path.exists():
        return (
            f"restore: warning: no S3 master key here ({settings.s3_master_key_path}"
            f" missing, JUSTSTORAGE_S3_MASTER_KEY unset): the {api_keys} restored API keys"
            " get new S3 secrets unless the source's master key is copied there or set"
            " before `serve` (a backup does not hold it; docs/backup.md)"
        )
    where = (
        "JUSTSTORAGE_S3_MASTER_KEY"
        if settings.s3_master_key is not None
        else str(settings.s3_master_key_path)
    )
    return (
        f"restore: warning: the {api_keys} restored API keys keep their S3 secrets only if"
        f" this deployment's S3 master key ({where}) is the source's (a backup does not"
        " hold it; docs/backup.md)"
    )


@click.command()
@click.argument("target")
@click.option(
    "--id",
    "backup_id",
    help="The backup to restore (default: the newest finished; refused if damaged).",
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Blobs copied at a time.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show the progress line on stderr (default: when stderr is a terminal).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.pass_context
def restore(
    ctx: click.Context,
    target: str,
    backup_id: str | None,
    parallel: int,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Restore a backup from TARGET into this EMPTY deployment.

    TARGET is a directory or s3://bucket/prefix, as `backup` wrote it. The
    deployment is the one the settings name (DATABASE_URL or the data directory,
    the storage roots, JUSTSTORAGE_INLINE_MAX_BYTES), on SQLite or PostgreSQL,
    whichever the backup was taken from. The database must hold no object, blob or
    API key (a schema made by `migrate` is fine; a new one is created); otherwise
    nothing is changed and the exit status is 1. The manifest and metadata are
    checked against their hashes before anything is written, and every blob while
    it is copied; the rows are written in one transaction at the end, so a
    failed or killed restore commits nothing: run it again. A backup does not hold
    the S3 master key: copy `s3-master.key` from the source's data directory (or set
    JUSTSTORAGE_S3_MASTER_KEY) before `serve`, or every key's S3 secret changes. See
    docs/backup.md.
    """
    settings = settings_of(ctx)
    observer = _CopyProgress(progress)

    async def main() -> RestoreReport:
        services = build(settings, long_statements=True)
        made = build_backup_target(settings, target)
        try:
            return await restore_backup(
                target=made,
                loader=build_metadata_loader(settings),
                metadata=services.metadata,
                blobs=build_blob_store(settings),
                inline_max_bytes=settings.inline_max_bytes,
                owner=services.liveness.identity(),
                backup_id=backup_id,
                parallel=parallel,
                observer=observer,
                hold=DatabaseHold(services.metadata, services.clock, services.liveness.identity()),
                on_checked=_checked,
            )
        finally:
            await made.close()
            await services.metadata.close()

    try:
        report = asyncio.run(main())
    except (RestoreFailed, BackupCorrupt) as exc:
        raise CommandFailed(exc.message) from None
    finally:
        observer.close()
    warning = master_key_warning(settings, report.api_keys)
    if warning is not None:
        click.echo(warning, err=True)
    summary = {
        "id": report.id,
        "source_backend": report.backend,
        "objects": report.objects,
        "api_keys": report.api_keys,
        "blobs": report.blobs,
        "blob_bytes": report.blob_bytes,
        "blobs_stored": report.stored_blobs,
        "blobs_present": report.present_blobs,
        "blobs_inline": report.inline_blobs,
        "seconds": round(report.seconds, 3),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(
        f"restore {report.id}: {report.objects} objects, {report.api_keys} API keys,"
        f" {report.blobs} blobs ({human_size(report.blob_bytes)}): {report.stored_blobs}"
        f" stored, {report.present_blobs} already present, {report.inline_blobs} inline;"
        f" {report.seconds:.1f} s"
    )
