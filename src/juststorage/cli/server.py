"""Commands that run where the store is: serve, migrate, gc, fsck."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click

from juststorage import __version__
from juststorage.application.fsck import FsckReport
from juststorage.application.fsck_refill import Refill
from juststorage.bootstrap import (
    Services,
    build,
    build_backup_target,
    share_metrics_between_processes,
)
from juststorage.cli.errors import BadUsage, CommandFailed
from juststorage.cli.granian_main import exec_server
from juststorage.cli.listener import (
    ensure_port_free,
    listening_of,
    metrics_exposure_warning,
)
from juststorage.cli.runtime import run_with_services, settings_of
from juststorage.config import parse_host_port
from juststorage.logs import configure_logging


@click.command()
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: 8080].")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Server processes.")
@click.option(
    "--http2",
    is_flag=True,
    default=None,
    help="Speak HTTP/2 too (cleartext prior knowledge, or ALPN with TLS) [default: HTTP/1.1 only].",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM certificate chain: serve HTTPS (with --tls-key).",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="PEM private key of --tls-cert.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    workers: int | None,
    http2: bool | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> None:
    """Run the HTTP service (granian, ASGI)."""
    settings = settings_of(ctx)
    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if http2 is not None:
        settings = settings.model_copy(update={"http2": http2})
    if tls_cert is not None:
        settings = settings.model_copy(update={"tls_cert": tls_cert, "tls_key": tls_key})
    address = host or settings.host
    listen_port = settings.port if port is None else port
    listening = listening_of(settings)  # TLS files checked here
    ensure_port_free(address, listen_port)
    if settings.s3_addr is not None:
        # The workers bind it with SO_REUSEPORT, which would share it with a stranger.
        s3_host, s3_port = parse_host_port(settings.s3_addr)
        ensure_port_free(s3_host, s3_port, "JUSTSTORAGE_S3_ADDR")
    config: Path | None = ctx.find_root().params.get("config")
    if config is not None:
        # Worker processes read their settings from the environment.
        os.environ["JUSTSTORAGE_CONFIG"] = str(config.resolve())
    # One metrics directory for all workers, so /metrics answers the sum of all of them.
    own_metrics_dir = settings.metrics_multiproc_dir is None
    metrics_dir = settings.metrics_multiproc_dir or Path(
        tempfile.mkdtemp(prefix="juststorage-metrics-")
    )
    share_metrics_between_processes(metrics_dir)
    settings = settings.model_copy(update={"metrics_multiproc_dir": metrics_dir})
    try:
        build(settings)  # validate every setting before binding the port
        configure_logging(settings.log_level, settings.log_format)
        logging.getLogger("juststorage").info(
            "juststorage %s serving on %s://%s:%s (%s; data: %s)",
            __version__,
            "https" if settings.tls_cert else "http",
            address,
            listen_port,
            "HTTP/1.1 and HTTP/2" if settings.http2 else "HTTP/1.1",
            settings.data_dir,
        )
        if settings.s3_addr is not None:
            logging.getLogger("juststorage").info(
                "S3 gateway on %s://%s", "https" if settings.tls_cert else "http", settings.s3_addr
            )
        warning = metrics_exposure_warning(address, settings.metrics_addr)
        if warning is not None:
            logging.getLogger("juststorage").warning(warning)
        # This process has imported the whole application to check the settings;
        # the server's main process starts afresh without it (`granian_main`).
        exec_server(
            {
                "address": address,
                "port": listen_port,
                "workers": workers or settings.workers,
                "log_level": settings.log_level,
                "log_format": settings.log_format,
                "listening": listening,
                "remove_on_exit": str(metrics_dir) if own_metrics_dir else None,
            }
        )
    except BaseException:
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        raise


@click.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema up to date."""
    applied = run_with_services(ctx, lambda s: s.metadata.migrate(), prepare=False, create=True)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo("schema is up to date" if not applied else f"{len(applied)} migration(s) applied")


