"""The transfer progress line of `put` and `get`: done / total, rate, ETA, across parts."""

from __future__ import annotations

import io

import pytest

from juststorage.cli import progress as progress_module
from juststorage.cli.progress import Progress

MiB = 1024 * 1024


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    return clock


def test_a_terminal_gets_one_line_redrawn_with_total_rate_and_eta(clock: _Clock) -> None:
    out = _Terminal()
    bar = Progress(100 * MiB, "upload", None, stream=out)
    for _ in range(4):  # four parts report 10 MiB each over 4 seconds
        clock.now += 1
        bar(10 * MiB)
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 4 and "\n" not in out.getvalue()
    assert frames[-1] == "upload: 40.0 MiB / 100.0 MiB (40%)  10.0 MiB/s  ETA 0:06\x1b[K"
    bar.close()
    assert "upload: 40.0 MiB in 0:04, 40.0 MiB transferred at 10.0 MiB/s" in out.getvalue()


def test_resumed_bytes_count_as_done_but_not_towards_the_rate(clock: _Clock) -> None:
    out = io.StringIO()  # not a terminal: plain lines, forced on
    bar = Progress(100 * MiB, "download", True, stream=out)
    bar.resumed(60 * MiB)
    clock.now += 2
    bar(20 * MiB)
    lines = out.getvalue().splitlines()
    assert lines[0] == "download: resuming, 60.0 MiB already done"
    assert lines[1] == "download: 80.0 MiB / 100.0 MiB (80%)  10.0 MiB/s  ETA 0:02"
    bar.close()
    assert out.getvalue().splitlines()[-1].endswith("(60.0 MiB resumed)")


def test_plain_lines_are_written_at_most_every_two_seconds(clock: _Clock) -> None:
    out = io.StringIO()
    bar = Progress(100 * MiB, "upload", True, stream=out)
    for _ in range(10):
        clock.now += 0.5
        bar(MiB)
    assert len(out.getvalue().splitlines()) == 3  # at 0.5 s, 2.5 s and 4.5 s


def test_small_transfers_and_pipes_show_nothing_unless_asked(clock: _Clock) -> None:
    out = io.StringIO()
    Progress(100 * MiB, "upload", None, stream=out)(MiB)
    quiet = _Terminal()
    small = Progress(MiB, "upload", None, stream=quiet)
    small(MiB)
    small.close()
    assert out.getvalue() == "" and quiet.getvalue() == ""


def test_a_tree_counts_its_files_on_the_one_combined_line(clock: _Clock) -> None:
    out = io.StringIO()
    bar = Progress(30 * MiB, "upload", True, stream=out, files=3, min_bytes=0)
    bar.file_done()
    clock.now += 1
    bar(10 * MiB)
    bar.skipped(10 * MiB)  # a file the server already held: done, not moved
    bar.file_done()
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "upload: 1/3 files, 10.0 MiB / 30.0 MiB (33%)  10.0 MiB/s  ETA 0:02"
    assert lines[-1] == (
        "upload: 2 files, 20.0 MiB in 0:01, 10.0 MiB transferred at 10.0 MiB/s"
        " (10.0 MiB already stored)"
    )


def test_an_unknown_size_shows_bytes_and_rate_never_a_percentage(clock: _Clock) -> None:
    out = io.StringIO()
    bar = Progress(None, "upload", True, stream=out)
    for _ in range(3):
        clock.now += 2
        bar(4 * MiB)
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "upload: 4.0 MiB  2.0 MiB/s"
    assert lines[-2] == "upload: 12.0 MiB  2.0 MiB/s"
    assert all("%" not in line and "ETA" not in line for line in lines)
