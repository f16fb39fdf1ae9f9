"""docs/cli.md is the commands' own `--help` and exit-status table, so it cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from juststorage.cli import reference
from juststorage.cli.errors import FAILURES

PAGE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
REGENERATE = "run: .venv/bin/python -m juststorage.cli.reference docs/cli.md"


def test_the_reference_page_is_what_the_commands_print() -> None:
    page = PAGE.read_text("utf-8")
    assert reference.update(page) == page, REGENERATE


def test_the_reference_covers_every_command_and_subcommand() -> None:
    paths = [path for path, _ in reference.walk()]
    headings = re.findall(r"^### (.+)$", PAGE.read_text("utf-8"), flags=re.MULTILINE)
    assert headings == paths
    expected = {"serve", "migrate", "gc", "fsck", "migrate-blobs", "keys create", "keys list"}
    expected |= {"keys revoke", "token issue", "deploy generate"}
    expected |= {"put", "get", "ls", "rm", "stat", "usage"}  # through the SDK
    assert {f"juststorage {name}" for name in expected} <= set(paths)


def test_the_page_shows_every_exit_status_of_the_code() -> None:
    rows = re.findall(r"^\| (\d+) \| (.*?) \| (.*) \|$", PAGE.read_text("utf-8"), re.MULTILINE)
    statuses = [(int(status), codes) for status, codes, _ in rows]
    expected = [(0, "—")] + [
        (f.exit_code, ", ".join(f"`{c}`" for c in f.error_codes) or "—") for f in FAILURES
    ]
    assert statuses == expected


def test_every_command_and_option_explains_itself() -> None:
    for path, ctx in reference.walk():
        command = ctx.command
        assert command.get_short_help_str().strip(), f"{path} has no help"
        for param in command.get_params(ctx):
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts} has no help"
        assert "-h" in ctx.help_option_names and "--help" in ctx.help_option_names


def test_update_refuses_a_page_without_its_sections() -> None:
    with pytest.raises(ValueError, match="commands.*exit-statuses"):
        reference.update("# no markers\n")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading (the reference's headings are plain words)."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_the_reference_land_on_a_heading() -> None:
    root = PAGE.parents[1]
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", PAGE.read_text("utf-8"), re.MULTILINE)}
    links = []
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(((?:docs/)?cli\.md(?:#[^)]*)?)\)", doc.read_text("utf-8")):
            links.append((doc.name, target))
            _, _, anchor = target.partition("#")
            assert not anchor or anchor in anchors, (doc.name, target)
    assert ("README.md", "docs/cli.md#exit-status") in links
