"""The rows a section reports and the one table they print as."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Rows print grouped (PostgreSQL beside SQLite), in this order, then in insertion order.
GROUPS = (
    "rss",
    "large",
    "multipart",
    "small",
    "inline",
    "list",
    "scale",
    "s3",
    "s3gw",
    "backup",
    "peers",
    "failed",
)


def say(msg: str) -> None:
    """A progress line on stdout (the table comes last)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass(frozen=True)
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


@dataclass
class Report:
    """What one section measured: its rows, under a default group and database, and
    the figures other sections compare with (4 KiB ops/s, PostgreSQL backend CPU)."""

    group: str
    db: str
    rows: list[Row] = field(default_factory=list)
    small_ops: dict[tuple[str, str], float] = field(default_factory=dict)  # (db, op) -> /s
    db_cpu_s: float = 0.0  # CPU seconds of the bench databases' backends, measured phases

    def row(
        self,
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
        self.rows.append(
            Row(
                group or self.group,
                db or self.db,
                figure,
                value,
                bound,
                ratio,
                ratio_note,
                target,
                ok,
            )
        )

    def skip(
        self, figure: str, why: str, *, db: str | None = None, group: str | None = None
    ) -> None:
        self.row(figure, "skipped", why, None, "", None, db=db, group=group)

    def merge(self, other: Report) -> None:
        """Take `other`'s rows and figures into this report."""
        self.rows += other.rows
        self.small_ops.update(other.small_ops)
        self.db_cpu_s += other.db_cpu_s


def print_table(rows: list[Row], noise: str = "") -> None:
    """The table on stdout, rows grouped by GROUPS."""
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
    for r in sorted(rows, key=lambda r: order.get(r.group, len(GROUPS))):  # stable
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
