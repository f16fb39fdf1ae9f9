"""`peers`: objbench against JustStorage, nginx (WebDAV) and Swift, back to back
(bench/peers.sh), as ratios JustStorage / peer with their targets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .. import peer_ratios
from ..context import Bench
from ..table import Report, say

# (workload, op) -> {peer: minimum ratio JustStorage / peer, or None: report only}
# Small objects: SPEC §8.1's targets at 4 KiB (nginx-WebDAV does not fsync: 0.8x on
# PUT), the same ratios reported at 32 KiB.
PEER_TARGETS: dict[tuple[str, str], dict[str, float | None]] = {
    ("small 4 KiB", "PUT"): {"swift": 10.0, "nginx": 0.8},
    ("small 4 KiB", "GET"): {"swift": 10.0, "nginx": 1.0},
    ("small 32 KiB", "PUT"): {"swift": None, "nginx": None},
    ("small 32 KiB", "GET"): {"swift": None, "nginx": None},
    ("large", "PUT"): {"swift": 3.0, "nginx": None},
    ("large", "GET"): {"swift": None, "nginx": 0.9},
    ("list", "LIST"): {"swift": 5.0},
}
PEER_UNITS = {"small": "ops/s", "large": "MB/s", "list": "names/s"}
SCRIPT = Path(__file__).resolve().parents[1] / "peers.sh"


def run(bench: Bench) -> Report:
    report = Report("peers", "sqlite")
    out = bench.tmp / "peers"
    out.mkdir()
    env = {**os.environ, **dict(bench.sizes.peers_env), "OUT": str(out)}
    say("peers: bench/peers.sh (JustStorage, then nginx, then Swift; several minutes)")
    done = subprocess.run(
        ["bash", str(SCRIPT)],
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
        unit = PEER_UNITS[workload.split(" ")[0]]
        for peer, minimum in targets.items():
            theirs = results[peer].get((workload, op))
            figure = f"objbench {workload} {op} vs {peer}"
            if not ours or not theirs or not theirs["value"]:
                report.skip(figure, f"no result (peers.sh exit {done.returncode})")
                continue
            ratio = ours["value"] / theirs["value"]
            errors = int(ours["errors"] + theirs["errors"])
            report.row(
                figure,
                f"{ours['value']:.0f} {unit}",
                f"{peer} {theirs['value']:.0f} {unit}",
                ratio,
                "report" if minimum is None else f">= {minimum:g}",
                None if minimum is None else ratio >= minimum,
                f"p99 ms {ours['p99']:.0f} / {theirs['p99']:.0f}; errors {errors}",
            )
    return report
