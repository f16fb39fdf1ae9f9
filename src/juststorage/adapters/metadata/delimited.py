"""SQL of a listing page with a delimiter (SPEC §8.4), shared by SQLite and PostgreSQL.

A recursive walk over the committed-by-key index, one row per step, each found by
one index seek from the row before:

- a row whose key holds the delimiter after the prefix stands for its common prefix
  P, and the next seek starts past every key that starts with P: at P without its
  delimiter followed by `skip_past(delimiter)` (`skip_past(P)`, computed from the
  key). The keys under P are never read, however many there are;
- any other row is listed, and the next seek starts after it: at the key's next
  older version (every version listed) or at the next key, whose newest version
  the index holds first ((key, commit_seq DESC)).

Keys compare in UTF-8 byte order on both databases (BINARY on SQLite, COLLATE "C" on
PostgreSQL: migration 0001), which is code point order, the order `skip_past` and
`prefix_upper_bound` compute in; `substr` and the dialect's `find_text` count
characters (code points) on both, as Python's `len` does.

The walk stops once it holds `query.limit` entries; rows that a storage-class filter
leaves out are walked over without counting. The page is one statement: one
consistent read on both databases.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from juststorage.adapters.metadata.queries import Params
from juststorage.application.records import ListQuery
from juststorage.domain.model import prefix_upper_bound, skip_past

# Appended to a key: no key starts with it (keys hold no control characters) and
# every key greater than the key is at or above it.
_NEXT_KEY = "\x01"


def delimited_page_sql(query: ListQuery, params: Params, columns: str, find_text: str) -> str:
    """One delimited page, in listing order: rows of (common prefix or NULL, then the
    dialect's `summary_columns`); a row with a common prefix stands for it alone.

    `find_text` is the dialect's 1-based substring search (`instr`, `strpos`).
    Placeholders bind in the order they are made: the text is built in that order.
    """
    if query.delimiter is None:
        raise ValueError("a delimited page needs a delimiter")
    p: Callable[[Any], str] = params
    delimiter, prefix = query.delimiter, query.prefix
    width = len(prefix)
    upper = prefix_upper_bound(prefix) if prefix else None

    def scope(alias: str) -> str:
        where = [
            f"{alias}.tenant_id = {p(query.tenant_id)}",
            f"{alias}.namespace = {p(query.namespace)}",
            f"{alias}.state = 'COMMITTED'",
        ]
        if upper is not None:
            where.append(f"{alias}.key < {p(upper)}")
        return " AND ".join(where)

    def found(key: str) -> str:
        """Where the delimiter starts after the prefix, counted from it; 0: nowhere."""
        return f"{find_text}(substr({key}, {width + 1}), {p(delimiter)})"

    def rolled(key: str) -> str:
        """The common prefix of `key`, or NULL."""
        return (
            f"CASE WHEN {found(key)} > 0"
            f" THEN substr({key}, 1, {width - 1 + len(delimiter)} + {found(key)}) END"
        )

    def counts(alias: str) -> str:
        """1 if the row is an entry of the page: a common prefix, or a listed version."""
        if query.storage_class is None:
            return "1"
        return (
            f"CASE WHEN {found(alias + '.key')} > 0"
            f" OR {alias}.storage_class = {p(query.storage_class.value)} THEN 1 ELSE 0 END"
        )

    def seek(lower: Callable[[], str] | None) -> str:
        """The first row (newest version of the first key) at or above `lower`."""
        text = f"SELECT v.id FROM objects v WHERE {scope('v')}"
        if lower is not None:
            text += f" AND v.key >= {lower()}"
        return text + " ORDER BY v.key, v.commit_seq DESC LIMIT 1"

    def older(key: Callable[[], str], seq: Callable[[], str]) -> str:
        """The next older version of the same key."""
        text = f"SELECT v.id FROM objects v WHERE {scope('v')} AND v.key = {key()}"
        return text + f" AND v.commit_seq < {seq()} ORDER BY v.commit_seq DESC LIMIT 1"

    def past(key: str) -> str:
        """Where the seek after a row of `key` starts."""
        return (
            f"CASE WHEN {found(key)} > 0"
            f" THEN substr({key}, 1, {width - 1} + {found(key)}) || {p(skip_past(delimiter))}"
            f" ELSE {key} || {p(_NEXT_KEY)} END"
        )

    def step() -> str:
        """The row after the walk's row `w`."""
        if not query.all_versions:
            return seek(lambda: past("w.key"))
        text = f"COALESCE((CASE WHEN {found('w.key')} = 0"
        text += f" THEN ({older(lambda: 'w.key', lambda: 'w.seq')}) END),"
        return text + f" ({seek(lambda: past('w.key'))}))"

    def first() -> str:
        """The walk's first row: after the cursor, within the prefix."""
        after = query.after
        if after is None:
            return seek((lambda: p(prefix)) if prefix else None)
        if after.rolled_up:
            start = max(skip_past(after.key), prefix)
            return seek(lambda: p(start))
        if query.all_versions and after.key.startswith(prefix):
            return (
                f"COALESCE(({older(lambda: p(after.key), lambda: p(after.commit_seq))}),"
                f" ({seek(lambda: p(after.key + _NEXT_KEY))}))"
            )
        start = max(after.key + _NEXT_KEY, prefix)
        return seek(lambda: p(start))

    # walk: the row (id, key, commit_seq), whether it is an entry, the entries so far
    # (n, the walk stops at the limit) and the step number (i, the listing order).
    seed = f"SELECT o.id, o.key, o.commit_seq, {counts('o')}, {counts('o')}, 1"
    seed += f" FROM objects o WHERE o.id = ({first()})"
    walked = f"SELECT o.id, o.key, o.commit_seq, {counts('o')}, w.n + {counts('o')}, w.i + 1"
    walked += f" FROM walk w JOIN objects o ON o.id = ({step()}) WHERE w.n < {int(query.limit)}"
    # The entry flag filters on the walk's rows: a condition on `o` here can lead SQLite
    # to build a Bloom filter over the whole table first.
    listed = f"SELECT {rolled('o.key')}, {columns} FROM walk w JOIN objects o ON o.id = w.id"
    listed += " WHERE w.entry = 1 ORDER BY w.i"
    walk = "walk(id, key, seq, entry, n, i)"
    return f"WITH RECURSIVE {walk} AS ({seed} UNION ALL {walked}) {listed}"
