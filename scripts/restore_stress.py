"""One backup restored N times in-process into fresh SQLite deployments, the GC
hold renewed every millisecond; prints each failure and the count.
docs/performance.md ("A restore that fails with a traceback") quotes it.

    .venv/bin/python scripts/restore_stress.py [--objects 1200] [--runs 25]

Run from the repository root (it uses the test helpers of tests/integration).
Everything lives under a fresh temp directory, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from integration.test_restore import backup, restore, upload  # noqa: E402
from juststorage.application.backup import DatabaseHold  # noqa: E402
from juststorage.bootstrap import build, build_backup_target  # noqa: E402
from juststorage.config import Settings  # noqa: E402


async def _main(root: Path, objects: int, runs: int) -> int:
    url = f"sqlite:///{root}/src.db"
    src = build(Settings(data_dir=root / "src", database_url=url, inline_max_bytes=1000))
    await src.metadata.migrate()
    await src.blobs.prepare()
    for i in range(objects):
        await upload(src, "acme", f"k{i}", os.urandom(200 if i % 10 else 2000))
    target = build_backup_target(Settings(data_dir=root), str(root / "backups"))
    await backup(src, target)
    await src.metadata.close()
    failures = 0
    for run in range(runs):
        data = root / f"d{run}"
        settings = Settings(
            data_dir=data, database_url=f"sqlite:///{data}.db", inline_max_bytes=300
        )
        dest = build(settings)
        hold = DatabaseHold(dest.metadata, dest.clock, dest.liveness.identity())
        try:
            await restore(settings, target, hold=hold, renew_s=0.001)
        except Exception as exc:
            failures += 1
            print(run, type(exc).__name__, exc, flush=True)
            traceback.print_exc(limit=-4)
        finally:
            await dest.metadata.close()
        shutil.rmtree(data, ignore_errors=True)
        Path(f"{data}.db").unlink(missing_ok=True)
    await target.close()
    return failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1200)
    parser.add_argument("--runs", type=int, default=25)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="restore-stress-"))
    try:
        failures = asyncio.run(_main(root, args.objects, args.runs))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("failures", failures, "of", args.runs)


if __name__ == "__main__":
    main()
