"""`make bench`: JustStorage against the physical bounds measured in the same run.

Starts its own server (`juststorage serve`, granian, 1 worker) on a temp data dir under
/tmp, measures, stops it by PID and removes the temp dir. All traffic goes to 127.0.0.1.
Every figure in the final table is paired with its bound or target from this same run.
The machine is shared and noisy (2 vCPU VM, disk on shared storage): compare ratios.
"""

from __future__ import annotations

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
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import aiohttp  # noqa: F401
except ImportError:
    sys.exit("bench needs aiohttp: .venv/bin/pip install -e '.[dev,bench]' (make install does it)")

import bounds  # noqa: E402
import small  # noqa: E402
from server import RssSampler, Server, cpu_seconds, free_port, tree  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
MIB = 1024 * 1024
GIB = 1024 * MIB
TENANT = "bench"
REPS_1G = 3
SMALL_N = 2000
SMALL_SIZE = 4096
SMALL_CONCURRENCY = 16
LIST_N = 100_000
LIST_SAMPLES = 15
RSS_TARGET_MIB = 150.0


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


@dataclass
class Row:
    figure: str
    value: str
    bound: str
    ratio: float | None
    ratio_note: str
    target: str
    ok: bool | None


ROWS: list[Row] = []


def row(
    figure: str,
    value: str,
    bound: str,
    ratio: float | None,
    target: str,
    ok: bool | None,
    ratio_note: str = "",
) -> None:
    ROWS.append(Row(figure, value, bound, ratio, ratio_note, target, ok))


def skip(figure: str, why: str) -> None:
    ROWS.append(Row(figure, "skipped", why, None, "", "", None))


def free_bytes() -> int:
    return shutil.disk_usage("/tmp").free


