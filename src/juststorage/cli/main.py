"""`juststorage`: one click group; each command builds Services and calls one use case."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from click._termui_impl import ProgressBar

from juststorage import __version__
from juststorage.adapters.auth.jwt import issue_token
from juststorage.adapters.metrics import enable_multiprocess_metrics
from juststorage.application.apikeys import create_api_key, list_api_keys, revoke_api_key
from juststorage.application.fsck import FsckReport
from juststorage.application.records import ApiKeyRecord
from juststorage.bootstrap import Services, build
from juststorage.cli.migrate import register as register_migrate_command
from juststorage.cli.objects import register as register_object_commands
from juststorage.config import Settings, SettingsError, load_settings
from juststorage.deploy.generate import PLATFORMS, generate, write_files
from juststorage.deploy.options import DeployError, DeployOptions
from juststorage.domain.errors import StorageError
from juststorage.logs import configure_logging, server_log_config

T = TypeVar("T")


class CommandFailed(click.ClickException):
    """A command could not do what it was asked; exit status 1."""

    exit_code = 1


class BadSettings(click.ClickException):
    """The configuration cannot be used; exit status 2, like a usage error."""

    exit_code = 2


@contextmanager
def handle_errors() -> Iterator[None]:
    """The one place that turns errors into messages and exit codes (no tracebacks)."""
    try:
        yield
    except SettingsError as exc:
        raise BadSettings(str(exc)) from None
    except StorageError as exc:
        raise CommandFailed(f"{exc.code}: {exc.message}") from None


def _settings(ctx: click.Context) -> Settings:
    config: Path | None = ctx.find_root().params.get("config")
    with handle_errors():
        return load_settings(config_file=config)


def _run(ctx: click.Context, work: Callable[[Services], Awaitable[T]]) -> T:
    """Build Services, bring the schema up to date, run one coroutine, close."""
    settings = _settings(ctx)

    async def main() -> T:
        services = build(settings)
        try:
            await services.metadata.migrate()
            await services.blobs.prepare()
            return await work(services)
        finally:
            await services.metadata.close()

    with handle_errors():
        return asyncio.run(main())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="juststorage")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML settings file (environment variables win over it).",
)
def cli(config: Path | None) -> None:
    """JustStorage: a content-addressed object store with a small HTTP API."""


@cli.command()
@click.option("--host", default=None, help="Address to listen on [default: 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port to listen on [default: 8080].")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Server processes.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HTTP service (granian, ASGI)."""
    from granian import Granian
    from granian.constants import Interfaces, Loops

    settings = _settings(ctx)
    config: Path | None = ctx.find_root().params.get("config")
    if config is not None:
        # Worker processes read their settings from the environment.
        os.environ["JUSTSTORAGE_CONFIG"] = str(config.resolve())
    # One metrics directory for all workers, so /metrics answers the sum of all of them.
    own_metrics_dir = settings.metrics_multiproc_dir is None
    metrics_dir = settings.metrics_multiproc_dir or Path(
        tempfile.mkdtemp(prefix="juststorage-metrics-")
    )
    enable_multiprocess_metrics(metrics_dir)
    settings = settings.model_copy(update={"metrics_multiproc_dir": metrics_dir})
    with handle_errors():
        build(settings)  # validate every setting before binding the port
    server = Granian(
        "juststorage.api.asgi:app_from_environment",
        factory=True,
        interface=Interfaces.ASGI,
        address=host or settings.host,
        port=settings.port if port is None else port,
        workers=workers or settings.workers,
        loop=Loops.uvloop,
        log_level=settings.log_level,  # type: ignore[arg-type]
        log_dictconfig=server_log_config(settings.log_format),
        log_access=False,
        respawn_failed_workers=True,
    )
    configure_logging(settings.log_level, settings.log_format)
    logging.getLogger("juststorage").info(
        "juststorage %s serving on http://%s:%s (data: %s)",
        __version__,
        host or settings.host,
        settings.port if port is None else port,
        settings.data_dir,
    )
    try:
        server.serve()
    finally:
        if own_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Bring the database schema up to date."""
    settings = _settings(ctx)

    async def work() -> list[str]:
        services = build(settings)
        try:
            return await services.metadata.migrate()
        finally:
            await services.metadata.close()

    with handle_errors():
        applied = asyncio.run(work())
    for name in applied:
        click.echo(f"applied {name}")
    click.echo("schema is up to date" if not applied else f"{len(applied)} migration(s) applied")


@cli.command()
@click.pass_context
def gc(ctx: click.Context) -> None:
    """Run one garbage-collection pass and print what it removed."""
    from juststorage.worker.gc import run_gc_pass

    report = _run(ctx, run_gc_pass)
    if not report.ran:
        raise CommandFailed("another process is running a GC pass; try again later")
    for content_hash in report.removed_hashes:
        click.echo(f"removed blob sha256:{content_hash}")
    click.echo(
        f"gc: {report.expired_uploads} stale uploads, {report.temp_files_removed} temp files,"
        f" {report.deletes_finished} deletes finished, {report.blobs_removed} unreferenced"
        f" blobs, {report.orphan_blobs_removed} orphan blob files,"
        f" {report.deleted_rows_purged} deleted rows purged"
    )


@cli.command()
@click.option("--repair", is_flag=True, help="Fix what needs no guessing (recount, orphans).")
@click.option("--no-verify", is_flag=True, help="Check that files exist without re-hashing them.")
@click.pass_context
def fsck(ctx: click.Context, repair: bool, no_verify: bool) -> None:
    """Check the database against the blob files; exit 1 if damage remains."""
    from juststorage.application.fsck import check_store

    async def work(services: Services) -> FsckReport:
        async with services.metadata.snapshot() as view:
            total_blobs, total_bytes = await view.blobs.totals()
        bar: ProgressBar[int]
        with click.progressbar(
            length=max(total_bytes, 1),
            label=f"fsck {total_blobs} blobs",
            file=sys.stderr,
            show_pos=False,
            show_percent=True,
            item_show_func=lambda _: None,
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
                verify_hashes=not no_verify,
                progress=progress,
            )

    report = _run(ctx, work)
    for problem in report.problems:
        click.echo(problem.describe())
    unrepaired = sum(1 for p in report.problems if not p.repaired)
    click.echo(
        f"fsck: {report.blobs_checked} blobs, {report.bytes_checked} bytes checked;"
        f" {len(report.problems)} problems, {unrepaired} unrepaired"
    )
    if report.damaged:
        raise CommandFailed("damage found" + ("" if repair else " (try --repair)"))


@cli.group()
def keys() -> None:
    """Create, list and revoke API keys."""


def _key_json(record: ApiKeyRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "tenants": sorted(record.tenants),
        "scopes": sorted(s.value for s in record.scopes),
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


@keys.command("create")
@click.option("--tenant", "tenants", multiple=True, required=True, help="Tenant (repeat; * = all).")
@click.option("--scope", "scopes", multiple=True, required=True, help="Scope (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def keys_create(
    ctx: click.Context, tenants: tuple[str, ...], scopes: tuple[str, ...], as_json: bool
) -> None:
    """Create an API key; it is printed once and never stored."""
    created = _run(ctx, lambda s: create_api_key(s.metadata, s.clock, list(tenants), list(scopes)))
    if as_json:
        click.echo(json.dumps({**_key_json(created.record), "key": created.key}))
    else:
        click.echo(f"id: {created.record.id}", err=True)
        click.echo(created.key)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List API keys (never the keys themselves)."""
    records = _run(ctx, lambda s: list_api_keys(s.metadata))
    if as_json:
        click.echo(json.dumps([_key_json(r) for r in records]))
        return
    if not records:
        click.echo("no API keys")
    for r in records:
        status = f"revoked {r.revoked_at.isoformat()}" if r.revoked_at else "active"
        click.echo(
            f"{r.id}  tenants={','.join(sorted(r.tenants))}"
            f"  scopes={','.join(sorted(s.value for s in r.scopes))}"
            f"  created={r.created_at.isoformat()}  {status}"
        )


