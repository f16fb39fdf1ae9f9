"""Versioned schema migrations: one ordered history of `NNNN_name.sql` files, written
once for both databases (like the rest of the SQL).

What differs between the dialects is marked in the files and filled in here:
- `{name}` stands for a column type (`TYPES`): `{timestamp}` is TIMESTAMPTZ on
  PostgreSQL and TEXT on SQLite, which stores `utc_text()`'s sortable form;
- a line starting `--postgres ` or `--sqlite ` belongs to that dialect only
  (the marker is removed; the other dialect drops the line).

A database records the version numbers it has applied (`schema_migrations`), so
a migration, once released, keeps its number and its meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

__all__ = ["TYPES", "Migration", "migrations_for", "render"]

Backend = Literal["sqlite", "postgres"]

TYPES: dict[Backend, dict[str, str]] = {
    "postgres": {
        "uuid": "UUID",
        "timestamp": "TIMESTAMPTZ",
        "bigint": "BIGINT",
        "text_list": "TEXT[]",
        "key_text": 'TEXT COLLATE "C"',  # keys compare in UTF-8 byte order
        "bytes": "BYTEA",
    },
    "sqlite": {
        "uuid": "TEXT",
        "timestamp": "TEXT",
        "bigint": "INTEGER",
        "text_list": "TEXT",  # a JSON list
        "key_text": "TEXT",  # BINARY collation: UTF-8 byte order already
        "bytes": "BLOB",
    },
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_ONLY = re.compile(r"^--(sqlite|postgres) ")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def render(sql: str, backend: Backend) -> str:
    """The migration `sql` in `backend`'s dialect.

    Raises:
        KeyError: a `{name}` that is not a type of `TYPES`.
    """
    types = TYPES[backend]
    lines = []
    for line in sql.splitlines():
        only = _ONLY.match(line)
        if only is not None:
            if only.group(1) != backend:
                continue
            line = line[only.end() :]
        lines.append(_PLACEHOLDER.sub(lambda m: types[m.group(1)], line))
    return "\n".join(lines) + "\n"


def migrations_for(backend: Backend) -> list[Migration]:
    """Every migration in `backend`'s dialect, oldest first."""
    found = []
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            sql = render(entry.read_text("utf-8"), backend)
            found.append(Migration(int(number), rest.removesuffix(".sql"), sql))
    return sorted(found, key=lambda m: m.version)
