"""The server's main process stays light: granian alone, the application in the workers.

Granian's main process forks the workers and never handles a request. When it had
imported the application (as the CLI does to check the settings), its pages were
counted once in it and again in every worker: an idle server was 139 MiB of RSS
summed over its processes, against 109 MiB with a main process of granian alone.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import httpx
import pytest

from juststorage.testing import Server, child_pids, start

# Extension modules the application loads (database drivers, JWT's cryptography, the
# S3 client, pydantic): each maps a shared object of its own.
APP_EXTENSIONS = ("pydantic_core", "asyncpg", "obstore", "_rust.abi3")
# Granian, Python and the logging setup: about 32 MiB; with the application 74 MiB.
MAIN_RSS_MAX_MIB = 48
# The whole tree while one 64 MiB upload runs: 110-120 MiB measured; the target is 150.
TREE_RSS_MAX_MIB = 150


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start(tmp_path_factory.mktemp("memory"), {})
    try:
        yield running
    finally:
        running.stop()


def mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as f:
        return {os.path.basename(line.split()[-1]) for line in f if "/" in line}


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def loads(files: set[str], extension: str) -> bool:
    return any(extension in name and name.endswith(".so") for name in files)


def test_the_main_process_has_not_loaded_the_application(server: Server) -> None:
    workers = child_pids(server.pid)
    assert len(workers) == 1
    main_files, worker_files = mapped_files(server.pid), mapped_files(workers[0])
    for extension in APP_EXTENSIONS[:1]:  # the worker loads what the settings need
        assert loads(worker_files, extension), extension
    assert [e for e in APP_EXTENSIONS if loads(main_files, e)] == []
    assert rss_mib(server.pid) < MAIN_RSS_MAX_MIB


def test_the_tree_stays_under_the_target_during_an_upload(server: Server) -> None:
    size = 64 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    peak = 0.0

    def body() -> Iterator[bytes]:
        nonlocal peak
        for _ in range(size // len(block)):
            peak = max(peak, sum(rss_mib(p) for p in [server.pid, *child_pids(server.pid)]))
            yield block

    headers = {
        **server.admin_headers(),
        "X-Tenant": "memory",
        "X-Namespace": "memory",
        "X-Key": "big",
        "Content-Length": str(size),
    }
    response = server.client.post(
        "/v1/objects", content=body(), headers=headers, timeout=httpx.Timeout(120.0)
    )
    assert response.status_code in (200, 201), response.text
    expected = hashlib.sha256(block * (size // len(block))).hexdigest()
    assert response.json()["content_hash"] == f"sha256:{expected}"
    assert 0 < peak < TREE_RSS_MAX_MIB
