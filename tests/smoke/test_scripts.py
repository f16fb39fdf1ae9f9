"""Every Python script of scripts/ on tiny sizes: it runs to the end and prints its result.

The shell scripts run in `make test` itself (ensure-postgres.sh, the two SDK suites).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from juststorage import testing
from support.pg_databases import fresh_database

from .runner import run_python


def run_script(name: str, *args: str) -> str:
    """scripts/<name> with `args`; its output, after checking that it exited with 0."""
    done = run_python(f"scripts/{name}", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_fsync_modes(tmp_path: Path) -> None:
    out = run_script("fsync_modes.py", "--n", "32", "--dir", str(tmp_path))
    assert out.startswith("sequential ") and "16 files + one syncfs" in out


def test_list_pages(tmp_path: Path) -> None:
    server = testing.start(tmp_path)
    try:
        out = run_script(
            "list_pages.py",
            *("--url", server.url, "--token", server.admin_key),
            *("--n", "20", "--rounds", "2", "--page", "10"),
        )
    finally:
        server.stop()
    assert out.startswith("20 objects, pages of 10, 2 rounds: ms per page")


def test_loadtest() -> None:
    out = run_script(
        "loadtest.py",
        *("--duration", "1", "--clients", "2", "--workers", "1", "--client-processes", "1"),
    )
    assert "0 metric mismatches, 0 request errors" in out


def test_profile_uploads() -> None:
    out = run_script("profile_uploads.py", "--n", "20")
    assert "uploads/s" in out


def test_multipart_cpu() -> None:
    out = run_script(
        "multipart_cpu.py",
        *("--mib", "16", "one", "2x1"),
        *("--server-env", "JUSTSTORAGE_UPLOAD_PART_MIN_BYTES=1048576"),
    )
    assert [line.split(":")[0].strip() for line in out.splitlines()[1:]] == ["one", "2x1"]


def test_driver_bench(postgres_server_url: str) -> None:
    with fresh_database(postgres_server_url) as url:
        out = run_script("driver_bench.py", "--url", url, "--n", "20")
    assert out.count("asyncpg/psycopg insert") == 2


def test_every_python_script_has_a_smoke_test() -> None:
    """A script added to scripts/ without a test here would rot unnoticed."""
    source = Path(__file__).read_text("utf-8")
    scripts = sorted(p.name for p in (Path(__file__).parents[2] / "scripts").glob("*.py"))
    assert scripts, "no scripts found"
    assert [name for name in scripts if f'"{name}"' not in source] == []


@pytest.mark.parametrize("mode", ["kill", "cut"])
def test_measure_resume(mode: str) -> None:
    out = run_script("measure_resume.py", "--mib", "72", "--mode", mode, "--pace-mib", "8")
    assert out.startswith(f"[{mode}] 72 MiB, 8 MiB parts, 4 in flight: stopped with ")
    assert "the resumed put sent " in out


def test_restore_stress() -> None:
    out = run_script("restore_stress.py", "--objects", "20", "--runs", "2")
    assert "failures 0 of 2" in out


def test_restore_ab() -> None:
    # The same source on both sides: the script's own run, not a comparison.
    src = str(Path(__file__).parents[2] / "src")
    out = run_script(
        "restore_ab.py", "--before-src", src, "--objects", "20", "--small", "16", "--gib", "0.01"
    )
    assert "before 0: rc 0" in out and "after  0: rc 0" in out
