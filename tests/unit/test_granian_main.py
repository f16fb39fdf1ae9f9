"""The server's main process after `serve` hands over: start-up failures are one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from juststorage.cli import granian_main


def test_a_launch_that_cannot_start_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert granian_main.main(["granian_main", "{not json"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: the server could not start: ")
    assert "Traceback" not in err and err.count("\n") == 1


def test_the_module_run_as_the_main_process_exits_1_without_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "juststorage.cli.granian_main", '{"address": "127.0.0.1"}'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: the server could not start: ")
    assert "Traceback" not in done.stderr
