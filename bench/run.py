"""`make bench`: JustStorage against the physical bounds measured in the same run.

Starts its own servers (`juststorage serve`, granian) on temp data dirs under /tmp,
measures, stops them by PID and removes the temp dir. All traffic goes to 127.0.0.1.
PostgreSQL rows run against a fresh database `juststorage_bench_<random>` on the local
cluster (created here, dropped at the end); if it is not reachable they print as skipped.
Every figure in the final table is paired with its bound or target from this same run.
The machine is shared and noisy (2 vCPU VM, disk on shared storage): compare ratios.

    bench/run.py                       # everything (20-25 minutes with s3 and the peers)
    bench/run.py --only small,list,pg  # a part: rss, large, small, list, pg, scale, s3, peers

`peers` runs bench/peers.sh: the objbench client of ../shared/peers against
JustStorage, nginx (WebDAV) and OpenStack Swift, started and stopped in turn, and
prints issue 7's ratios JustStorage / peer with their targets.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import aiohttp  # noqa: F401
except ImportError:
    sys.exit("bench needs aiohttp: .venv/bin/pip install -e '.[dev,bench]' (make install does it)")

import bounds  # noqa: E402
import peer_ratios  # noqa: E402
import pg  # noqa: E402
import scaleout  # noqa: E402
import small  # noqa: E402
from server import RssSampler, Server, cpu_seconds, free_port, tree  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024
GIB = 1024 * MIB
TENANT = "bench"
REPS_1G = 3
# Direct requests carry no X-Accel-Mapping, so this changes nothing but the nginx row.
ACCEL_ENV = {"JUSTSTORAGE_ACCEL_REDIRECT": "true"}
SMALL_N = 2000
SMALL_SIZE = 4096
SMALL_CONCURRENCY = 16
LIST_N = 100_000
LIST_SAMPLES = 15
RSS_TARGET_MIB = 150.0
SCALE_WORKERS = (1, 2, 3)
SCALE_ORDER = (1, 2, 3, 3, 2, 1)  # each count twice, mirrored, so a drift in load cancels
SCALE_N = 1000
SECTIONS = ("rss", "large", "small", "list", "pg", "scale", "s3", "peers")
PG_PUT_TARGET = 1000  # the limits README's budget for 4 KiB uploads on PostgreSQL


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


@dataclass
class Row:
    group: str
    db: str
    figure: str
    value: str
    bound: str
    ratio: float | None
    ratio_note: str
    target: str
    ok: bool | None


ROWS: list[Row] = []
# Rows print grouped (PostgreSQL beside SQLite), in this order, then in insertion order.
GROUPS = ("rss", "large", "small", "list", "scale", "s3", "peers", "failed")
_current = {"group": "rss", "db": "sqlite"}


def row(
    figure: str,
    value: str,
    bound: str,
    ratio: float | None,
    target: str,
    ok: bool | None,
    ratio_note: str = "",
    *,
    db: str | None = None,
    group: str | None = None,
) -> None:
    ROWS.append(
        Row(
            group or _current["group"],
            db or _current["db"],
            figure,
            value,
            bound,
            ratio,
            ratio_note,
            target,
            ok,
        )
    )


def skip(figure: str, why: str, *, db: str | None = None, group: str | None = None) -> None:
    row(figure, "skipped", why, None, "", None, db=db, group=group)


def free_bytes() -> int:
    return shutil.disk_usage("/tmp").free


# --------------------------------------------------------------------------- service
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
        home = tmp / name
        home.mkdir(parents=True, exist_ok=True)
        self.data = home / "data"
        self.port = free_port()
        self.workers = workers
        self.database = urlsplit(database_url).path.lstrip("/") if database_url else None
        env = {
            **os.environ,
            "JUSTSTORAGE_DATA_DIR": str(self.data),
            "JUSTSTORAGE_LOG_LEVEL": "warning",
        }
        for var in ("API_KEYS", "JWT_SECRET", "JUSTSTORAGE_JWT_PUBLIC_KEY", "DATABASE_URL"):
            env.pop(var, None)
        if database_url:
            env["DATABASE_URL"] = database_url
        env.update(extra_env or {})
        self.bootstrap_key = env.get("API_KEYS", "").split(":", 1)[0]
        argv = [str(VENV_BIN / "juststorage"), "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(self.port), "--workers", str(workers)]
        self.server = Server(argv, env, self.port, home / "server.log")
        self.token = ""

    def start(self) -> None:
        self.server.start()
        if self.bootstrap_key:  # API_KEYS given: no admin.key file is written
            self.token = self.bootstrap_key
            return
        key_file = self.data / "admin.key"
        deadline = time.monotonic() + 10
        while not key_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.token = key_file.read_text().strip()

    def stop(self) -> None:
        self.server.stop()

    @property
    def pid(self) -> int:
        return self.server.pid

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "X-Tenant": TENANT}

    def upload_curl(self, src: Path, namespace: str, key: str, resp_path: Path) -> dict[str, str]:
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


def server_cpu(pid: int) -> float:
    return cpu_seconds(tree(pid))


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu() -> float:
    return time.process_time()


def head_of(path: Path, n: int = 64 * 1024) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


# --------------------------------------------------------------------------- sections
def section_rss(svc: Service, work: Path) -> None:
    """Peak RSS of the server tree during an upload and a download, at two sizes."""
    results: dict[tuple[str, int], RssSampler] = {}
    for size in (256 * MIB, 2 * GIB):
        label = f"{size // MIB} MiB" if size < GIB else f"{size // GIB} GiB"
        if free_bytes() < 2 * size + 2 * GIB:
            for op in ("upload", "download"):
                skip(f"peak RSS, {op} {label}", f"not enough free disk ({free_bytes() >> 30} GiB)")
            continue
        src = work / f"rss-{size}.bin"
        bounds.make_source(src, size, uuid.uuid4().bytes)
        os.sync()
        say(f"RSS: upload {label}")
        cpu0 = server_cpu(svc.pid)
        t0 = time.perf_counter()
        with RssSampler(svc.pid) as up:
            doc = svc.upload_curl(src, "rss", f"rss-{size}", work / "resp.json")
        up_s = time.perf_counter() - t0
        up_cpu = server_cpu(svc.pid) - cpu0
        if int(doc["size_bytes"]) != size:
            raise RuntimeError(f"stored size {doc['size_bytes']} != {size}")
        say(f"RSS: download {label}")
        cpu0 = server_cpu(svc.pid)
        with RssSampler(svc.pid) as down:
            down_s = bounds.http_download(
                svc.port, f"/v1/objects/{doc['id']}", svc.auth(), size, head_of(src)
            )
        down_cpu = server_cpu(svc.pid) - cpu0
        src.unlink()
        results[("upload", size)] = up
        results[("download", size)] = down
        for op, sampler, secs, cpu in (
            ("upload", up, up_s, up_cpu),
            ("download", down, down_s, down_cpu),
        ):
            peak = sampler.tree_peak_mib
            row(
                f"peak RSS, {op} {label}",
                f"{peak:.0f} MiB",
                f"target < {RSS_TARGET_MIB:.0f} MiB",
                peak / RSS_TARGET_MIB,
                "< 1.00",
                peak < RSS_TARGET_MIB,
                f"worker {sampler.worker_baseline_mib:.0f}->{sampler.worker_peak_mib:.0f} MiB; "
                f"{mbps(size, secs):.0f} MB/s, server CPU {cpu:.1f} s",
            )
    for op in ("upload", "download"):
        small_s, big_s = results.get((op, 256 * MIB)), results.get((op, 2 * GIB))
        if small_s and big_s:
            growth = big_s.tree_peak_mib / small_s.tree_peak_mib
            row(
                f"RSS growth, {op} 2 GiB / 256 MiB",
                f"{big_s.tree_peak_mib - small_s.tree_peak_mib:+.0f} MiB",
                "the 256 MiB peak (same run)",
                growth,
                "~1.00 (<= 1.10)",
                growth <= 1.10,
                "object 8x larger",
            )


def section_large(svc: Service, work: Path) -> None:
    """1 GiB upload vs min(SHA-256 speed, write + fsync speed); 1 GiB download vs sendfile
    to a socket (and through nginx)."""
    size = GIB
    if free_bytes() < (2 * REPS_1G + 2) * size:
        skip("upload 1 GiB", f"not enough free disk ({free_bytes() >> 30} GiB)")
        skip("download 1 GiB", "no object uploaded")
        return
    src = work / "large.bin"
    bounds.make_source(src, size, uuid.uuid4().bytes)
    up_ratios, up_http, up_raw, up_hash, up_write, notes = [], [], [], [], [], []
    stored: list[str] = []
    raw_outs = []
    for rep in range(REPS_1G):
        bounds.set_tag(src, f"rep{rep}".encode() + uuid.uuid4().bytes)
        os.sync()
        out = work / f"raw-{rep}.bin"
        raw_outs.append(out)
        hexd, hash_s, write_s = bounds.raw_upload(src, out)
        raw_s = max(hash_s, write_s)  # min(SHA-256 speed, write + fsync speed)
        os.sync()
        cpu0, ccpu0 = server_cpu(svc.pid), children_cpu()
        t0 = time.perf_counter()
        doc = svc.upload_curl(src, "large", f"large-{rep}", work / "resp.json")
        http_s = time.perf_counter() - t0
        s_cpu, c_cpu = server_cpu(svc.pid) - cpu0, children_cpu() - ccpu0
        if doc["content_hash"] != f"sha256:{hexd}" or int(doc["size_bytes"]) != size:
            raise RuntimeError(f"upload returned {doc}, expected sha256:{hexd}")
        stored.append(doc["id"])
        up_raw.append(mbps(size, raw_s))
        up_hash.append(mbps(size, hash_s))
        up_write.append(mbps(size, write_s))
        up_http.append(mbps(size, http_s))
        up_ratios.append(raw_s / http_s)
        notes.append(f"server CPU {s_cpu:.1f} s, curl CPU {c_cpu:.1f} s")
        say(
            f"1 GiB rep {rep}: sha256 {up_hash[-1]:.0f} MB/s, write+fsync {up_write[-1]:.0f}"
            f" MB/s, HTTP {up_http[-1]:.0f} MB/s, "
            f"ratio {up_ratios[-1]:.2f} ({notes[-1]}); content_hash ok"
        )
    row(
        f"upload 1 GiB (curl -T), median of {REPS_1G}",
        f"{statistics.median(up_http):.0f} MB/s",
        f"min(sha256 {statistics.median(up_hash):.0f}, write+fsync"
        f" {statistics.median(up_write):.0f}) MB/s",
        statistics.median(up_ratios),
        ">= 0.90",
        statistics.median(up_ratios) >= 0.90,
        f"per rep {min(up_ratios):.2f}-{max(up_ratios):.2f}; {notes[len(notes) // 2]}",
    )
    head = head_of(src)  # the last rep's content = the last stored object
    blob = svc.blob_path(json.loads((work / "resp.json").read_text())["content_hash"])
    download_row(
        f"download 1 GiB, median of {REPS_1G}",
        download_reps("1 GiB download", svc, svc.port, stored[-1], blob, head),
    )
    download_behind_nginx(svc, work, stored[-1], blob, head)
    src.unlink()
    for out in raw_outs:
        out.unlink()


@dataclass
class DownloadReps:
    """REPS_1G downloads, each right after the sendfile bound it is compared with."""

    speeds: list[float]
    bounds: list[float]
    ratios: list[float]
    note: str


def download_reps(
    label: str, svc: Service, port: int, object_id: str, blob: Path, head: bytes
) -> DownloadReps:
    reps = DownloadReps([], [], [], "")
    size = blob.stat().st_size
    for rep in range(REPS_1G):
        bound_s = bounds.sendfile_download(blob, head)
        cpu0 = server_cpu(svc.pid)
        http_s = bounds.http_download(port, f"/v1/objects/{object_id}", svc.auth(), size, head)
        reps.note = f"server CPU {server_cpu(svc.pid) - cpu0:.2f} s"
        reps.bounds.append(mbps(size, bound_s))
        reps.speeds.append(mbps(size, http_s))
        reps.ratios.append(bound_s / http_s)
        say(
            f"{label} rep {rep}: sendfile {reps.bounds[-1]:.0f} MB/s, "
            f"HTTP {reps.speeds[-1]:.0f} MB/s, ratio {reps.ratios[-1]:.2f} ({reps.note})"
        )
    return reps


def download_row(figure: str, reps: DownloadReps) -> None:
    row(
        figure,
        f"{statistics.median(reps.speeds):.0f} MB/s",
        f"sendfile to 127.0.0.1 reader {statistics.median(reps.bounds):.0f} MB/s",
        statistics.median(reps.ratios),
        ">= 0.90",
        statistics.median(reps.ratios) >= 0.90,
        f"per rep {min(reps.ratios):.2f}-{max(reps.ratios):.2f}; same 1 MiB reader; {reps.note}",
    )


def download_behind_nginx(
    svc: Service, work: Path, object_id: str, blob: Path, head: bytes
) -> None:
    """The same 1 GiB download through nginx (deploy/nginx/juststorage.conf), which sends
    the file with sendfile after the server answered with X-Accel-Redirect."""
    figure = f"download 1 GiB behind nginx (X-Accel-Redirect), median of {REPS_1G}"
    nginx = shutil.which("nginx")
    if nginx is None:
        skip(figure, "nginx not installed (`make bench BENCH_ONLY=peers` installs it)")
        return
    sys.path.insert(0, str(ROOT / "tests"))
    from nginx_proxy import running_nginx

    upstream = f"127.0.0.1:{svc.port}"
    with running_nginx(nginx, work / "nginx", upstream=upstream, data_dir=svc.data) as proxy:
        label = "1 GiB download behind nginx"
        reps = download_reps(label, svc, proxy.port, object_id, blob, head)
        served = proxy.access_log.read_text()
    if "/_juststorage_hot/" not in served:
        raise RuntimeError("nginx did not serve the blob itself: no X-Accel-Redirect taken")
    download_row(figure, reps)


class Bench:
    """What the sections share: temp dirs, the SQLite service, PostgreSQL, the bounds."""

    def __init__(self, tmp: Path, work: Path, pg_url: str | None) -> None:
        self.tmp, self.work, self.pg_url = tmp, work, pg_url
        self._svc: Service | None = None
        self._pg: pg.Postgres | None = None
        self._pg_svc: Service | None = None
        self._small_bounds: tuple[float, small.Phase, small.Phase] | None = None
        self.services: list[Service] = []  # every service started, stopped in close()

    def start(self, svc: Service) -> Service:
        self.services.append(svc)
        svc.start()
        say(f"server pid {svc.pid} ({svc.workers} worker(s)) on {svc.server.url}, {svc.data}")
        return svc

    @property
    def svc(self) -> Service:
        """The SQLite service (1 worker), started on first use."""
        if self._svc is None:
            self._svc = self.start(Service(self.tmp, extra_env=ACCEL_ENV))
        return self._svc

    @property
    def pg(self) -> pg.Postgres:
        if self._pg is None:
            self._pg = pg.Postgres(self.pg_url)
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

    def small_bounds(self) -> tuple[float, small.Phase, small.Phase]:
        """Durable-commit ops/s and the HTTP ceiling (PUT, GET phases), measured once."""
        if self._small_bounds is None:
            say("4 KiB: durable commit bound (no HTTP, no DB)")
            commit_ops = bounds.small_commit_bound(self.work / "commit", 500)
            say("4 KiB: HTTP ceiling (raw ASGI in-memory app on granian, same client)")
            port = free_port()
            argv = [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--loop", "uvloop", "--no-access-log", "--log-level"]
            argv += ["warning", "--workers", "1", "--working-dir", str(Path(__file__).parent)]
            argv += ["floor_app:app"]
            floor = Server(argv, dict(os.environ), port, self.tmp / "floor.log")
            floor.start()
            try:
                fputs, fgets = small.run_small(
                    floor.url, None, TENANT, "small", n=SMALL_N, size=SMALL_SIZE, concurrency=16
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


def probe_for(svc: Service) -> small.Probe:
    """Cumulative CPU seconds: the server tree, this client process, the PostgreSQL
    backends of the service's database, and the whole machine (busy, all CPUs)."""

    def probe() -> dict[str, float]:
        out = {
            "server": server_cpu(svc.pid),
            "client": self_cpu(),
            "busy": busy_cpu_seconds(),
        }
        if svc.database:
            out["db"] = cpu_seconds(pg.backend_pids(svc.database))
        return out

    return probe


