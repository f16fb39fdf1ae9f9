"""A throwaway PostgreSQL cluster that a test may stop, start, freeze and fill up.

`initdb` into a temporary directory (as the `postgres` user when we are root:
initdb refuses root), listening on 127.0.0.1 on a free port with its socket in
that directory; the machine's own cluster is never touched. Every process is
signalled by the PID this cluster's postmaster wrote, never by name. Without the
PostgreSQL binaries the tests skip locally and fail in CI (`CI=true`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest

from juststorage.testing import child_pids, free_port
from support.pg_databases import _in_ci, _run

PG_BIN_ENV = "JUSTSTORAGE_TEST_PG_BIN"
PG_TIMEOUT_S = 30.0


def _pg_bin() -> Path | None:
    """The directory of initdb and pg_ctl: from the environment, PATH or Debian's layout."""
    candidates = [os.environ.get(PG_BIN_ENV, "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    candidates += sorted((str(p) for p in Path("/usr/lib/postgresql").glob("*/bin")), reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _skip_or_fail(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class PgCluster:
    """One cluster of our own: `url(db)`, `admin(sql)`, and start/stop/freeze."""

    bin_dir: Path
    workdir: Path
    port: int
    run_as: list[str]  # `runuser -u postgres --` when we are root, else nothing

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c full_page_writes=off -c max_connections=30"
        )
        argv = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-o", options, "-w"]
        argv += ["-t", str(int(PG_TIMEOUT_S)), "-l", str(self.workdir / "log"), *args]
        subprocess.run(
            [*self.run_as, *argv],
            check=True,
            capture_output=True,
            timeout=PG_TIMEOUT_S + 5,
            stdin=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast` (sessions told to end) or `immediate` (a crash)."""
        self._pg_ctl("stop", "-m", mode)

    def _pids(self) -> list[int]:
        """The postmaster (from its pid file) and its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        return [postmaster, *child_pids(postmaster)]

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP to every process of the cluster: it accepts TCP but never answers."""
        pids = self._pids()
        try:
            for pid in pids:
                os.kill(pid, signal.SIGSTOP)
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)

    def admin(self, sql: str, database: str = "postgres") -> None:
        _run(_execute(self.url(database), sql))

    def create_database(self, name: str) -> str:
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def terminate_backends(self, database: str) -> None:
        self.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class ConnectionHog:
    """Another client holding connections; `execute` runs SQL on the first of them."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._loop = asyncio.new_event_loop()
        self.connections: list[asyncpg.Connection] = []

    def fill(self) -> None:
        """Open connections until the server refuses one (TooManyConnections)."""

        async def fill() -> None:
            while len(self.connections) < 500:
                try:
                    self.connections.append(await asyncpg.connect(self._url, timeout=5))
                except asyncpg.TooManyConnectionsError:
                    return
            raise RuntimeError("the server took 500 connections without refusing one")

        self._loop.run_until_complete(fill())

    def execute(self, sql: str) -> None:
        self._loop.run_until_complete(self.connections[0].execute(sql))

    def close(self) -> None:
        for conn in self.connections:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(conn.close(timeout=2))
        self._loop.close()


@contextlib.contextmanager
def connection_hog(url: str) -> Iterator[ConnectionHog]:
    """Every connection slot of the server taken by another client inside the block."""
    hog = ConnectionHog(url)
    try:
        hog.fill()
        yield hog
    finally:
        hog.close()


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[PgCluster]:
    """A started cluster of our own, stopped and removed afterwards."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        _skip_or_fail(f"no PostgreSQL binaries (initdb, pg_ctl): set {PG_BIN_ENV}")
    run_as: list[str] = []
    # The postgres user must reach its files: a dir of its own, outside pytest's 0700 tree.
    workdir = Path(tempfile.mkdtemp(prefix="js-dbstates-pg-"))
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(workdir)
            _skip_or_fail("running as root without a postgres user to run initdb as")
        shutil.chown(workdir, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run(
            [*run_as, str(bin_dir / "initdb"), "-D", str(workdir / "data"), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        cluster = PgCluster(bin_dir, workdir, free_port(), run_as)
        cluster.start()
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            cluster.stop("immediate")
        shutil.rmtree(workdir, ignore_errors=True)