@click.command()
@click.pass_context
def gc(ctx: click.Context) -> None:
    """Run one garbage-collection pass and print what it removed."""
    from juststorage.worker.gc import run_gc_pass

    report = run_with_services(ctx, run_gc_pass)
    if not report.ran:
        raise CommandFailed("another process is running a GC pass; try again later")
    for content_hash in report.removed_hashes:
        click.echo(f"removed blob sha256:{content_hash}")
    click.echo(
        f"gc: {report.expired_uploads} stale uploads, {report.temp_files_removed} temp files,"
        f" {report.deletes_finished} deletes finished, {report.blobs_removed} unreferenced"
        f" blobs, {report.orphan_blobs_removed} orphan blob files,"
        f" {report.deleted_rows_purged} deleted rows purged,"
        f" {report.sessions_expired} upload sessions expired,"
        f" {report.part_files_removed} part files removed"
    )


@click.command()
@click.option("--repair", is_flag=True, help="Fix what needs no guessing (recount, orphans).")
@click.option("--no-verify", is_flag=True, help="Check that files exist without re-hashing them.")
@click.option(
    "--from-backup",
    "from_backup",
    metavar="TARGET",
    help="With --repair: put missing and corrupt blobs back from this backup target"
    " (a directory or s3://bucket/prefix).",
)
@click.pass_context
def fsck(ctx: click.Context, repair: bool, no_verify: bool, from_backup: str | None) -> None:
    """Check the database against the blob files; exit 1 if damage remains.

    With --repair --from-backup TARGET, blobs found missing or corrupt (files, S3
    objects, inline rows) are fetched from TARGET's copy (any backup in it), checked
    against their hash and written back at their address; what TARGET does not hold
    stays listed as damage.
    """
    if from_backup is not None and not repair:
        raise BadUsage("--from-backup needs --repair")
    report = run_with_services(
        ctx, lambda s: _check_with_progress(s, repair, not no_verify, from_backup)
    )
    for problem in report.problems:
        click.echo(problem.describe())
    unrepaired = sum(1 for p in report.problems if not p.repaired)
    click.echo(
        f"fsck: {report.blobs_checked} blobs, {report.bytes_checked} bytes checked;"
        f" {len(report.problems)} problems, {unrepaired} unrepaired"
    )
    if report.damaged:
        raise CommandFailed("damage found" + ("" if repair else " (try --repair)"))


async def _check_with_progress(
    services: Services, repair: bool, verify: bool, from_backup: str | None = None
) -> FsckReport:
    """`check_store` with a progress bar (bytes, blobs and rate) on stderr."""
    refill = None
    if from_backup is not None:
        refill = Refill(build_backup_target(services.settings, from_backup))
    try:
        return await _checked(services, repair, verify, refill)
    finally:
        if refill is not None:
            await refill.target.close()


async def _checked(
    services: Services, repair: bool, verify: bool, refill: Refill | None
) -> FsckReport:
    from juststorage.application.fsck import check_store

    async with services.metadata.snapshot() as view:
        total_blobs, total_bytes = await view.blobs.totals()
    with click.progressbar(
        length=max(total_bytes, 1),
        label=f"fsck {total_blobs} blobs",
        file=sys.stderr,
        show_pos=False,
        show_percent=True,
    ) as bar:
        started = time.monotonic()
        last = [0]

        def progress(blobs_done: int, bytes_done: int) -> None:
            bar.update(bytes_done - last[0])
            last[0] = bytes_done
            elapsed = max(time.monotonic() - started, 1e-6)
            bar.label = (
                f"fsck {blobs_done}/{total_blobs} blobs {bytes_done / elapsed / 1e6:.0f} MB/s"
            )

        return await check_store(
            services.metadata,
            services.blobs,
            repair=repair,
            verify_hashes=verify,
            progress=progress,
            parts=services.part_stores,
            liveness=services.liveness,
            refill=refill,
        )
