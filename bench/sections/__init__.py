"""One module per section of `make bench`; `--only`/`BENCH_ONLY` picks them by name.

Each section's `run(bench)` returns a `Report` (its rows and figures); nothing is
kept in module state.
"""

from __future__ import annotations

from collections.abc import Callable

from ..context import Bench
from ..table import Report
from . import (
    backup,
    inline,
    large,
    listing,
    multipart,
    peers,
    pg,
    rss,
    s3,
    s3gw,
    scale,
    scrub,
    small,
)

# In the order they run.
SECTIONS: dict[str, Callable[[Bench], Report]] = {
    "rss": rss.run,
    "large": large.run,
    "multipart": multipart.run,
    "small": small.run,
    "inline": inline.run,
    "scrub": scrub.run,
    "list": listing.run,
    "pg": pg.run,
    "scale": scale.run,
    "s3": s3.run,
    "s3gw": s3gw.run,
    "backup": backup.run,
    "peers": peers.run,
}

__all__ = ["SECTIONS"]