@keys.command("revoke")
@click.argument("key_id")
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke an API key by id; it is refused from the next request on."""
    _run(ctx, lambda s: revoke_api_key(s.metadata, key_id))
    click.echo(f"revoked {key_id}")


@cli.group()
def token() -> None:
    """Issue JWTs."""


@token.command("issue")
@click.option("--sub", required=True, help="Subject (who the token is for).")
@click.option("--tenant", "tenants", multiple=True, required=True, help="Tenant (repeat; * = all).")
@click.option("--scope", "scopes", multiple=True, required=True, help="Scope (repeat).")
@click.option("--ttl", type=click.IntRange(min=1), default=3600, show_default=True, help="Seconds.")
@click.option(
    "--private-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="PEM private key for RS256/ES256 (default: HS256 with JWT_SECRET).",
)
@click.pass_context
def token_issue(
    ctx: click.Context,
    sub: str,
    tenants: tuple[str, ...],
    scopes: tuple[str, ...],
    ttl: int,
    private_key: Path | None,
) -> None:
    """Print a signed JWT, alone on its line."""
    settings = _settings(ctx)
    with handle_errors():
        signed = issue_token(
            subject=sub,
            tenants=tenants,
            scopes=scopes,
            ttl_seconds=ttl,
            secret=settings.jwt_secret,
            private_key_pem=private_key.read_text("ascii") if private_key else None,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    click.echo(signed)


@cli.group()
def deploy() -> None:
    """Deployment configuration for containers, Kubernetes and PaaS platforms."""


@deploy.command("generate")
@click.argument("platform", type=click.Choice(list(PLATFORMS)), metavar="PLATFORM")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to write the files into.",
)
@click.option("--app-name", default="juststorage", show_default=True, help="Application name.")
@click.option("--region", default=None, help="Platform region (flyio, render, digitalocean).")
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def deploy_generate(
    platform: str, output: Path, app_name: str, region: str | None, force: bool
) -> None:
    """Write PLATFORM's configuration files; secrets are referenced, never written."""
    try:
        options = DeployOptions(app_name=app_name, region=region)
        if region is not None and not PLATFORMS[platform].uses_region:
            click.echo(f"note: {platform} takes no region in its files; --region ignored", err=True)
        written = write_files(generate(platform, options), output, force=force)
    except DeployError as exc:
        raise CommandFailed(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path}")


register_object_commands(cli)  # put, get, ls, rm, stat, usage (cli/objects.py)
register_migrate_command(cli, _settings, handle_errors)  # migrate-blobs (cli/migrate.py)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="juststorage")
    sys.exit(0)