# --------------------------------------------------------------------------- service
class Service:
    def __init__(self, tmp: Path) -> None:
        self.data = tmp / "data"
        self.port = free_port()
        env = {
            **os.environ,
            "JUSTSTORAGE_DATA_DIR": str(self.data),
            "JUSTSTORAGE_LOG_LEVEL": "warning",
        }
        for name in ("API_KEYS", "JWT_SECRET", "JUSTSTORAGE_JWT_PUBLIC_KEY", "DATABASE_URL"):
            env.pop(name, None)
        argv = [
            str(VENV_BIN / "juststorage"),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.server = Server(argv, env, self.port, tmp / "server.log")
        self.token = ""

    def start(self) -> None:
        self.server.start()
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
    """1 GiB upload vs raw hash+write+fsync; 1 GiB download vs sendfile to a socket."""
    size = GIB
    if free_bytes() < (2 * REPS_1G + 2) * size:
        skip("upload 1 GiB", f"not enough free disk ({free_bytes() >> 30} GiB)")
        skip("download 1 GiB", "no object uploaded")
        return
    src = work / "large.bin"
    bounds.make_source(src, size, uuid.uuid4().bytes)
    up_ratios, up_http, up_raw, notes = [], [], [], []
    stored: list[str] = []
    raw_outs = []
    for rep in range(REPS_1G):
        bounds.set_tag(src, f"rep{rep}".encode() + uuid.uuid4().bytes)
        os.sync()
        out = work / f"raw-{rep}.bin"
        raw_outs.append(out)
        hexd, raw_s = bounds.raw_upload(src, out)
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
        up_http.append(mbps(size, http_s))
        up_ratios.append(raw_s / http_s)
        notes.append(f"server CPU {s_cpu:.1f} s, curl CPU {c_cpu:.1f} s")
        say(
            f"1 GiB rep {rep}: raw {up_raw[-1]:.0f} MB/s, HTTP {up_http[-1]:.0f} MB/s, "
            f"ratio {up_ratios[-1]:.2f} ({notes[-1]}); content_hash ok"
        )
    row(
        f"upload 1 GiB (curl -T), median of {REPS_1G}",
        f"{statistics.median(up_http):.0f} MB/s",
        f"raw sha256+write+fsync {statistics.median(up_raw):.0f} MB/s",
        statistics.median(up_ratios),
        ">= 0.70",
        statistics.median(up_ratios) >= 0.70,
        f"per rep {min(up_ratios):.2f}-{max(up_ratios):.2f}; {notes[len(notes) // 2]}",
    )
    head = head_of(src)  # the last rep's content = the last stored object
    dn_ratios, dn_http, dn_raw = [], [], []
    dn_note = ""
    blob = svc.blob_path(json.loads((work / "resp.json").read_text())["content_hash"])
    for rep in range(REPS_1G):
        bound_s = bounds.sendfile_download(blob, head)
        cpu0 = server_cpu(svc.pid)
        http_s = bounds.http_download(svc.port, f"/v1/objects/{stored[-1]}", svc.auth(), size, head)
        dn_note = f"server CPU {server_cpu(svc.pid) - cpu0:.1f} s"
        dn_raw.append(mbps(size, bound_s))
        dn_http.append(mbps(size, http_s))
        dn_ratios.append(bound_s / http_s)
        say(
            f"1 GiB download rep {rep}: sendfile {dn_raw[-1]:.0f} MB/s, "
            f"HTTP {dn_http[-1]:.0f} MB/s, ratio {dn_ratios[-1]:.2f} ({dn_note})"
        )
    row(
        f"download 1 GiB, median of {REPS_1G}",
        f"{statistics.median(dn_http):.0f} MB/s",
        f"sendfile to 127.0.0.1 reader {statistics.median(dn_raw):.0f} MB/s",
        statistics.median(dn_ratios),
        ">= 0.70",
        statistics.median(dn_ratios) >= 0.70,
        f"per rep {min(dn_ratios):.2f}-{max(dn_ratios):.2f}; same 1 MiB reader; {dn_note}",
    )
    src.unlink()
    for out in raw_outs:
        out.unlink()


def section_small(svc: Service, tmp: Path, work: Path) -> None:
    """4 KiB objects, 16 concurrent clients: vs the durable-commit bound and the HTTP ceiling."""
    say("4 KiB: durable commit bound (no HTTP, no DB)")
    commit_ops = bounds.small_commit_bound(work / "commit", 500)
    say(f"4 KiB: service, {SMALL_N} PUT then {SMALL_N} GET, concurrency {SMALL_CONCURRENCY}")
    cpu0 = server_cpu(svc.pid)
    t0 = time.perf_counter()
    puts, gets = small.run_small(
        svc.server.url,
        svc.token,
        TENANT,
        "small",
        n=SMALL_N,
        size=SMALL_SIZE,
        concurrency=SMALL_CONCURRENCY,
    )
    wall = time.perf_counter() - t0
    svc_cpu = server_cpu(svc.pid) - cpu0
    say(f"4 KiB: service CPU {svc_cpu:.1f} s over {wall:.1f} s (both phases)")
    say("4 KiB: HTTP ceiling (raw ASGI in-memory app on granian, same client)")
    port = free_port()
    argv = [str(VENV_BIN / "granian"), "--interface", "asgi", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--loop", "uvloop", "--no-access-log", "--log-level"]
    argv += ["warning", "--workers", "1", "--working-dir", str(Path(__file__).parent)]
    argv += ["floor_app:app"]
    floor = Server(argv, dict(os.environ), port, tmp / "floor.log")
    floor.start()
    try:
        fputs, fgets = small.run_small(
            floor.url, None, TENANT, "small", n=SMALL_N, size=SMALL_SIZE, concurrency=16
        )
    finally:
        floor.stop()
    for ph in (puts, gets, fputs, fgets):
        if not ph.complete:
            say(f"WARNING {ph.op}: {len(ph.latencies)}/{ph.planned} ok, errors {ph.errors[:2]}")

    def lat(ph: small.Phase) -> str:
        return f"p50 {ph.pct_ms(50):.1f} ms, p99 {ph.pct_ms(99):.1f} ms"

    row(
        "4 KiB PUT x16 vs durable commit",
        f"{puts.ops_per_s:.0f} /s",
        f"file commit, no HTTP/DB {commit_ops:.0f} /s",
        puts.ops_per_s / commit_ops,
        "target >= 1500 /s",
        puts.ops_per_s >= 1500,
        f"{lat(puts)}; {len(puts.errors)} errors",
    )
    row(
        "4 KiB PUT x16 vs HTTP ceiling",
        f"{puts.ops_per_s:.0f} /s",
        f"in-memory ASGI app {fputs.ops_per_s:.0f} /s",
        puts.ops_per_s / fputs.ops_per_s,
        "(information)",
        None,
        f"ceiling {lat(fputs)}",
    )
    row(
        "4 KiB GET x16 vs HTTP ceiling",
        f"{gets.ops_per_s:.0f} /s",
        f"in-memory ASGI app {fgets.ops_per_s:.0f} /s",
        gets.ops_per_s / fgets.ops_per_s,
        ">= 0.50 (no target given)",
        gets.ops_per_s / fgets.ops_per_s >= 0.5,
        f"{lat(gets)}; bytes compared; {len(gets.errors)} errors",
    )


def fill_listing(db: Path, namespace: str, n: int) -> None:
    """Insert n COMMITTED objects (+ their blob rows) straight into SQLite, server stopped."""
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
                    128,
                    now,
                    now,
                    seq0 + 1 + i,
                )
            )
            blobs.append(("hot", hexd, 128, 1, now))
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
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def section_list(svc: Service) -> None:
    namespace = "list100k"
    say(f"list: stopping the server, inserting {LIST_N} rows directly into SQLite")
    svc.stop()
    t0 = time.perf_counter()
    fill_listing(svc.data / "meta.db", namespace, LIST_N)
    say(f"list: filled in {time.perf_counter() - t0:.1f} s (not through HTTP); restarting")
    svc.start()
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
        say(f"list: walked {count} objects in {len(cursors)} pages, {walk_s:.2f} s")
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
            f"full walk of 100k at limit=1000: {walk_s:.2f} s",
        )


