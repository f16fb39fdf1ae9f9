"""The JustStorage leg of bench/peers.sh: a fresh server, one objbench run, stopped.

    python -m bench.objbench_juststorage --python PY --objbench objbench.py \
        --data-root DIR --out OUT --run N [-- OBJBENCH OPTIONS...]

Started through `juststorage.testing` on a free 127.0.0.1 port with a fresh data
directory under DIR (left in place: peers.sh removes every target's data only at
the end), measured by `objbench.py --target juststorage` run with the peers' own
Python, and stopped by its PID. Writes OUT/juststorage-N.json and .txt.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from juststorage import testing

OBJBENCH_TIMEOUT_S = 400


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--python", required=True, help="the Python that runs objbench")
    ap.add_argument("--objbench", required=True, type=Path)
    ap.add_argument("--data-root", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--run", required=True, help="the run's tag in the result files' names")
    ap.add_argument("objbench_args", nargs="*", help="more objbench options (after --)")
    args = ap.parse_args(argv)
    server = testing.start(args.data_root)
    try:
        print(f"juststorage: pid {server.pid} on {server.url} (data {server.data_dir})", flush=True)
        done = subprocess.run(
            [args.python, str(args.objbench), "--target", "juststorage", "--url", server.url]
            + ["--tenant", "bench", "--namespace", "bench"]
            + ["--json", str(args.out / f"juststorage-{args.run}.json")]
            + args.objbench_args,
            env={**os.environ, "OBJBENCH_TOKEN": server.admin_key},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=OBJBENCH_TIMEOUT_S,
            check=False,
        )
        (args.out / f"juststorage-{args.run}.txt").write_text(done.stdout)
        print(done.stdout, end="")
        return done.returncode
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
