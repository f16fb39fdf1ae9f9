"""Credential commands: `keys create|list|revoke|s3-secret` and `token issue`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from juststorage.application.apikeys import (
    CreatedKey,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from juststorage.application.records import ApiKeyRecord
from juststorage.bootstrap import Services, s3_master_key, sign_token
from juststorage.cli.runtime import run_with_services, settings_of
from juststorage.config import DEFAULT_JWT_MAX_TTL_SECONDS
from juststorage.domain.auth import Scope
from juststorage.s3.secrets import derive_s3_secret, s3_secret_of

_SCOPES_HELP = f"Scope (repeat): {', '.join(Scope)}."


@click.group()
def keys() -> None:
    """Create, list and revoke API keys; print their S3 credentials."""


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
@click.option("--scope", "scopes", multiple=True, required=True, help=_SCOPES_HELP)
@click.option(
    "--s3",
    "with_s3",
    is_flag=True,
    help="Also print the key's S3 credentials (access key id and secret access key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def keys_create(
    ctx: click.Context,
    tenants: tuple[str, ...],
    scopes: tuple[str, ...],
    with_s3: bool,
    as_json: bool,
) -> None:
    """Create an API key; it is printed once and never stored.

    With --s3, its S3 credentials are printed too: the access key id is the key's
    id, the secret is derived from the key (`keys s3-secret` prints it again).
    """

    async def work(services: Services) -> tuple[CreatedKey, dict[str, str]]:
        # The master key first (inside: the store exists): a data directory where its
        # file cannot be made gets no key whose S3 secret could not be printed.
        master_key = s3_master_key(services.settings) if with_s3 else None
        created = await create_api_key(
            services.metadata, services.clock, list(tenants), list(scopes)
        )
        if master_key is None:
            return created, {}
        record = created.record
        secret = derive_s3_secret(master_key, record.id, record.key_hash)
        return created, {"access_key_id": record.id, "secret_access_key": secret}

    created, s3 = run_with_services(ctx, work)
    record = created.record
    if as_json:
        click.echo(json.dumps({**_key_json(record), "key": created.key, **s3}))
        return
    click.echo(f"id: {record.id}", err=True)
    if s3:
        click.echo(f"aws_access_key_id = {s3['access_key_id']}")
        click.echo(f"aws_secret_access_key = {s3['secret_access_key']}")
    click.echo(created.key)


@keys.command("s3-secret")
@click.argument("key_id")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def keys_s3_secret(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Print the S3 secret access key of the active API key KEY_ID (its access key id)."""

    async def work(services: Services) -> str:
        return await s3_secret_of(services.metadata, s3_master_key(services.settings), key_id)

    secret = run_with_services(ctx, work)
    if as_json:
        click.echo(json.dumps({"access_key_id": key_id, "secret_access_key": secret}))
    else:
        click.echo(secret)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def keys_list(ctx: click.Context, as_json: bool) -> None:
    """List API keys (never the keys themselves)."""
    records = run_with_services(ctx, lambda s: list_api_keys(s.metadata))
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
    """Revoke the API key KEY_ID; it is refused from the next request on."""
    run_with_services(ctx, lambda s: revoke_api_key(s.metadata, key_id))
    click.echo(f"revoked {key_id}")


@click.group()
def token() -> None:
    """Issue JWTs."""


@token.command("issue")
@click.option("--sub", required=True, help="Subject (who the token is for).")
@click.option("--tenant", "tenants", multiple=True, required=True, help="Tenant (repeat; * = all).")
@click.option("--scope", "scopes", multiple=True, required=True, help=_SCOPES_HELP)
@click.option(
    "--ttl",
    type=click.IntRange(min=1),
    default=3600,
    show_default=True,
    help=f"Seconds; at most JUSTSTORAGE_JWT_MAX_TTL_S (default {DEFAULT_JWT_MAX_TTL_SECONDS}).",
)
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
    settings = settings_of(ctx)
    signed = sign_token(
        settings,
        subject=sub,
        tenants=tenants,
        scopes=scopes,
        ttl_seconds=ttl,
        private_key_pem=private_key.read_text("ascii") if private_key else None,
    )
    click.echo(signed)
