"""`make bench` on tiny sizes: every section still runs end to end and prints its rows.

The figures of a tiny run mean nothing; what is checked is that no section fails,
that each one prints the rows it exists for, and that nothing is skipped but what
the machine lacks. PostgreSQL and SeaweedFS skip the test locally without them and
fail it in CI, like the other suites.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from juststorage.testing import free_port
from support.debian_tools import debian_tool
from support.seaweedfs import weed_or_skip

from .runner import REPO, run_python

# A figure each section prints (the `pg` section: the same figures on PostgreSQL).
EXPECTED = {
    "rss": ("peak RSS, upload 1 MiB", "sqlite"),
    "large": ("upload 4 MiB (curl -T), median of 1", "sqlite"),
    "multipart": ("put 16 MiB, multipart, 4 in flight", "sqlite"),
    "small": ("4 KiB PUT x16 vs durable commit", "sqlite"),
    "inline": ("4 KiB PUT x16, inline on, s3:// root", "postgres"),
    "scrub": ("scrub throughput at 2 MiB/s", "sqlite"),
    "list": ("list 2k, limit=100: deep / first", "sqlite"),
    "pg": ("list 2k, limit=100: deep / first", "postgres"),
    "scale": ("4 KiB GET x16, 2 processes", "postgres"),
    "s3": ("4 KiB PUT x16, SeaweedFS, 3 hosts", "postgres"),
    "backup": ("second backup, nothing changed, 40 objects / 16 MiB", "sqlite"),
}
NGINX_ROW = "behind nginx (X-Accel-Redirect)"


def table_rows(stdout: str) -> list[list[str]]:
    """The cells of every row of the printed table (header and rule excluded)."""
    lines = stdout.split("JustStorage bench (", 1)[1].splitlines()
    cells = [[c.strip() for c in line.split(" | ")] for line in lines if " | " in line]
    return cells[1:]


def test_every_bench_section_runs_on_tiny_sizes(postgres_server_url: str) -> None:
    weed_or_skip()
    try:
        nginx: str | None = debian_tool("nginx", "nginx-light")
    except pytest.skip.Exception:  # the nginx rows then print as skipped, saying why
        nginx = None
    env = {
        **os.environ,
        "JUSTSTORAGE_BENCH_PG_URL": postgres_server_url,
        "BENCH_ONLY": ",".join(EXPECTED),  # what `make bench BENCH_ONLY=...` sets
        "BENCH_SIZE": "tiny",
    }
    done = run_python("-m", "bench", env=env)  # as `make bench` runs it
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = table_rows(done.stdout)
    printed = {(r[0], r[1]) for r in rows}
    for section, (figure, db) in EXPECTED.items():
        assert (figure, db) in printed, f"section {section} printed no {figure!r} on {db}"
    for db in ("sqlite", "postgres"):  # the inline rows beside the database's own bound
        bound = next(r for r in rows if r[0] == "4 KiB PUT x16, inline on" and r[1] == db)
        assert bound[3].startswith(f"{db} group commit, 16-row tx"), bound
    second = next(r for r in rows if r[0] == EXPECTED["backup"][0])
    assert second[2].startswith("0 blobs copied,"), second  # the unchanged store: nothing
    rss_rows = {r[0] for r in rows if r[6] == "-" and r[0].startswith("peak RSS, ")}
    assert {"peak RSS, first backup", "peak RSS, restore"} <= rss_rows
    skipped = [r for r in rows if r[2] == "skipped"]
    if nginx is None:
        skipped = [r for r in skipped if NGINX_ROW not in r[0]]
    assert skipped == []


def test_bench_refuses_an_unknown_size() -> None:
    done = run_python("-m", "bench", env={**os.environ, "BENCH_SIZE": "huge"})
    assert done.returncode == 2
    assert "BENCH_SIZE=huge: use one of full, small, tiny" in done.stderr


def test_multipart_section_prints_every_row() -> None:
    """The `multipart` section alone (no PostgreSQL): each transfer, the completion,
    both RSS rows and the resumed put, none skipped."""
    env = {**os.environ, "BENCH_ONLY": "multipart", "BENCH_SIZE": "tiny"}
    done = run_python("-m", "bench", env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = table_rows(done.stdout)
    assert [r[0] for r in rows if r[2] == "skipped"] == []
    assert [r[0] for r in rows] == [
        "put 16 MiB, one request",
        "put 16 MiB, multipart, 1 in flight",
        "put 16 MiB, multipart, 4 in flight",
        "put 16 MiB, multipart, 8 in flight",
        "get 16 MiB, one stream",
        "get 16 MiB, parallel ranges, 4 in flight",
        "get 16 MiB, parallel ranges, 8 in flight",
        "complete a 16 MiB session, parts in order",
        "peak RSS server tree, 16 MiB put and get",
        "peak RSS CLI, 16 MiB put and get",
        "put 16 MiB killed at 90 %, run again: bytes sent again",
    ]


def test_s3gw_section_prints_every_row() -> None:
    """The `s3gw` section alone: boto3 and rclone against our S3 gateway and against
    SeaweedFS's, every figure with its ratio, none skipped (rclone is installed from
    Debian when missing; without it or SeaweedFS this skips locally, fails in CI)."""
    weed_or_skip()
    debian_tool("rclone", "rclone")
    env = {**os.environ, "BENCH_ONLY": "s3gw", "BENCH_SIZE": "tiny"}
    done = run_python("-m", "bench", env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = table_rows(done.stdout)
    assert [r[0] for r in rows if r[2] == "skipped"] == []
    assert [r[0] for r in rows] == [
        "boto3 4 KiB PUT",
        "boto3 4 KiB GET",
        "boto3 ListObjectsV2 30 keys",
        "boto3 2 MiB PUT",
        "boto3 2 MiB GET",
        "rclone 4 KiB PUT",
        "rclone 4 KiB GET",
        "rclone lsf 30 keys",
        "rclone 2 MiB PUT",
        "rclone 2 MiB GET",
        "peak RSS server tree, all s3gw rows",
    ]
    assert all(r[4] != "-" for r in rows), rows  # every row has its ratio


def test_s3_adapter_bench_runs_on_one_mib() -> None:
    weed_or_skip()
    done = run_python("-m", "bench.s3_adapter", "--mib", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()[2:]] == [
        "obstore",
        "aiobotocore",
    ]


@pytest.fixture
def peers_base() -> Iterator[Path]:
    """A fresh directory for nginx's and Swift's data that their own users (www-data,
    swift) can enter, unlike pytest's private tmp_path; removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="peers-smoke-", dir="/tmp"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_bench_peers_section_runs_on_tiny_sizes(peers_base: Path) -> None:
    """bench/peers.sh with every leg (JustStorage, nginx, Swift, each installed from
    Debian by the kit's start scripts when missing) on free ports and tiny sizes."""
    kit = REPO / "bench" / "peers"
    ports = {
        name: str(free_port())
        for name in (
            "NGINX_PORT",
            "SWIFT_PROXY_PORT",
            "SWIFT_OBJECT_PORT",
            "SWIFT_CONTAINER_PORT",
            "SWIFT_ACCOUNT_PORT",
            "SWIFT_MEMCACHED_PORT",
        )
    }
    env = {
        **os.environ,
        **ports,
        "PEERS": str(kit),
        "VENV": str(Path(sys.executable).parent.parent),  # has aiohttp: objbench's client
        "NGINX_BASE": str(peers_base / "nginx"),
        "SWIFT_BASE": str(peers_base / "swift"),
        "BENCH_ONLY": "peers",
        "BENCH_SIZE": "tiny",
    }
    done = run_python("-m", "bench", env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    rows = table_rows(done.stdout)
    assert [r[0] for r in rows if r[2] == "skipped"] == []
    assert {r[0] for r in rows} >= {
        "objbench small 4 KiB PUT vs swift",
        "objbench small 32 KiB GET vs nginx",
        "objbench large GET vs nginx",
    }


def run_module(module: str, *args: str) -> str:
    """`python -m bench.<module>` with `args`; its output, after checking it exited 0."""
    done = run_python("-m", f"bench.{module}", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_explain_plans_on_sqlite(tmp_path: Path) -> None:
    out = run_module("explain_plans", "--sqlite", str(tmp_path / "plans.db"), "--rows", "300")
    assert out.startswith("SQLite, 300 keys")
    assert "USING INDEX objects_committed_by_key" in out


def test_explain_plans_on_postgres(postgres_server_url: str) -> None:
    out = run_module("explain_plans", "--postgres", postgres_server_url, "--rows", "300")
    assert out.startswith("PostgreSQL, 300 keys")
    assert "### usage" in out


def test_get_lookups() -> None:
    out = run_module("get_lookups", "--n", "50", "--rounds", "2")
    assert out.startswith("SQLite, 50 versions, 2 rounds: µs per lookup")
    assert "newest_located" in out


def test_get_path() -> None:
    out = run_module("get_path", "--n", "20", "--workers", "1")
    assert out.startswith("4 KiB x16, n=20")
    assert [line.split()[:2] for line in out.splitlines()[2:]] == [
        ["ceiling", "asgi"],
        ["ceiling", "rsgi"],
        ["server", "x1"],
    ]


def test_asgi_steps() -> None:
    out = run_module("asgi_steps", "HEAD", "HEAD", "--rounds", "2", "--gets", "50")
    assert "median CPU µs per GET: HEAD" in out
    out = run_module("asgi_steps", "HEAD", "HEAD", "--http", "--rounds", "1", "--n", "20")
    assert "median GET/s: HEAD" in out


def test_multipart_completion_bench_prints_its_rows() -> None:
    done = run_python("-m", "bench.multipart_completion", "--mib", "4", "--part-mib", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 4 MiB")]
    assert [row.split("|")[3].strip() for row in rows] == [
        "in order",
        "4 in parallel",
        "shuffled",
    ]
    assert "server peak RSS:" in done.stdout


def test_ab_puts() -> None:
    src = str(REPO / "src")
    out = run_module("ab_puts", "--seconds", "0.5", "--rounds", "2", f"a={src}", f"b={src}")
    rounds = [line.split()[:3] for line in out.splitlines() if line.startswith("round")]
    assert rounds == [["round", "0", "a"], ["round", "0", "b"], ["round", "1", "b"]] + [
        ["round", "1", "a"]
    ]
    assert "PUT/s" in out.splitlines()[-1] and "loop" in out.splitlines()[-1]


def test_s3_steps() -> None:
    out = run_module("s3_steps", "--puts", "20", "--pages", "2")
    assert [line.split(":")[0] for line in out.splitlines()] == ["put", "list"]


def test_s3_side_by_side() -> None:
    out = run_module("s3_side_by_side", "--keys", "20", "--rounds", "1", "--lists", "1")
    rows = [line.split()[:3] for line in out.splitlines()[1:]]
    assert rows == [["boto3", "4", "KiB"], ["boto3", "list", "keys/s"], ["raw", "1000-key", "page"]]


def test_every_standalone_bench_module_has_a_smoke_test() -> None:
    """Modules of bench/ run on their own (`python -m bench.<name>`, with a `__main__`
    block) would rot unnoticed without a test here, or a run by bench/peers.sh, which
    the peers test above runs."""
    source = Path(__file__).read_text("utf-8") + (REPO / "bench" / "peers.sh").read_text("utf-8")
    standalone = sorted(
        p.stem
        for p in (REPO / "bench").glob("*.py")
        if p.stem != "__main__" and 'if __name__ == "__main__"' in p.read_text("utf-8")
    )
    assert standalone, "no standalone bench modules found"
    named = [
        m for m in standalone if any(n in source for n in (f'"{m}"', f"bench.{m}", f"/{m}.py"))
    ]
    assert named == standalone
