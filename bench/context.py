"""What the sections share: the sizes of a run, the servers, PostgreSQL, the 4 KiB bounds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from juststorage import testing

from . import bounds, load, postgres
from .procfs import busy_cpu_seconds, cpu_seconds, tree
from .table import say

MIB = 1024 * 1024
GIB = 1024 * MIB
TENANT = "bench"
SMALL_SIZE = 4096
SMALL_CONCURRENCY = 16
# Direct requests carry no X-Accel-Mapping, so this changes nothing but the nginx row.
ACCEL_ENV = {"JUSTSTORAGE_ACCEL_REDIRECT": "true"}
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Sizes:
    """How much each section moves. FULL is `make bench`; TINY only proves that every
    section still runs end to end (`--tiny`, the smoke tests), its figures mean nothing."""

    rss_bytes: tuple[int, int]
    large_bytes: int
    large_reps: int
    small_n: int
    commit_bound_n: int
    list_n: int  # a multiple of 1000
    list_samples: int
    scale_n: int
    scale_order: tuple[int, ...]  # worker counts, each twice and mirrored: drifts cancel
    s3_small_n: int
    s3_large_bytes: int  # also the large object of the `s3gw` section
    s3gw_keys: int  # 4 KiB objects through each S3 endpoint, then listed
    s3gw_rclone_files: int  # 4 KiB files rclone copies up and down
    inline_n: int  # objects per size and mode in the `inline` section (and its bounds)
    multipart_bytes: int  # the file of the `multipart` section
    multipart_part_bytes: int | None  # its parts; None: the CLI's default
    backup_objects: int  # the `backup` section's store: objects in all,
    backup_small_objects: int  # of them 4-64 KiB (inline), the rest large file blobs,
    backup_bytes: int  # making up this total
    min_free_bytes: int
    peers_env: tuple[tuple[str, str], ...]  # for bench/peers.sh (objbench sizes, settle time)
    # The `scrub` section: bytes of 1 MiB blobs, the scrub rate, the window its rate is
    # measured over, the 4 KiB objects its GETs read, the GETs of each phase (6,000:
    # 60 samples above the p99) and the rounds of one idle and one scrubbing phase.
    scrub_bulk_bytes: int = 128 * MIB
    scrub_rate: int = 32 * MIB
    scrub_window_s: float = 20.0
    scrub_get_n: int = 6000
    scrub_get_objects: int = 1000
    scrub_rounds: int = 3

    @property
    def scale_workers(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.scale_order)))


FULL = Sizes(
    rss_bytes=(256 * MIB, 2 * GIB),
    large_bytes=GIB,
    large_reps=3,
    small_n=2000,
    commit_bound_n=500,
    list_n=100_000,
    list_samples=15,
    scale_n=1000,
    scale_order=(1, 2, 3, 3, 2, 1),
    s3_small_n=1000,
    s3_large_bytes=256 * MIB,
    s3gw_keys=10_000,
    s3gw_rclone_files=2000,
    inline_n=2000,
    multipart_bytes=4 * GIB,
    multipart_part_bytes=None,
    backup_objects=10_000,
    backup_small_objects=9_000,
    backup_bytes=10 * GIB,
    min_free_bytes=2 * GIB,
    peers_env=(),  # objbench's own defaults, PEERS_SETTLE_S of peers.sh
)
TINY = Sizes(
    rss_bytes=(1 * MIB, 8 * MIB),
    large_bytes=4 * MIB,
    large_reps=1,
    small_n=40,
    commit_bound_n=20,
    list_n=2000,
    list_samples=2,
    scale_n=20,
    scale_order=(1, 2),
    s3_small_n=20,
    s3_large_bytes=2 * MIB,
    s3gw_keys=30,
    s3gw_rclone_files=20,
    inline_n=20,
    multipart_bytes=16 * MIB,
    multipart_part_bytes=MIB,
    backup_objects=40,
    backup_small_objects=36,
    backup_bytes=16 * MIB,
    min_free_bytes=256 * MIB,
    peers_env=(
        ("OBJBENCH_ARGS", "--n 50 --large-count 1 --large-size 1MiB --list-n 100"),
        ("PEERS_SETTLE_S", "0"),
    ),
    scrub_bulk_bytes=4 * MIB,
    scrub_rate=2 * MIB,
    scrub_window_s=2.0,
    scrub_get_n=40,
    scrub_get_objects=20,
    scrub_rounds=2,
)
# `BENCH_SIZE=small`: a quarter of FULL's counts, no 1 GiB objects, the peers' settle
# time kept: figures worth reading as ratios, in a few minutes per section.
SMALL = replace(
    FULL,
    rss_bytes=(64 * MIB, 256 * MIB),
    large_bytes=256 * MIB,
    large_reps=1,
    small_n=500,
    commit_bound_n=200,
    list_n=20_000,
    list_samples=5,
    scale_n=500,
    s3_small_n=300,
    s3_large_bytes=64 * MIB,
    s3gw_keys=2500,
    s3gw_rclone_files=500,
    inline_n=500,
    multipart_bytes=GIB,
    backup_objects=1000,
    backup_small_objects=900,
    backup_bytes=GIB,
    min_free_bytes=GIB,
    peers_env=(("OBJBENCH_ARGS", "--n 500 --large-count 1 --large-size 256MiB --list-n 2000"),),
)
SIZES = {"full": FULL, "small": SMALL, "tiny": TINY}


def size_label(size: int) -> str:
    """`1 GiB`, `256 MiB`: the unit that divides the size."""
    return f"{size // GIB} GiB" if size >= GIB and size % GIB == 0 else f"{size // MIB} MiB"


def free_bytes() -> int:
    return shutil.disk_usage("/tmp").free


class Service:
    """`juststorage serve --workers N` on 127.0.0.1, data in tmp/<name>/data; SQLite there,
    or PostgreSQL when `database_url` is given. Services with the same name share the
    data dir (and so, for SQLite, the database): a restart keeps the data."""

    def __init__(
        self,
        tmp: Path,
        name: str = "sqlite",
        database_url: str | None = None,
        workers: int = 1,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.home = tmp / name
        self.home.mkdir(parents=True, exist_ok=True)
        self.data = self.home / "data"
        self.workers = workers
        self.database_url = database_url
        self.database = urlsplit(database_url).path.lstrip("/") if database_url else None
        self.env = dict(extra_env or {})
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self._server: testing.Server | None = None
        self.token = ""

    @property
    def server(self) -> testing.Server:
        assert self._server is not None, "service not started"
        return self._server

    def start(self) -> None:
        """Start (or restart: on a new port, same data) and read the admin token."""
        self._server = testing.start(self.home, self.env, data_dir=self.data, workers=self.workers)
        bootstrap_key = self.env.get("API_KEYS", "").split(":", 1)[0]
        # With API_KEYS no admin.key file is written.
        self.token = bootstrap_key or self.server.admin_key

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @property
    def pid(self) -> int:
        return self.server.pid

    @property
    def port(self) -> int:
        return self.server.port

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Tenant": TENANT}

    def upload_curl(self, src: Path, namespace: str, key: str, resp_path: Path) -> dict[str, str]:
        """POST `src` with `curl -T` (streamed from the file); the JSON answer."""
        argv = ["curl", "-sS", "--max-time", "600", "-o", str(resp_path), "-w", "%{http_code}"]
        argv += ["-H", "Expect:", "-H", "Content-Type: application/octet-stream"]
        for k, v in {**self.auth(), "X-Namespace": namespace, "X-Key": key}.items():
            argv += ["-H", f"{k}: {v}"]
        argv += ["-X", "POST", "-T", str(src), f"{self.server.url}/v1/objects"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=660)
        if out.stdout.strip() != "201":
            raise RuntimeError(
                f"upload -> {out.stdout!r} {out.stderr!r} {resp_path.read_text()[:300]!r}"
            )
        doc: dict[str, str] = json.loads(resp_path.read_text())
        return doc

    def blob_path(self, content_hash: str) -> Path:
        hexd = content_hash.removeprefix("sha256:")
        return self.data / "hot" / "sha256" / hexd[:2] / hexd[2:4] / hexd


class Bench:
    """One run: temp dirs, sizes, the SQLite service, PostgreSQL, the 4 KiB bounds.
    Everything it starts is stopped (and every database dropped) by close()."""

    def __init__(self, tmp: Path, work: Path, pg_url: str | None, sizes: Sizes) -> None:
        self.tmp, self.work, self.pg_url, self.sizes = tmp, work, pg_url, sizes
        self._svc: Service | None = None
        self._pg: postgres.Postgres | None = None
        self._pg_svc: Service | None = None
        self._small_bounds: tuple[float, load.Phase, load.Phase] | None = None
        self.services: list[Service] = []

    def start(self, svc: Service) -> Service:
        svc.start()  # a server that does not come up is stopped, its log in the error
        self.services.append(svc)
        say(f"server pid {svc.pid} ({svc.workers} worker(s)) on {svc.server.url}, {svc.data}")
        return svc

    @property
    def svc(self) -> Service:
        """The SQLite service (1 worker), started on first use."""
        if self._svc is None:
            self._svc = self.start(Service(self.tmp, extra_env=ACCEL_ENV))
        return self._svc

    @property
    def pg(self) -> postgres.Postgres:
        if self._pg is None:
            self._pg = postgres.Postgres(self.pg_url)
            if self._pg.available:
                say(f"PostgreSQL {self._pg.version} at {self._pg.url}")
            else:
                say(f"PostgreSQL rows skipped: {self._pg.reason}")
        return self._pg

    @property
    def pg_svc(self) -> Service:
        """A service (1 worker) on a fresh PostgreSQL database, started on first use."""
        if self._pg_svc is None:
            url = self.pg.create_database()
            say(f"created database {url.rsplit('/', 1)[1]}")
            self._pg_svc = self.start(Service(self.tmp, "postgres", url, extra_env=ACCEL_ENV))
        return self._pg_svc

    def small_bounds(self) -> tuple[float, load.Phase, load.Phase]:
        """Durable-commit ops/s and the HTTP ceiling (PUT, GET phases), measured once."""
        if self._small_bounds is None:
            say("4 KiB: durable commit bound (no HTTP, no DB)")
            commit_ops = bounds.small_commit_bound(self.work / "commit", self.sizes.commit_bound_n)
            say("4 KiB: HTTP ceiling (raw ASGI in-memory app on granian, same client)")
            port = testing.free_port()
            argv = [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--loop", "uvloop", "--no-access-log", "--log-level"]
            argv += ["warning", "--workers", "1", "--working-dir", str(Path(__file__).parent)]
            argv += ["floor_app:app"]
            floor = testing.spawn(argv, dict(os.environ), self.tmp / "floor.log", port)
            try:
                fputs, fgets = load.run_small(
                    floor.url,
                    None,
                    TENANT,
                    "small",
                    n=self.sizes.small_n,
                    size=SMALL_SIZE,
                    concurrency=SMALL_CONCURRENCY,
                )
            finally:
                floor.stop()
            self._small_bounds = (commit_ops, fputs, fgets)
        return self._small_bounds

    def close(self) -> None:
        for svc in self.services:
            svc.stop()
        if self._pg is not None and self._pg.created:
            dropped = self._pg.drop_all()
            say(f"dropped database(s) {', '.join(dropped)}")


def server_cpu(pid: int) -> float:
    return cpu_seconds(tree(pid))


def probe_for(svc: Service) -> load.Probe:
    """Cumulative CPU seconds: the server tree, this client process, the PostgreSQL
    backends of the service's database, and the whole machine (busy, all CPUs)."""

    def probe() -> dict[str, float]:
        out = {
            "server": server_cpu(svc.pid),
            "client": time.process_time(),
            "busy": busy_cpu_seconds(),
        }
        if svc.database:
            out["db"] = cpu_seconds(postgres.backend_pids(svc.database))
        return out

    return probe