def cpu_note(ph: small.Phase) -> str:
    u, secs, ncpu = ph.usage, ph.seconds or 1.0, os.cpu_count() or 1
    parts = [f"server {u.get('server', 0):.1f}", f"client {u.get('client', 0):.1f}"]
    if "db" in u:
        parts.append(f"PG backends {u['db']:.1f}")
    busy = 100 * u.get("busy", 0) / secs / ncpu
    return f"CPU s: {', '.join(parts)}; machine {busy:.0f}% busy over {secs:.1f} s"


def lat(ph: small.Phase) -> str:
    return f"p50 {ph.pct_ms(50):.1f} ms, p99 {ph.pct_ms(99):.1f} ms"


SMALL_RESULTS: dict[tuple[str, str], float] = {}  # (db, op) -> ops/s
PG_CPU = [0.0]  # CPU seconds of the bench databases' backends, summed over measured phases


def run_small_on(svc: Service, namespace: str, n: int) -> tuple[small.Phase, small.Phase]:
    puts, gets = small.run_small(
        svc.server.url,
        svc.token,
        TENANT,
        namespace,
        n=n,
        size=SMALL_SIZE,
        concurrency=SMALL_CONCURRENCY,
        probe=probe_for(svc),
    )
    for ph in (puts, gets):
        PG_CPU[0] += ph.usage.get("db", 0.0)
        if not ph.complete:
            say(f"WARNING {ph.op}: {len(ph.latencies)}/{ph.planned} ok, errors {ph.errors[:2]}")
    return puts, gets


