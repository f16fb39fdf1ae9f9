"""`s3`: 4 KiB and large PUT/GET with blobs on SeaweedFS through 1 and 3 hosts, beside 1
host on the file system, and the same workload sent straight to SeaweedFS's S3
endpoint; every row's ratio is to the direct figure (bench/scaleout.py)."""

from __future__ import annotations

import uuid

from .. import scaleout
from ..context import TENANT, Bench, Service, lat, size_label
from ..table import Report, say


def run(bench: Bench) -> Report:
    report = Report("s3", "postgres")
    configs = (("file system", 1), ("SeaweedFS", 1), ("SeaweedFS", 3))
    if not bench.pg.available:
        for blobs, count in configs:
            report.skip(f"{blobs}, {count} host(s)", bench.pg.reason)
        return report
    small_n, size = bench.sizes.s3_small_n, bench.sizes.s3_large_bytes
    label = size_label(size)
    with scaleout.seaweedfs(bench.tmp) as weed:
        say(f"SeaweedFS at {weed.endpoint_url} (pid {weed.pid})")
        direct_small = scaleout.direct_small(weed, small_n)
        direct_large = {n: scaleout.direct_large(weed, bench.work, n, size) for n in (1, 3)}
        say(
            f"S3 direct: 4 KiB PUT {direct_small[0]:.0f}/s GET {direct_small[1]:.0f}/s; {label}"
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
                puts, gets = scaleout.run_small(urls, TENANT, f"{name}-small", small_n)
                up, down = scaleout.large_streams(hosts, bench.work, size)
            finally:
                for host in hosts:
                    host.stop()
            where = f"{blobs}, {count} host{'s' if count > 1 else ''}"
            say(
                f"{where}: 4 KiB PUT {puts.ops_per_s:.0f}/s GET {gets.ops_per_s:.0f}/s;"
                f" {label} x{count} PUT {up:.0f} MB/s GET {down:.0f} MB/s"
            )
            errors = len(puts.errors) + len(gets.errors)
            ok = None if errors == 0 and puts.complete and gets.complete else False
            d_up, d_down = direct_large[count]
            streams = f"{count} stream{'s' if count > 1 else ''} at once"
            for figure, value, unit, direct, note in (
                ("4 KiB PUT x16", puts.ops_per_s, "/s", direct_small[0], lat(puts)),
                ("4 KiB GET x16", gets.ops_per_s, "/s", direct_small[1], lat(gets)),
                (f"{label} PUT, {streams}", up, "MB/s", d_up, "aggregate"),
                (f"{label} GET, {streams}", down, "MB/s", d_down, "aggregate"),
            ):
                report.row(
                    f"{figure}, {where}",
                    f"{value:.0f} {unit}",
                    f"SeaweedFS S3 direct {direct:.0f} {unit}",
                    value / direct if direct else None,
                    "(information)",
                    ok,
                    f"{note}; {errors} errors" if "4 KiB" in figure else note,
                )
    return report
