"""`juststorage`: one click group; every command is added to it here.

The convention for a command: a module-level `@click.command()` (or a
`@click.group()` of subcommands) in the module of its kind, added to `cli` in
`COMMANDS` below. It reads its inputs, calls one application function (server
side: through `runtime`; object commands: through the SDK) and prints the result
(`--json` for scripts). It raises on failure and catches nothing: the group wraps
every command in `errors.handle_errors()`, the one place that maps errors to exit
statuses (`errors.FAILURES`, also in docs/cli.md).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from juststorage import __version__
from juststorage.cli.credentials import keys, token
from juststorage.cli.deployment import deploy
from juststorage.cli.errors import handle_errors
from juststorage.cli.migrate import migrate_blobs_command
from juststorage.cli.objects import get, list_objects, put, rm, stat, usage
from juststorage.cli.server import fsck, gc, migrate, serve


class _Cli(click.Group):
    """The root group: runs every command, however deep, inside `handle_errors()`."""

    def invoke(self, ctx: click.Context) -> Any:
        with handle_errors():
            return super().invoke(ctx)


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="juststorage")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML settings file (environment variables win over it).",
)
def cli(config: Path | None) -> None:
    """JustStorage: a content-addressed object store with a small HTTP API."""


COMMANDS: tuple[click.Command, ...] = (
    # Where the store is: they open the database and the storage roots themselves.
    serve,
    migrate,
    gc,
    fsck,
    migrate_blobs_command,
    keys,
    token,
    deploy,
    # Against a running server, through the Python SDK.
    put,
    get,
    list_objects,
    rm,
    stat,
    usage,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="juststorage")
    sys.exit(0)