def cpu_note(ph: load.Phase) -> str:
    u, secs, ncpu = ph.usage, ph.seconds or 1.0, os.cpu_count() or 1
    parts = [f"server {u.get('server', 0):.1f}", f"client {u.get('client', 0):.1f}"]
    if "db" in u:
        parts.append(f"PG backends {u['db']:.1f}")
    busy = 100 * u.get("busy", 0) / secs / ncpu
    return f"CPU s: {', '.join(parts)}; machine {busy:.0f}% busy over {secs:.1f} s"


def lat(ph: load.Phase) -> str:
    return f"p50 {ph.pct_ms(50):.1f} ms, p99 {ph.pct_ms(99):.1f} ms"


def run_small_on(
    svc: Service, namespace: str, n: int, size: int = SMALL_SIZE
) -> tuple[load.Phase, load.Phase, float]:
    """n PUTs of `size` bytes (4 KiB) then GETs x16 against `svc`: the two phases and the
    CPU seconds its PostgreSQL backends used (0 on SQLite)."""
    puts, gets = load.run_small(
        svc.server.url,
        svc.token,
        TENANT,
        namespace,
        n=n,
        size=size,
        concurrency=SMALL_CONCURRENCY,
        probe=probe_for(svc),
    )
    db_cpu = 0.0
    for ph in (puts, gets):
        db_cpu += ph.usage.get("db", 0.0)
        if not ph.complete:
            say(f"WARNING {ph.op}: {len(ph.latencies)}/{ph.planned} ok, errors {ph.errors[:2]}")
    return puts, gets, db_cpu
