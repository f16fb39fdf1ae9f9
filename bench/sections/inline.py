"""`inline`: 4 KiB and 32 KiB PUT/GET x16 with blobs inline in the metadata database
(SPEC §8.1, `JUSTSTORAGE_INLINE_MAX_BYTES`: unset = the default, 64 KiB) and without
(`0`), on SQLite, PostgreSQL and an `s3://` root (SeaweedFS, PostgreSQL metadata).

Each database PUT row's ratio is to that database's own group-commit bound, measured
in this run (bench/dbbound.py: an object row plus a blob row with the bytes, in
transactions of the batch 16 clients fill, same durability). GET rows with inlining
compare with the same run's GET without it; the `s3://` rows with inlining compare
with the same run without it (the target: 4 KiB PUT >= 3x), those without it with
SeaweedFS's own S3 endpoint. The two modes' servers start together and are
measured one after the other. A server that does not know the setting ignores it:
both modes then measure the same code.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from .. import dbbound, load, scaleout
from ..context import SMALL_CONCURRENCY, TENANT, Bench, Service, cpu_note, lat, run_small_on
from ..table import Report, say

KIB = 1024
SIZES = (4 * KIB, 32 * KIB)
# (mode, extra server settings): "on" is the server's default threshold.
MODES: tuple[tuple[str, dict[str, str]], ...] = (
    ("off", {"JUSTSTORAGE_INLINE_MAX_BYTES": "0"}),
    ("on", {}),
)
BOUND_TARGET = 0.8  # 4 KiB PUT with inlining / the database's group-commit bound
S3_PUT_TARGET = 3.0  # 4 KiB PUT on an s3:// root with inlining / without
Results = dict[tuple[str, int], tuple[load.Phase, load.Phase]]


def label(size: int) -> str:
    return f"{size // KIB} KiB"


def run(bench: Bench) -> Report:
    report = Report("inline", "sqlite")
    for db in ("sqlite", "postgres"):
        if db == "postgres" and not bench.pg.available:
            for size in SIZES:
                for mode, _ in MODES:
                    for op in ("PUT", "GET"):
                        report.skip(figure(size, op, mode), bench.pg.reason, db=db)
            continue
        report.merge(measure_database(bench, db))
    report.merge(measure_s3(bench))
    return report


def figure(size: int, op: str, mode: str, where: str = "") -> str:
    return f"{label(size)} {op} x{SMALL_CONCURRENCY}, inline {mode}{where}"


def database_bounds(bench: Bench, db: str) -> dict[int, float]:
    """Objects/s the database commits alone, per size, in group-commit-sized transactions."""
    n, batch = bench.sizes.inline_n, dbbound.batch_size(SMALL_CONCURRENCY)
    out = {}
    url = bench.pg.create_database() if db == "postgres" else None
    for size in SIZES:
        if url is None:
            out[size] = dbbound.sqlite_bound(bench.work / f"bound-{size}.db", n, size, batch)
        else:
            out[size] = dbbound.postgres_bound(url, n, size, batch)
        say(f"inline {db}: group-commit bound {label(size)}, {batch}-row tx: {out[size]:.0f}/s")
    return out


def measure_database(bench: Bench, db: str) -> Report:
    report = Report("inline", db)
    bound = database_bounds(bench, db)
    batch = dbbound.batch_size(SMALL_CONCURRENCY)
    services = {
        mode: Service(
            bench.tmp,
            f"inline-{db}-{mode}",
            bench.pg.create_database() if db == "postgres" else None,
            1,
            env,
        )
        for mode, env in MODES
    }
    got: Results = {}
    start_together(bench, list(services.values()))
    try:
        for mode, svc in services.items():
            for size in SIZES:
                puts, gets, db_cpu = run_small_on(
                    svc, f"inline-{size}", bench.sizes.inline_n, size=size
                )
                report.db_cpu_s += db_cpu
                got[(mode, size)] = (puts, gets)
                say(
                    f"inline {mode} {db} {label(size)}: PUT {puts.ops_per_s:.0f}/s"
                    f" ({cpu_note(puts)}); GET {gets.ops_per_s:.0f}/s ({cpu_note(gets)})"
                )
    finally:
        stop_together(list(services.values()))
    for size in SIZES:
        off_gets = got[("off", size)][1]
        for mode, _ in MODES:
            puts, gets = got[(mode, size)]
            ok = _clean(puts, gets)
            ratio = puts.ops_per_s / bound[size]
            aimed = mode == "on" and size == SIZES[0]
            report.row(
                figure(size, "PUT", mode),
                f"{puts.ops_per_s:.0f} /s",
                f"{db} group commit, {batch}-row tx {bound[size]:.0f} /s",
                ratio,
                f">= {BOUND_TARGET:g}" if aimed else "(information)",
                (ok is not False and ratio >= BOUND_TARGET) if aimed else ok,
                f"{lat(puts)}; {len(puts.errors)} errors; {cpu_note(puts)}",
            )
            report.row(
                figure(size, "GET", mode),
                f"{gets.ops_per_s:.0f} /s",
                "-" if mode == "off" else f"inline off {off_gets.ops_per_s:.0f} /s (same run)",
                None if mode == "off" else _ratio(gets, off_gets),
                "(information)",
                ok,
                f"{lat(gets)}; bytes compared; {len(gets.errors)} errors; {cpu_note(gets)}",
            )
    return report


def measure_s3(bench: Bench) -> Report:
    """The same two sizes on an `s3://` root (SeaweedFS), one host on PostgreSQL."""
    report = Report("inline", "postgres")
    where = ", s3:// root"
    if not bench.pg.available:
        for size in SIZES:
            for mode, _ in MODES:
                for op in ("PUT", "GET"):
                    report.skip(figure(size, op, mode, where), bench.pg.reason)
        return report
    n = bench.sizes.inline_n
    got: Results = {}
    with scaleout.seaweedfs(bench.tmp) as weed:
        direct = {size: scaleout.direct_small(weed, n, size) for size in SIZES}
        services = {
            mode: Service(
                bench.tmp,
                f"inline-s3-{mode}",
                bench.pg.create_database(),
                1,
                {**scaleout.host_env(weed, f"inline-{uuid.uuid4().hex[:8]}"), **env},
            )
            for mode, env in MODES
        }
        start_together(bench, list(services.values()))
        try:
            for mode, svc in services.items():
                for size in SIZES:
                    urls = [svc.server.url]
                    got[(mode, size)] = scaleout.run_small(urls, TENANT, f"s3-{size}", n, size)
        finally:
            stop_together(list(services.values()))
    for size in SIZES:
        d_put, d_get = direct[size]
        off = got[("off", size)]
        for mode, _ in MODES:
            puts, gets = got[(mode, size)]
            clean = _clean(puts, gets)
            for op, ph, d, base in (("PUT", puts, d_put, off[0]), ("GET", gets, d_get, off[1])):
                aimed = mode == "on" and op == "PUT" and size == SIZES[0]
                ok, target = clean, "(information)"
                ratio: float | None
                if mode == "off":
                    bound, ratio = f"SeaweedFS S3 direct {d:.0f} /s", ph.ops_per_s / d
                else:
                    bound = f"inline off {base.ops_per_s:.0f} /s (same run)"
                    ratio = _ratio(ph, base)
                if aimed:
                    target = f">= {S3_PUT_TARGET:g}"
                    ok = clean is not False and ratio is not None and ratio >= S3_PUT_TARGET
                report.row(
                    figure(size, op, mode, where),
                    f"{ph.ops_per_s:.0f} /s",
                    bound,
                    ratio,
                    target,
                    ok,
                    f"{lat(ph)}; {len(ph.errors)} errors; SeaweedFS direct {d:.0f} /s",
                )
    return report


def start_together(bench: Bench, services: list[Service]) -> None:
    """Start `services` at once (their start-up is mostly waiting); each is measured
    alone afterwards, the others idle. bench.close() stops them whatever happens."""
    bench.services.extend(services)
    with ThreadPoolExecutor(len(services)) as pool:
        list(pool.map(Service.start, services))
    for svc in services:
        say(f"server pid {svc.pid} ({svc.workers} worker(s)) on {svc.server.url}, {svc.data}")


def stop_together(services: list[Service]) -> None:
    with ThreadPoolExecutor(len(services)) as pool:
        list(pool.map(Service.stop, services))


def _clean(puts: load.Phase, gets: load.Phase) -> bool | None:
    """None (no verdict) when both phases completed without errors, else False."""
    return None if puts.complete and gets.complete else False


def _ratio(ph: load.Phase, base: load.Phase) -> float | None:
    return ph.ops_per_s / base.ops_per_s if base.ops_per_s else None
