"""Keeps docs/cli.md true: every command's `--help` and the exit-status table.

The page's prose is written by hand; the text between `<!-- generated: NAME -->`
and `<!-- end generated: NAME -->` is written here, from the commands themselves
and from `errors.FAILURES`. tests/unit/test_cli_reference.py fails when the page
is stale; rewrite it with

    .venv/bin/python -m juststorage.cli.reference docs/cli.md
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import click

from juststorage.cli.errors import FAILURES
from juststorage.cli.main import cli

# The help as printed on a terminal of HELP_COLUMNS or more: click wraps its text at
# min(columns, 80) - 2.
HELP_COLUMNS = 80
_SECTION = re.compile(
    r"(<!-- generated: (?P<name>[a-z-]+) -->\n).*?(<!-- end generated: (?P=name) -->)", re.S
)


def walk(
    command: click.Command = cli, name: str = "juststorage", parent: click.Context | None = None
) -> Iterator[tuple[str, click.Context]]:
    """Every command and subcommand, depth first: its full name and a context for it.

    The contexts are made without parsing anything (no command runs).
    """
    extra = {} if parent is not None else {"terminal_width": HELP_COLUMNS - 2}
    ctx = command.make_context(name, [], parent=parent, resilient_parsing=True, **extra)
    yield ctx.command_path, ctx
    if isinstance(command, click.Group):
        for sub_name in command.list_commands(ctx):
            sub = command.get_command(ctx, sub_name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, sub_name, ctx)


def help_texts() -> dict[str, str]:
    """`juststorage … --help` of every command, as printed at `HELP_COLUMNS` columns."""
    return {path: ctx.get_help() + "\n" for path, ctx in walk()}


def _anchor(path: str) -> str:
    return path.replace(" ", "-")


def render_commands() -> str:
    """An index of the commands, then each command's `--help`."""
    contexts = list(walk())
    lines = ["| command | what it does |", "|---|---|"]
    for path, ctx in contexts:
        summary = ctx.command.get_short_help_str(limit=100)
        lines.append(f"| [`{path}`](#{_anchor(path)}) | {summary} |")
    for path, ctx in contexts:
        lines += ["", f"### {path}", "", "```text", ctx.get_help(), "```"]
    return "\n".join(lines) + "\n"


def render_exit_statuses() -> str:
    """The table of `errors.FAILURES`, with 0 for success."""
    lines = [
        "| exit | errors | meaning |",
        "|---|---|---|",
        "| 0 | — | Done. |",
    ]
    for failure in FAILURES:
        codes = ", ".join(f"`{code}`" for code in failure.error_codes) or "—"
        meaning = " ".join((inspect.getdoc(failure) or "").split())
        lines.append(f"| {failure.exit_code} | {codes} | {meaning} |")
    return "\n".join(lines) + "\n"


SECTIONS: dict[str, Callable[[], str]] = {
    "exit-statuses": render_exit_statuses,
    "commands": render_commands,
}


def update(page: str) -> str:
    """The page with every generated section written afresh.

    Raises:
        ValueError: a section is missing from the page.
    """
    missing = set(SECTIONS) - {m["name"] for m in _SECTION.finditer(page)}
    if missing:
        raise ValueError(f"no generated section(s) {sorted(missing)} in the page")
    return _SECTION.sub(lambda m: m[1] + SECTIONS[m["name"]]() + m[3], page)


def main(argv: Sequence[str]) -> int:
    """Rewrite the page named by `argv[0]` (default docs/cli.md) in place."""
    path = Path(argv[0] if argv else "docs/cli.md")
    page = path.read_text("utf-8")
    fresh = update(page)
    if fresh != page:
        path.write_text(fresh, "utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
