"""`juststorage migrate-blobs`: move a store's blobs from its directories to S3, or
between the metadata database and the class roots (inline blobs, SPEC §8.1)."""

from __future__ import annotations

import asyncio
import sys
import time

import click

from juststorage.application.migrate_blobs import MigrationReport, migrate_blobs
from juststorage.application.migrate_inline import migrate_inline
from juststorage.bootstrap import build, build_blob_store, build_s3_blob_store
from juststorage.cli.errors import CommandFailed
from juststorage.cli.runtime import require_store, settings_of
from juststorage.config import Settings, SettingsError
from juststorage.domain.model import StorageClass


@click.command("migrate-blobs")
@click.option("--to-hot", metavar="s3://BUCKET/PREFIX", help="Target root of the hot class.")
@click.option("--to-cold", metavar="s3://BUCKET/PREFIX", help="Target root of the cold class.")
@click.option("--no-verify", is_flag=True, help="Do not read each copy back to re-hash it.")
@click.option(
    "--inline",
    is_flag=True,
    help="Instead: move blobs into or out of the metadata database to follow"
    " JUSTSTORAGE_INLINE_MAX_BYTES (both classes, their current roots).",
)
@click.pass_context
def migrate_blobs_command(
    ctx: click.Context, to_hot: str | None, to_cold: str | None, no_verify: bool, inline: bool
) -> None:
    """Copy blobs from the directory roots (the current settings) to S3 roots,
    verified by SHA-256; safe to run while the server runs, resumable.

    Run it until it reports 0 remaining, stop the server, run it once more, then
    start the server with JUSTSTORAGE_<CLASS>_ROOT set to the s3:// roots.
    With --inline, after changing JUSTSTORAGE_INLINE_MAX_BYTES: inline blobs over
    it move to their class's root, blobs of at most it move into the database.
    Exit 1 while blobs remain or a source file is missing or damaged.
    """
    settings = settings_of(ctx)
    targets = {StorageClass.HOT: to_hot, StorageClass.COLD: to_cold}
    chosen = {c: t for c, t in targets.items() if t}
    if inline and chosen:
        raise click.UsageError("--inline moves blobs within the current roots: no --to-*")
    if not chosen and not inline:
        raise click.UsageError("name at least one target: --to-hot or --to-cold (or --inline)")
    if inline:
        reports = asyncio.run(_migrate_inline(settings))
    else:
        reports = asyncio.run(_migrate(settings, chosen, verify=not no_verify))
    incomplete = False
    for storage_class, report in reports.items():
        for problem in report.problems:
            click.echo(f"problem {problem}")
        click.echo(
            f"migrate-blobs {storage_class.value}: {report.copied} blobs"
            f" ({report.bytes_copied} bytes) copied, {report.skipped} skipped,"
            f" {len(report.problems)} problems, {report.remaining} remaining"
        )
        incomplete = incomplete or not report.complete
    if incomplete:
        raise CommandFailed("not complete: run it again (see above)")


async def _migrate(
    settings: Settings, targets: dict[StorageClass, str], *, verify: bool
) -> dict[StorageClass, MigrationReport]:
    if any(settings.root_url(c.value).startswith("s3://") for c in targets):
        raise SettingsError("migrate-blobs copies from directory roots: the source is s3://")
    services = build(settings, long_statements=True)
    target = build_s3_blob_store(settings, targets)
    reports: dict[StorageClass, MigrationReport] = {}
    try:
        await require_store(services)
        await services.metadata.migrate()
        for storage_class in targets:
            started = time.monotonic()

            def progress(blobs: int, size: int, started: float = started) -> None:
                rate = size / max(time.monotonic() - started, 1e-6) / 1e6
                click.echo(f"\r{blobs} blobs, {size} bytes, {rate:.0f} MB/s", nl=False, err=True)

            reports[storage_class] = await migrate_blobs(
                services.metadata,
                services.blobs,
                target,
                storage_class,
                verify_copy=verify,
                progress=progress if sys.stderr.isatty() else None,
            )
    finally:
        await services.metadata.close()
    return reports


async def _migrate_inline(settings: Settings) -> dict[StorageClass, MigrationReport]:
    services = build(settings, long_statements=True)  # scans of `blobs` may be long
    larger = build_blob_store(settings)  # the class roots, without the inline store
    reports: dict[StorageClass, MigrationReport] = {}
    try:
        await require_store(services)
        await services.metadata.migrate()
        await larger.prepare()
        for storage_class in StorageClass:
            reports[storage_class] = await migrate_inline(
                services.metadata,
                larger,
                storage_class,
                settings.inline_max_bytes,
                owner=services.liveness.identity(),
                clock=services.clock,
            )
    finally:
        await services.metadata.close()
    return reports