# --------------------------------------------------------------------------- table
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
    head = ("figure", "measured", "bound / target (this run)", "ratio", "target", "ok", "notes")
    cells = [head]
    for r in ROWS:
        ratio = "-" if r.ratio is None else f"{r.ratio:.2f}"
        ok = {True: "yes", False: "NO", None: "-"}[r.ok]
        cells.append((r.figure, r.value, r.bound, ratio, r.target, ok, r.ratio_note))
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    print()
    print("JustStorage bench (ratios pair figures measured in this same run; machine is shared)")
    if noise:
        print(noise)
    for j, c in enumerate(cells):
        print(" | ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip())
        if j == 0:
            print("-+-".join("-" * w for w in widths))


def main() -> int:
    free = free_bytes()
    say(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, /tmp free {free / 2**30:.0f} GiB; "
        f"python {sys.version.split()[0]}"
    )
    if free < 2 * GIB:
        print("less than 2 GiB free under /tmp: nothing can be measured", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="jsbench-", dir="/tmp"))
    work = tmp / "work"
    work.mkdir()
    svc = Service(tmp)
    failed = False
    load0, busy0, ours0, wall0 = (
        os.getloadavg()[0],
        busy_cpu_seconds(),
        ours_cpu_seconds(),
        time.time(),
    )
    try:
        svc.start()
        say(f"server pid {svc.pid} on {svc.server.url}, data {svc.data}")
        for name, fn in (
            ("rss", lambda: section_rss(svc, work)),
            ("large", lambda: section_large(svc, work)),
            ("small", lambda: section_small(svc, tmp, work)),
            ("list", lambda: section_list(svc)),
        ):
            try:
                fn()
            except Exception as exc:  # one broken section must not hide the others
                failed = True
                say(f"section {name} FAILED: {type(exc).__name__}: {exc}")
                skip(f"section {name}", f"failed: {exc}"[:80])
                say("server log tail:\n" + svc.server.log_tail())
    finally:
        svc.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.time() - wall0
    others = max(0.0, busy_cpu_seconds() - busy0 - (ours_cpu_seconds() - ours0))
    print_table(
        f"noise: load avg {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end; CPU used by"
        f" processes other than this bench and its children: {others:.0f} s over {wall:.0f} s"
        f" wall ({100 * others / wall / (os.cpu_count() or 1):.0f}% of {os.cpu_count()} CPUs;"
        " includes kernel write-back threads)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
