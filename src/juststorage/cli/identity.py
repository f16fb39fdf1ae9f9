"""`juststorage whoami`: which server, which credential, its tenants and scopes.

Asks the server (`GET /v1/whoami`), so what is shown is what the server grants,
for a JWT or an API key alike.
"""

from __future__ import annotations

import json
from typing import Any

import click

from juststorage.cli.client_config import (
    chosen_profile,
    connection_options,
    json_option,
    resolve_connection,
)
from juststorage.cli.errors import CommandFailed
from juststorage.cli.session import connected


@click.command()
@json_option
@connection_options
def whoami(as_json: bool, url: str | None, token: str | None) -> None:
    """Show the server, where the credential came from, and its tenants and scopes."""
    connection = resolve_connection(url, token, chosen_profile())
    with connected(connection) as client:
        response = client.send("GET", "/v1/whoami", accept=(404,))
        try:
            response.read()
        finally:
            response.close()
    if response.status_code == 404:
        raise CommandFailed(f"{connection.url} does not answer /v1/whoami (an older server)")
    grants: dict[str, Any] = response.json()
    data = {
        "url": connection.url,
        "profile": connection.profile,
        "credential_from": connection.source,
        **grants,
    }
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    tenants = ", ".join(grants["tenants"]).replace("*", "* (every tenant)")
    scopes = ", ".join(grants["scopes"]).replace("admin", "admin (every scope)")
    lines = [
        f"url:      {connection.url}",
        f"profile:  {connection.profile or '(none)'}",
        f"token:    {connection.source or '(none)'}",
        f"subject:  {grants['subject']}",
        f"tenants:  {tenants}",
        f"scopes:   {scopes}",
    ]
    click.echo("\n".join(lines))
