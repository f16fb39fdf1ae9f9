"""Options of `put` and `get` for large files: parallel parts, thresholds, resume.

`put` of a file of at least `--multipart-threshold` bytes sends it as a multipart
session, `--parallel` parts at a time; its state file (session id, digests of
acknowledged parts) lives in `transfers/` beside the client config, so running
the same `put` again after an interruption sends only the missing parts.
`get` of an object of at least `--parallel-threshold` bytes into a file fetches
`--parallel` byte ranges at a time into a temporary file beside it
(`.DEST.<random>.juststorage-part`); a state file in `transfers/` lists which
temporary file and which ranges are finished, so running the same `get` again
keeps them (same version only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

_UNITS = {
    "": 1,
    "b": 1,
    "k": 2**10,
    "kib": 2**10,
    "m": 2**20,
    "mib": 2**20,
    "g": 2**30,
    "gib": 2**30,
}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")
DEFAULT_THRESHOLD = "64MiB"
if TYPE_CHECKING:
    _IntParam = click.ParamType[int, Any]
else:  # generic only from click 8.2 on
    _IntParam = click.ParamType
DEFAULT_PARALLEL = 4  # parts or ranges of one large file
DEFAULT_TREE_PARALLEL = 8  # files of a tree


class ByteSize(_IntParam):
    """A byte count: `1048576`, `512KiB`, `8MiB`, `2GiB` (K, M, G mean KiB, MiB, GiB)."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        match = _SIZE.match(str(value))
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _UNITS:
            self.fail(f"{value!r} is not a size (e.g. 65536, 512KiB, 64MiB, 1GiB)", param, ctx)
        return int(match.group(1)) * _UNITS[unit]


def parallel_option(what: str) -> Callable[[Any], Any]:
    """`--parallel N`: files of a tree at once (-r), else parts of one large file."""
    return click.option(
        "--parallel",
        type=click.IntRange(1, 64),
        metavar="N",
        help=f"{what} in flight at once for a large file [default: {DEFAULT_PARALLEL}];"
        f" with -r, files in flight at once [default: {DEFAULT_TREE_PARALLEL}].",
    )


def upload_options(command: Any) -> Any:
    """`--parallel`, `--multipart-threshold` and `--part-size` on `put`."""
    command = click.option(
        "--part-size",
        type=ByteSize(),
        metavar="SIZE",
        help="Bytes per part [default: max(8MiB, size/10000); the server's minimum is 5MiB].",
    )(command)
    command = click.option(
        "--multipart-threshold",
        type=ByteSize(),
        default=DEFAULT_THRESHOLD,
        show_default=True,
        metavar="SIZE",
        help="Files of this size or more go as a resumable multipart upload.",
    )(command)
    return parallel_option("Parts")(command)


def download_options(command: Any) -> Any:
    """`--parallel`, `--parallel-threshold` and `--part-size` on `get`."""
    command = click.option(
        "--part-size",
        type=ByteSize(),
        default="16MiB",
        show_default=True,
        metavar="SIZE",
        help="Bytes per range: the unit a resumed download keeps.",
    )(command)
    command = click.option(
        "--parallel-threshold",
        type=ByteSize(),
        default=DEFAULT_THRESHOLD,
        show_default=True,
        metavar="SIZE",
        help="Objects of this size or more are fetched as resumable parallel ranges.",
    )(command)
    return parallel_option("Ranges")(command)
