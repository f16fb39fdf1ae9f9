"""`juststorage share`: a presigned URL for one object (SPEC §8.5)."""

from __future__ import annotations

import json
import re

import click

from juststorage.application.presign import MAX_EXPIRES_IN
from juststorage.cli.client_config import connection_options, json_option
from juststorage.cli.objects import _client, _target

_DURATION = re.compile(r"(\d{1,7})([smhd]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}


def parse_duration(text: str) -> int:
    """`90`, `90s`, `10m`, `2h` or `7d` as seconds, from 1 to 604800 (7 days).

    Raises:
        click.BadParameter: anything else.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = int(match.group(1)) * _SECONDS[match.group(2)] if match else 0
    if not 1 <= seconds <= MAX_EXPIRES_IN:
        raise click.BadParameter(
            f"{text!r}: give 1s to 7d, as seconds or with s, m, h or d (e.g. 10m)",
            param_hint="--expires",
        )
    return seconds


@click.command()
@click.argument("name", metavar="TENANT/NAMESPACE/KEY")
@click.option("--id", "object_id", help="This version by id (NAME is the TENANT); not with --put.")
@click.option(
    "--expires",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="How long the URL works: seconds, or 90s, 10m, 2h, 7d (at most 7d).",
)
@click.option("--put", "for_put", is_flag=True, help="A URL that uploads to the key instead.")
@json_option
@connection_options
def share(
    name: str,
    object_id: str | None,
    expires: str,
    for_put: bool,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Print a URL that downloads (or with --put, uploads) one object without a
    credential until it expires: `curl -o FILE URL`, `curl -T FILE URL`.

    A download URL of a key reads its newest version at the time of use. It stops
    working when it expires or when the API key that made it is revoked.
    """
    if for_put and object_id is not None:
        raise click.UsageError("--put names a key: TENANT/NAMESPACE/KEY, not --id")
    seconds = parse_duration(expires)
    target = _target(name, object_id)
    with _client(url, token) as client:
        signed = client.presign("PUT" if for_put else "GET", expires_in=seconds, **target)
    if as_json:
        click.echo(json.dumps({**signed.raw, "url": signed.url}, ensure_ascii=False))
    else:
        click.echo(signed.url)
