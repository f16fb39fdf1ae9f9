"""`juststorage` ends with os._exit after flushing, with the command's status."""

from __future__ import annotations

import subprocess
import sys

import pytest

from juststorage.cli import main as cli_main


class _Exited(Exception):
    def __init__(self, status: int) -> None:
        self.status = status


def _run(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    def fake_exit(status: int) -> None:
        raise _Exited(status)

    monkeypatch.setattr(cli_main.os, "_exit", fake_exit)
    monkeypatch.setattr(sys, "argv", ["juststorage", *argv])
    with pytest.raises(_Exited) as exited:
        cli_main.main()
    return exited.value.status


def test_a_command_that_succeeds_exits_0_without_finalizing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(monkeypatch, ["--version"]) == 0
    assert "juststorage" in capsys.readouterr().out


def test_a_usage_error_keeps_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _run(monkeypatch, ["no-such-command"]) == 2


def test_output_through_a_pipe_arrives_whole() -> None:
    """os._exit skips the interpreter's own flush: the entry point flushes first."""
    done = subprocess.run(
        [sys.executable, "-c", "from juststorage.cli.main import main; main()", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().splitlines()[-1].strip(), done.stdout
    assert "serve" in done.stdout and "fsck" in done.stdout
