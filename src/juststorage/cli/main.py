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

import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from juststorage import __version__
from juststorage.cli.backup import backup
from juststorage.cli.completion import completion
from juststorage.cli.credentials import keys, token
from juststorage.cli.deployment import deploy
from juststorage.cli.errors import handle_errors
from juststorage.cli.identity import whoami
from juststorage.cli.migrate import migrate_blobs_command
from juststorage.cli.objects import get, list_objects, put, rm, stat, usage
from juststorage.cli.restore import restore
from juststorage.cli.server import fsck, gc, migrate, serve
from juststorage.cli.share import share
from juststorage.cli.tree_commands import cp, sync


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
    backup,
    restore,
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
    share,
    cp,
    sync,
    whoami,
    completion,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point.

    The process ends with `os._exit` once the command is done and its output is
    flushed, without the interpreter's finalization. The S3 client (obstore) keeps a
    Tokio runtime whose worker threads (idle-connection reapers) can wake while the
    interpreter is torn down and then abort the whole process (SIGABRT) after a
    command that succeeded; no state is left to finalize by then.
    """
    try:
        cli.main(prog_name="juststorage")
        code: object = 0
    except SystemExit as exit_:
        code = exit_.code
    _exit_now(code)


def _exit_now(code: object) -> None:
    """Flush what the command wrote and end the process with `code` (SystemExit's rules:
    None is 0, an int is the status, anything else is printed and is 1)."""
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1  # e.g. stdout was a closed pipe: the output is lost
    os._exit(status)
