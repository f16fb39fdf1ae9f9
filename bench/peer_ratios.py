"""Print one table of objbench results: JustStorage, nginx, Swift, and JustStorage / peer.

Usage: peer_ratios.py DIR (with juststorage-N.json, nginx-N.json, swift-N.json from
objbench.py --json, and juststorage-N-<size>.json... for more small-object sizes).
With several runs per target, each cell is the median over runs.
Ratios are throughputs JustStorage / peer: above 1 means JustStorage is faster.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

TARGETS = ("juststorage", "nginx", "swift")


def workload_name(row: dict[str, Any], params: dict[str, Any]) -> str:
    """`small 4 KiB` for the small-object rows (objbench's `--size`, in the run's
    params; 4 KiB when absent), else the workload's name."""
    if row["workload"] != "small":
        return str(row["workload"])
    size = int(params.get("size") or 4096)
    return f"small {size // 1024} KiB" if size % 1024 == 0 else f"small {size} B"


def load(out: Path, target: str) -> dict[tuple[str, str], dict[str, float]]:
    """(workload, op) -> {"value": throughput, "p99": ms, "errors": n}, medians over runs;
    small objects' workload names carry their size (`small 4 KiB`)."""
    cells: dict[tuple[str, str], list[dict[str, float]]] = {}
    for path in sorted(out.glob(f"{target}-*.json")):
        doc = json.loads(path.read_text())
        for r in doc["rows"]:
            key = (workload_name(r, doc.get("params", {})), r["op"].split(" ")[0])
            if r["workload"] == "large":
                value = r["MB_per_s"]  # MB/s
            elif r["op"].startswith("LIST"):
                value = r["ok"] and r["planned"] / r["seconds"]  # names listed per second
            else:
                value = r["ops_per_s"]
            cells.setdefault(key, []).append(
                {"value": value or 0.0, "p99": r["p99_ms"] or 0.0, "errors": r["errors"]}
            )
    return {
        k: {f: statistics.median(c[f] for c in v) for f in ("value", "p99", "errors")}
        for k, v in cells.items()
    }


def main() -> int:
    out = Path(sys.argv[1])
    data = {t: load(out, t) for t in TARGETS}
    keys = list(data["juststorage"]) or sorted({k for d in data.values() for k in d})
    unit = {"small": "ops/s", "large": "MB/s", "list": "ops/s"}
    head = ["workload", "op", "unit"]
    head += [f"{t}" for t in TARGETS] + ["JS/nginx", "JS/swift", "p99 ms JS/nginx/swift"]
    rows = [head]
    for key in keys:
        workload, op = key
        u = "names/s" if op == "LIST" else unit.get(workload.split(" ")[0], "")
        vals = [data[t].get(key) for t in TARGETS]
        cells = [workload, op, u]
        cells += ["-" if v is None else f"{v['value']:.0f}" for v in vals]
        js = vals[0]
        for peer in vals[1:]:
            ok = js is not None and peer is not None and peer["value"]
            cells.append(f"{js['value'] / peer['value']:.2f}" if js and peer and ok else "-")
        cells.append(
            "/".join("-" if v is None or op == "LIST" else f"{v['p99']:.0f}" for v in vals)
        )
        rows.append(cells)
    errors = {t: sum(int(v["errors"]) for v in data[t].values()) for t in TARGETS}
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    runs = {t: len(list(out.glob(f"{t}-*.json"))) for t in TARGETS}
    print()
    print(
        f"objbench, same client, back to back (result files per target: {runs}; errors: {errors})"
    )
    for j, r in enumerate(rows):
        print(
            "  ".join(c.rjust(widths[i]) if i > 2 else c.ljust(widths[i]) for i, c in enumerate(r))
        )
        if j == 0:
            print("  ".join("-" * w for w in widths))
    print("ratios are throughput JustStorage / peer (> 1: JustStorage faster); nginx does not")
    print("fsync (a floor, not a fair peer); Swift fsyncs like JustStorage. Machine is shared.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