def section_small(bench: Bench, svc: Service, db: str) -> None:
    """4 KiB objects, 16 concurrent clients: vs the durable-commit bound and the HTTP ceiling."""
    commit_ops, fputs, fgets = bench.small_bounds()
    say(f"4 KiB on {db}: {SMALL_N} PUT then {SMALL_N} GET, concurrency {SMALL_CONCURRENCY}")
    puts, gets = run_small_on(svc, "small", SMALL_N)
    say(f"4 KiB on {db}: PUT {puts.ops_per_s:.0f}/s ({cpu_note(puts)})")
    say(f"4 KiB on {db}: GET {gets.ops_per_s:.0f}/s ({cpu_note(gets)})")
    for ph in (fputs, fgets):
        if not ph.complete:
            say(f"WARNING ceiling {ph.op}: {len(ph.latencies)}/{ph.planned} ok")
    SMALL_RESULTS[(db, "PUT")] = puts.ops_per_s
    SMALL_RESULTS[(db, "GET")] = gets.ops_per_s
    target = 1500 if db == "sqlite" else PG_PUT_TARGET
    row(
        "4 KiB PUT x16 vs durable commit",
        f"{puts.ops_per_s:.0f} /s",
        f"file commit, no HTTP/DB {commit_ops:.0f} /s",
        puts.ops_per_s / commit_ops,
        f"target >= {target} /s",
        puts.ops_per_s >= target,
        f"{lat(puts)}; {len(puts.errors)} errors; {cpu_note(puts)}",
        db=db,
        group="small",
    )
    row(
        "4 KiB PUT x16 vs HTTP ceiling",
        f"{puts.ops_per_s:.0f} /s",
        f"in-memory ASGI app {fputs.ops_per_s:.0f} /s",
        puts.ops_per_s / fputs.ops_per_s,
        "(information)",
        None,
        f"ceiling {lat(fputs)}",
        db=db,
        group="small",
    )
    row(
        "4 KiB GET x16 vs HTTP ceiling",
        f"{gets.ops_per_s:.0f} /s",
        f"in-memory ASGI app {fgets.ops_per_s:.0f} /s",
        gets.ops_per_s / fgets.ops_per_s,
        ">= 0.50 (no target given)",
        gets.ops_per_s / fgets.ops_per_s >= 0.5,
        f"{lat(gets)}; bytes compared; {len(gets.errors)} errors; {cpu_note(gets)}",
        db=db,
        group="small",
    )


