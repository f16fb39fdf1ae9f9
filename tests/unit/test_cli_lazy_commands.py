"""The CLI loads a command's module only when that command is asked for
(cli/main.py, `COMMANDS`), so client commands start without the server's modules."""

from __future__ import annotations

import subprocess
import sys

import click

from juststorage.cli.main import COMMANDS, cli


def test_every_listed_command_loads_under_its_name() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
    assert cli.get_command(ctx, "no-such-command") is None


def test_a_client_command_starts_without_the_server_modules() -> None:
    probe = (
        "import sys\n"
        "from juststorage.cli.main import cli\n"
        "try:\n"
        "    cli.main(['put', '--help'], prog_name='juststorage')\n"
        "except SystemExit as exit_:\n"
        "    assert exit_.code == 0, exit_.code\n"
        "heavy = ['juststorage.bootstrap', 'juststorage.config', 'pydantic', 'asyncpg']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert "Upload FILE" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
