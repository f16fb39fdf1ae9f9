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

import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from juststorage import __version__
from juststorage.cli.errors import handle_errors

# Every command by name: the module that defines it and the name it has there. A
# module is imported when its command runs (or is listed by --help), so `put` or
# `ls` does not load the server's modules (settings model, database drivers,
# backup) at every start.
COMMANDS: dict[str, tuple[str, str]] = {
    # Where the store is: they open the database and the storage roots themselves.
    "serve": ("juststorage.cli.server", "serve"),
    "migrate": ("juststorage.cli.server", "migrate"),
    "gc": ("juststorage.cli.server", "gc"),
    "fsck": ("juststorage.cli.server", "fsck"),
    "migrate-blobs": ("juststorage.cli.migrate", "migrate_blobs_command"),
    "backup": ("juststorage.cli.backup", "backup"),
    "restore": ("juststorage.cli.restore", "restore"),
    "keys": ("juststorage.cli.credentials", "keys"),
    "token": ("juststorage.cli.credentials", "token"),
    "deploy": ("juststorage.cli.deployment", "deploy"),
    # Against a running server, through the Python SDK.
    "put": ("juststorage.cli.objects", "put"),
    "get": ("juststorage.cli.objects", "get"),
    "ls": ("juststorage.cli.objects", "list_objects"),
    "rm": ("juststorage.cli.objects", "rm"),
    "stat": ("juststorage.cli.objects", "stat"),
    "usage": ("juststorage.cli.objects", "usage"),
    "share": ("juststorage.cli.share", "share"),
    "cp": ("juststorage.cli.tree_commands", "cp"),
    "sync": ("juststorage.cli.tree_commands", "sync"),
    "whoami": ("juststorage.cli.identity", "whoami"),
    "completion": ("juststorage.cli.completion", "completion"),
}


class _Cli(click.Group):
    """The root group: runs every command, however deep, inside `handle_errors()`;
    loads each command's module when the command is asked for (`COMMANDS`)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, name = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(module), name)
            if command.name != cmd_name:
                raise RuntimeError(f"{module}.{name} is named {command.name!r}")
            self.add_command(command)
        return self.commands.get(cmd_name)

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