def compare_backends() -> None:
    """PostgreSQL / SQLite for the 4 KiB figures, when both were measured in this run."""
    for op in ("PUT", "GET"):
        lite, post = SMALL_RESULTS.get(("sqlite", op)), SMALL_RESULTS.get(("postgres", op))
        if lite and post:
            row(
                f"4 KiB {op} x16, PostgreSQL / SQLite",
                f"{post:.0f} / {lite:.0f} /s",
                "SQLite (same run)",
                post / lite,
                "(information)",
                None,
                "1 worker each; same client, same disk",
                db="both",
                group="small",
            )


FILL_USAGE_SQLITE = (
    "INSERT INTO usage_counters (tenant_id, storage_class, shard, objects, size_bytes)"
    " VALUES (?, 'hot', 0, ?, ?) ON CONFLICT (tenant_id, storage_class, shard) DO UPDATE"
    " SET objects = usage_counters.objects + excluded.objects,"
    " size_bytes = usage_counters.size_bytes + excluded.size_bytes"
)


def fill_listing(db: Path, namespace: str, n: int, size: int = 128) -> None:
    """Insert n COMMITTED objects (+ their blob rows and usage counts) straight into
    SQLite, server stopped."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        seq0 = conn.execute("SELECT COALESCE(MAX(commit_seq), 0) FROM objects").fetchone()[0]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        objects, blobs = [], []
        for i in range(n):
            hexd = hashlib.sha256(f"{namespace}/{i}".encode()).hexdigest()
            key = f"obj/{i:07d}"
            objects.append(
                (
                    str(uuid.uuid4()),
                    TENANT,
                    namespace,
                    key,
                    "COMMITTED",
                    "hot",
                    "application/octet-stream",
                    hexd,
                    size,
                    now,
                    now,
                    seq0 + 1 + i,
                )
            )
            blobs.append(("hot", hexd, size, 1, now))
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO objects (id, tenant_id, namespace, key, state, storage_class,"
            " content_type, content_hash, size_bytes, created_at, updated_at, commit_seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            objects,
        )
        conn.executemany(
            "INSERT INTO blobs (storage_class, content_hash, size_bytes, ref_count, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            blobs,
        )
        conn.execute(FILL_USAGE_SQLITE, (TENANT, n, n * size))
        conn.execute("COMMIT")
        objects_n, counted = conn.execute(
            "SELECT (SELECT COUNT(*) FROM objects WHERE tenant_id = ? AND state = 'COMMITTED'),"
            " (SELECT COALESCE(SUM(objects), 0) FROM usage_counters WHERE tenant_id = ?)",
            (TENANT, TENANT),
        ).fetchone()
        if objects_n != counted:
            raise RuntimeError(f"usage_counters say {counted} objects, objects has {objects_n}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def section_list(bench: Bench) -> None:
    svc = bench.svc
    namespace = "list100k"
    say(f"list: stopping the server, inserting {LIST_N} rows directly into SQLite")
    svc.stop()
    t0 = time.perf_counter()
    fill_listing(svc.data / "meta.db", namespace, LIST_N)
    say(f"list: filled in {time.perf_counter() - t0:.1f} s (not through HTTP); restarting")
    svc.start()
    measure_list(svc, namespace, "sqlite", "filled with executemany")


def section_pg(bench: Bench) -> None:
    """The RSS, 1 GiB, 4 KiB and list rows again, on a fresh PostgreSQL database (1 worker)."""
    if not bench.pg.available:
        skip("peak RSS", bench.pg.reason, db="postgres", group="rss")
        skip("upload and download 1 GiB", bench.pg.reason, db="postgres", group="large")
        for figure in (
            "4 KiB PUT x16 vs durable commit",
            "4 KiB PUT x16 vs HTTP ceiling",
            "4 KiB GET x16 vs HTTP ceiling",
        ):
            skip(figure, bench.pg.reason, db="postgres", group="small")
        skip("list 100k", bench.pg.reason, db="postgres", group="list")
        return
    svc = bench.pg_svc
    # Issue 7 asks for RSS and the 1 GiB ratios on both databases.
    for group, run in (("rss", section_rss), ("large", section_large)):
        _current["group"] = group
        try:
            run(svc, bench.work)
        finally:
            _current["group"] = "small"
    section_small(bench, svc, "postgres")
    namespace = "list100k"
    assert svc.database is not None
    say(f"list: inserting {LIST_N} rows into PostgreSQL (generate_series), server running")
    t0 = time.perf_counter()
    url = pg.with_database(bench.pg.url, svc.database)
    pg.fill_listing(url, TENANT, namespace, LIST_N)
    say(f"list: filled + ANALYZE in {time.perf_counter() - t0:.1f} s (not through HTTP)")
    measure_list(svc, namespace, "postgres", "filled with generate_series, then ANALYZE")


def measure_list(svc: Service, namespace: str, db: str, fill_note: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
    auth = {"Authorization": f"Bearer {svc.token}"}

    def page(limit: int, cursor: str | None) -> tuple[float, dict[str, object]]:
        q = {"namespace": namespace, "tenant": TENANT, "limit": str(limit)}
        if cursor:
            q["cursor"] = cursor
        t = time.perf_counter()
        conn.request("GET", "/v1/objects?" + urlencode(q), headers=auth)
        resp = conn.getresponse()
        body = resp.read()
        elapsed = time.perf_counter() - t
        if resp.status != 200:
            raise RuntimeError(f"list -> {resp.status} {body[:200]!r}")
        return elapsed, json.loads(body)

    try:
        # walk everything with limit=1000 (checks completeness, finds the deep cursors)
        cursors: list[str | None] = [None]
        count, last_key, walk0 = 0, "", time.perf_counter()
        for _ in range(LIST_N // 1000 + 5):
            _, doc = page(1000, cursors[-1])
            items = doc["items"]
            assert isinstance(items, list)
            for it in items:
                if it["key"] <= last_key:
                    raise RuntimeError("listing out of order")
                last_key = it["key"]
            count += len(items)
            if not doc["next_cursor"]:
                break
            cursors.append(str(doc["next_cursor"]))
        walk_s = time.perf_counter() - walk0
        if count != LIST_N:
            raise RuntimeError(f"listed {count}, inserted {LIST_N}")
        say(f"list on {db}: walked {count} objects in {len(cursors)} pages, {walk_s:.2f} s")
        last_cursor = cursors[-1]  # the last page of 1000
        deep_cursor_100 = cursors[-1]  # after 99,000 items: page 991 of 1000 at limit=100

        def median_ms(limit: int, cursor: str | None) -> tuple[float, float]:
            for _ in range(2):
                page(limit, cursor)  # warm
            times = [page(limit, cursor)[0] for _ in range(LIST_SAMPLES)]
            return statistics.median(times) * 1e3, max(times) * 1e3

        results = {
            "limit=1000, first page": median_ms(1000, None),
            "limit=1000, last page (items 99,001-100,000)": median_ms(1000, last_cursor),
            "limit=100, first page": median_ms(100, None),
            "limit=100, deep page (items 99,001-99,100)": median_ms(100, deep_cursor_100),
        }
    finally:
        conn.close()
    for name, (med, worst) in results.items():
        row(
            f"list 100k, {name}",
            f"{med:.1f} ms",
            "target 20 ms",
            med / 20.0,
            "< 1.00",
            med < 20.0,
            f"median of {LIST_SAMPLES}, max {worst:.1f} ms",
            db=db,
            group="list",
        )
    for limit, first, deep in (
        (1000, "limit=1000, first page", "limit=1000, last page (items 99,001-100,000)"),
        (100, "limit=100, first page", "limit=100, deep page (items 99,001-99,100)"),
    ):
        ratio = results[deep][0] / results[first][0]
        row(
            f"list 100k, limit={limit}: deep / first",
            f"{results[deep][0]:.1f} / {results[first][0]:.1f} ms",
            "first page (same run)",
            ratio,
            "~1.00 (<= 1.25)",
            ratio <= 1.25,
            f"full walk of 100k at limit=1000: {walk_s:.2f} s; {fill_note}",
            db=db,
            group="list",
        )


def section_scale(bench: Bench) -> None:
    """4 KiB PUT and GET x16 with `serve --workers 1/2/3` (one port), per backend; each
    figure as a ratio to the 1-worker figure of this run. Each count runs twice, in the
    order 1,2,3,3,2,1, on one data dir (and one database) per backend."""
    for db in ("sqlite", "postgres"):
        if db == "postgres" and not bench.pg.available:
            for op in ("PUT", "GET"):
                for w in SCALE_WORKERS:
                    skip(f"4 KiB {op} x16, {w} process(es)", bench.pg.reason, db=db, group="scale")
            continue
        url = None
        if db == "postgres":
            url = bench.pg.create_database()
            say(f"created database {url.rsplit('/', 1)[1]} for the scaling runs")
        got: dict[tuple[str, int], list[small.Phase]] = {}
        for rep, workers in enumerate(SCALE_ORDER):
            svc = bench.start(Service(bench.tmp, f"scale-{db}", url, workers))
            try:
                puts, gets = run_small_on(svc, f"scale-{rep}", SCALE_N)
            finally:
                svc.stop()
            say(
                f"scale {db} x{workers}: PUT {puts.ops_per_s:.0f}/s ({cpu_note(puts)}); "
                f"GET {gets.ops_per_s:.0f}/s ({cpu_note(gets)})"
            )
            got.setdefault(("PUT", workers), []).append(puts)
            got.setdefault(("GET", workers), []).append(gets)
        for op in ("PUT", "GET"):
            base = statistics.mean(p.ops_per_s for p in got[(op, 1)])
            for w in SCALE_WORKERS:
                phases = got[(op, w)]
                rates = [p.ops_per_s for p in phases]
                mean = statistics.mean(rates)
                errors = sum(len(p.errors) for p in phases)
                row(
                    f"4 KiB {op} x16, {w} process{'es' if w > 1 else ''}",
                    f"{mean:.0f} /s",
                    f"1 process {base:.0f} /s (same run)",
                    mean / base,
                    "(information)",
                    None if errors == 0 else False,
                    f"runs {' / '.join(f'{r:.0f}' for r in rates)}; {errors} errors; "
                    f"1st run {cpu_note(phases[0])}",
                    db=db,
                    group="scale",
                )


def section_s3(bench: Bench) -> None:
    """Issue #10 part 6: 4 KiB and 256 MiB PUT/GET with blobs on SeaweedFS through 1 and
    3 hosts, beside 1 host on the file system, and the same workload straight to
    SeaweedFS's S3 endpoint; every row's ratio is to the direct figure (bench/scaleout.py)."""
    configs = (("file system", 1), ("SeaweedFS", 1), ("SeaweedFS", 3))
    if not bench.pg.available:
        for blobs, hosts in configs:
            skip(f"{blobs}, {hosts} host(s)", bench.pg.reason, db="postgres", group="s3")
        return
    with scaleout.seaweedfs(bench.tmp) as weed:
        say(f"SeaweedFS at {weed.endpoint_url} (pid {weed.pid})")
        direct_small = scaleout.direct_small(weed)
        direct_large = {n: scaleout.direct_large(weed, bench.work, n) for n in (1, 3)}
        say(
            f"S3 direct: 4 KiB PUT {direct_small[0]:.0f}/s GET {direct_small[1]:.0f}/s; 256 MiB"
            + "".join(
                f" x{n} PUT {up:.0f} MB/s GET {down:.0f} MB/s"
                for n, (up, down) in direct_large.items()
            )
        )
        for blobs, count in configs:
            url = bench.pg.create_database()
            prefix = f"bench-{uuid.uuid4().hex[:8]}"
            env = scaleout.host_env(weed if blobs == "SeaweedFS" else None, prefix)
            name = f"scaleout-{blobs.split()[0].lower()}-{count}"
            hosts = [
                bench.start(Service(bench.tmp, f"{name}-{n}", url, 1, env)) for n in range(count)
            ]
            try:
                urls = [h.server.url for h in hosts]
                puts, gets = scaleout.run_small(urls, TENANT, f"{name}-small")
                up, down = scaleout.large_streams(hosts, bench.work)
            finally:
                for host in hosts:
                    host.stop()
            label = f"{blobs}, {count} host{'s' if count > 1 else ''}"
            say(
                f"{label}: 4 KiB PUT {puts.ops_per_s:.0f}/s GET {gets.ops_per_s:.0f}/s;"
                f" 256 MiB x{count} PUT {up:.0f} MB/s GET {down:.0f} MB/s"
            )
            errors = len(puts.errors) + len(gets.errors)
            ok = None if errors == 0 and puts.complete and gets.complete else False
            d_up, d_down = direct_large[count]
            streams = f"{count} stream{'s' if count > 1 else ''} at once"
            for figure, value, unit, direct, note in (
                ("4 KiB PUT x16", puts.ops_per_s, "/s", direct_small[0], lat(puts)),
                ("4 KiB GET x16", gets.ops_per_s, "/s", direct_small[1], lat(gets)),
                (f"256 MiB PUT, {streams}", up, "MB/s", d_up, "aggregate"),
                (f"256 MiB GET, {streams}", down, "MB/s", d_down, "aggregate"),
            ):
                row(
                    f"{figure}, {label}",
                    f"{value:.0f} {unit}",
                    f"SeaweedFS S3 direct {direct:.0f} {unit}",
                    value / direct if direct else None,
                    "(information)",
                    ok,
                    f"{note}; {errors} errors" if "4 KiB" in figure else note,
                    db="postgres",
                    group="s3",
                )


# --------------------------------------------------------------------------- table
# Issue 7's targets: (workload, op) -> {peer: minimum ratio JustStorage / peer or None}
PEER_TARGETS: dict[tuple[str, str], dict[str, float | None]] = {
    ("small", "PUT"): {"swift": 10.0, "nginx": 1.0},
    ("small", "GET"): {"swift": 10.0, "nginx": 1.0},
    ("large", "PUT"): {"swift": 3.0, "nginx": None},
    ("large", "GET"): {"swift": None, "nginx": 0.9},
    ("list", "LIST"): {"swift": 5.0},
}
PEER_UNITS = {"small": "ops/s", "large": "MB/s", "list": "names/s"}


def section_peers(tmp: Path) -> None:
    """objbench against JustStorage, nginx (WebDAV) and Swift, back to back (bench/peers.sh)."""
    out = tmp / "peers"
    out.mkdir()
    env = {**os.environ, "OUT": str(out)}
    say("peers: bench/peers.sh (JustStorage, then nginx, then Swift; several minutes)")
    done = subprocess.run(
        ["bash", str(Path(__file__).with_name("peers.sh"))],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=1800,
        check=False,
    )
    print(done.stdout[-3000:], file=sys.stderr)
    results = {t: peer_ratios.load(out, t) for t in peer_ratios.TARGETS}
    for (workload, op), targets in PEER_TARGETS.items():
        ours = results["juststorage"].get((workload, op))
        unit = PEER_UNITS[workload]
        for peer, minimum in targets.items():
            theirs = results[peer].get((workload, op))
            figure = f"objbench {workload} {op} vs {peer}"
            if not ours or not theirs or not theirs["value"]:
                skip(figure, f"no result (peers.sh exit {done.returncode})")
                continue
            ratio = ours["value"] / theirs["value"]
            errors = int(ours["errors"] + theirs["errors"])
            row(
                figure,
                f"{ours['value']:.0f} {unit}",
                f"{peer} {theirs['value']:.0f} {unit}",
                ratio,
                "report" if minimum is None else f">= {minimum:g}",
                None if minimum is None else ratio >= minimum,
                f"p99 ms {ours['p99']:.0f} / {theirs['p99']:.0f}; errors {errors}",
            )


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def ours_cpu_seconds() -> float:
    """This process plus every child it has waited for (servers, curl, granian)."""
    return self_cpu() + children_cpu()


def print_table(noise: str = "") -> None:
    head = (
        "figure",
        "db",
        "measured",
        "bound / target (this run)",
        "ratio",
        "target",
        "ok",
        "notes",
    )
    cells = [head]
    order = {g: i for i, g in enumerate(GROUPS)}
    for r in sorted(ROWS, key=lambda r: order.get(r.group, len(GROUPS))):  # stable
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        ok = {True: "yes", False: "NO", None: "-"}[r.ok]
        cells.append((r.figure, r.db, r.value, r.bound, ratio, r.target, ok, r.ratio_note))
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    print()
    print("JustStorage bench (ratios pair figures measured in this same run; machine is shared)")
    if noise:
        print(noise)
    for j, c in enumerate(cells):
        print(" | ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip())
        if j == 0:
            print("-+-".join("-" * w for w in widths))


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY") or ",".join(SECTIONS),
        help=f"comma-separated sections to run, of: {', '.join(SECTIONS)}"
        " [default: $BENCH_ONLY (`make bench BENCH_ONLY=small,pg`), else all]",
    )
    ap.add_argument(
        "--pg-url",
        default=None,
        help="PostgreSQL server to create the bench database on (127.0.0.1 only)"
        f" [default: $JUSTSTORAGE_BENCH_PG_URL or {pg.DEFAULT_ADMIN_URL}]",
    )
    args = ap.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown or not args.sections:
        ap.error(f"--only: unknown {', '.join(unknown) or '(empty)'}; use {', '.join(SECTIONS)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    free = free_bytes()
    say(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, /tmp free {free / 2**30:.0f} GiB; "
        f"python {sys.version.split()[0]}; sections: {', '.join(args.sections)}"
    )
    if free < 2 * GIB:
        print("less than 2 GiB free under /tmp: nothing can be measured", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="jsbench-", dir="/tmp"))
    work = tmp / "work"
    work.mkdir()
    bench = Bench(tmp, work, args.pg_url)
    failed = False
    load0, busy0, ours0, wall0 = (
        os.getloadavg()[0],
        busy_cpu_seconds(),
        ours_cpu_seconds(),
        time.time(),
    )
    runners = {
        "rss": lambda: section_rss(bench.svc, work),
        "large": lambda: section_large(bench.svc, work),
        "small": lambda: section_small(bench, bench.svc, "sqlite"),
        "list": lambda: section_list(bench),
        "pg": lambda: section_pg(bench),
        "scale": lambda: section_scale(bench),
        "s3": lambda: section_s3(bench),
        "peers": lambda: section_peers(tmp),
    }
    try:
        for name in SECTIONS:
            if name not in args.sections:
                continue
            _current["group"] = "small" if name == "pg" else name
            _current["db"] = "postgres" if name == "pg" else "sqlite"
            try:
                runners[name]()
            except Exception as exc:  # one broken section must not hide the others
                failed = True
                say(f"section {name} FAILED: {type(exc).__name__}: {exc}")
                skip(f"section {name}", f"failed: {exc}"[:80], group="failed")
                for svc in bench.services:
                    say(f"server log tail ({svc.server.url}):\n" + svc.server.log_tail())
    finally:
        try:
            bench.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    compare_backends()
    wall = time.time() - wall0
    others = max(0.0, busy_cpu_seconds() - busy0 - (ours_cpu_seconds() - ours0))
    print_table(
        f"noise: load avg {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end; CPU used by"
        f" processes other than this bench and its children: {others:.0f} s over {wall:.0f} s"
        f" wall ({100 * others / wall / (os.cpu_count() or 1):.0f}% of {os.cpu_count()} CPUs;"
        f" includes kernel write-back threads, and PostgreSQL: its backends for the bench's"
        f" databases used {PG_CPU[0]:.0f} s during the 4 KiB phases)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
