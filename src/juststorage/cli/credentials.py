"""Credential commands: `keys create|list|revoke` and `token issue`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from juststorage.application.apikeys import create_api_key, list_api_keys, revoke_api_key
from juststorage.application.records import ApiKeyRecord
from juststorage.bootstrap import sign_token
from juststorage.cli.runtime import run_with_services, settings_of
from juststorage.config import DEFAULT_JWT_MAX_TTL_SECONDS
from juststorage.domain.auth import Scope

_SCOPES_HELP = f"Scope (repeat): {', '.join(Scope)}."


@click.group()
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
@click.option("--scope", "scopes", multiple=True, required=True, help=_SCOPES_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
def keys_create(
    ctx: click.Context, tenants: tuple[str, ...], scopes: tuple[str, ...], as_json: bool
) -> None:
    """Create an API key; it is printed once and never stored."""
    created = run_with_services(
        ctx, lambda s: create_api_key(s.metadata, s.clock, list(tenants), list(scopes))
    )
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
