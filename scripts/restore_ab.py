"""`juststorage restore` of one backup, two code versions alternating: wall time,
ratio to the disk's write + fsync (measured right before each run), CPU and peak
RSS of the restore process. docs/performance.md ("Backup and restore") quotes it.

    git archive <commit> src | tar -x -C /tmp/before
    .venv/bin/python scripts/restore_ab.py --before-src /tmp/before/src [--pairs 3]

The store is the `backup` bench section's small shape by default (1,000 objects,
900 of them 4-64 KiB, 1 GiB), filled over HTTP and backed up once; each restore
goes into a fresh SQLite deployment. "before" runs with PYTHONPATH on
--before-src, "after" with this checkout. Everything lives under a fresh temp
directory, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the bench package

from bench import bounds  # noqa: E402
from bench.context import GIB, VENV_BIN, Service  # noqa: E402
from bench.sections.backup import fill  # noqa: E402

from juststorage.testing import clean_env  # noqa: E402


def _restore(
    js: str, target: Path, dest: Path, pythonpath: str | None
) -> tuple[int, float, float, float, str]:
    env = clean_env(dest)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    os.sync()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    argv = ["/usr/bin/time", "-f", "%M", js, "restore", str(target), "--json", "--no-progress"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    rss_mib = int(done.stderr.strip().splitlines()[-1]) / 1024
    return done.returncode, wall, cpu, rss_mib, done.stderr[-600:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-src", required=True)
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--small", type=int, default=900)
    parser.add_argument("--gib", type=float, default=1)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="restore-ab-"))
    svc = Service(root, "source", workers=2)
    js = str(VENV_BIN / "juststorage")
    try:
        svc.start()
        fill(svc, args.objects, args.small, int(args.gib * GIB))
        svc.stop()
        target = root / "target"
        argv = [js, "backup", str(target), "--json", "--no-progress"]
        made = subprocess.run(argv, env=clean_env(svc.data), capture_output=True, text=True)
        total = json.loads(made.stdout)["bytes"]
        src, size = root / "bound-src.bin", min(GIB, total)
        bounds.make_source(src, size, uuid.uuid4().bytes)
        print("start", time.strftime("%H:%M:%S", time.gmtime()), "UTC", flush=True)
        for i in range(args.pairs):
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            for which in order:
                _, _, write_s = bounds.raw_upload(src, root / "bound-out.bin")
                (root / "bound-out.bin").unlink()
                write_mbps = size / 1e6 / write_s
                dest = root / f"{which}-{i}"
                dest.mkdir()
                path = args.before_src if which == "before" else None
                rc, wall, cpu, rss, tail = _restore(js, target, dest, path)
                mbps = total / 1e6 / wall
                print(
                    f"{which:6s} {i}: rc {rc} {wall:.2f} s {mbps:.0f} MB/s, write+fsync"
                    f" {write_mbps:.0f} MB/s, ratio {mbps / write_mbps:.2f}, CPU {cpu:.1f} s,"
                    f" peak RSS {rss:.0f} MiB",
                    flush=True,
                )
                if rc:
                    print(tail, flush=True)
                shutil.rmtree(dest)
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print("end", time.strftime("%H:%M:%S", time.gmtime()), "UTC; load average", load)
    finally:
        svc.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
