"""`rm --prefix`: every key under a prefix, after showing what and asking.

The prefix is literal, as in `ls` (`acme/files/logs` also matches `logs-old/…`);
end it with `/` to mean one folder. Each key loses every version. Without
`--yes` the command lists how many keys and the first few, and asks on the
terminal (or reads the answer from stdin); anything but yes deletes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any

import click

from juststorage.cli.actions import delete_line
from juststorage.cli.batch import Task, run_tasks
from juststorage.cli.client_config import sdk
from juststorage.cli.errors import CommandFailed
from juststorage.cli.names import SCHEME, Location
from juststorage.cli.progress import Progress

_SHOWN = 5


def remove_prefix(
    client: Any, location: Location, *, yes: bool, dry_run: bool, parallel: int, as_json: bool
) -> None:
    """Delete every key starting with `location.key` (each with all its versions)."""
    keys = [
        info.key
        for info in client.list(
            tenant=location.tenant,
            namespace=location.namespace,
            prefix=location.key or None,
            page_size=1000,
        )
    ]
    where = f"{SCHEME}{location}"
    if not keys:
        click.echo(f"nothing under {where}", err=True)
        return
    if dry_run:
        for key in keys:
            click.echo(delete_line(_name(location, key), as_json=as_json, dry_run=True))
        click.echo(f"(dry run) {len(keys)} key(s) would be deleted", err=True)
        return
    if not yes:
        for key in keys[:_SHOWN]:
            click.echo(f"  {key}", err=True)
        if len(keys) > _SHOWN:
            click.echo(f"  … and {len(keys) - _SHOWN} more", err=True)
        question = f"Delete these {len(keys)} key(s) under {where}, every version?"
        try:
            confirmed = click.confirm(question, default=False, err=True)
        except click.Abort:  # no answer (end of input)
            confirmed = False
        if not sys.stdin.isatty():
            click.echo("", err=True)  # a piped answer is not echoed: end the prompt's line
        if not confirmed:
            raise CommandFailed("not confirmed: nothing was deleted (--yes skips the question)")

    not_found: type[Exception] = sdk().NotFound

    def delete(key: str) -> str | None:
        with contextlib.suppress(not_found):  # deleted meanwhile: the outcome asked for
            client.delete(tenant=location.tenant, namespace=location.namespace, key=key)
        return delete_line(_name(location, key), as_json=as_json)

    bar = Progress(None, "delete", False)
    tasks = (Task(key, functools.partial(delete, key)) for key in keys)
    done = run_tasks(tasks, parallel, bar)
    click.echo(f"{done} key(s) deleted", err=True)


def _name(location: Location, key: str) -> str:
    return f"{SCHEME}{location.tenant}/{location.namespace}/{key}"
