"""SQL shared by the SQLite and PostgreSQL adapters, with the placeholder style injected."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from juststorage.application.records import INLINE_PREFIX, ListQuery
from juststorage.domain.model import (
    ObjectState,
    ObjectVersion,
    StorageClass,
    prefix_upper_bound,
    skip_past,
)

# The columns of an object version, in the order the repositories read a row.
SELECT_OBJECT = (
    "id, tenant_id, namespace, key, content_hash, size_bytes, storage_class,"
    " content_type, created_at, state, commit_seq, s3_etag, user_metadata"
)


def inline_address(hash_column: str) -> str:
    """SQL for the address of a blob kept in the database (SPEC §8.1), built from the
    row's `hash_column`: its bytes are in inline_blobs."""
    return f"'{INLINE_PREFIX}' || {hash_column}"


class Params:
    """Collects bound values and hands out placeholders: `?` (sqlite3) or `$n` (asyncpg)."""

    def __init__(self, numbered: bool) -> None:
        self.values: list[Any] = []
        self._numbered = numbered

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self._numbered else "?"


def list_page_sql(query: ListQuery, params: Params, columns: str, *, newest_only: bool) -> str:
    """Keyset page over the committed-by-key index (see the migrations), in listing order.

    `columns` is the dialect's `summary_columns`: the `ObjectSummary` fields but
    tenant and namespace, then `commit_seq`, all of `objects o`. With `newest_only`
    the database keeps only each key's newest committed version; without it every
    committed version is listed.
    """
    p: Callable[[Any], str] = params
    where = [f"o.tenant_id = {p(query.tenant_id)}", f"o.namespace = {p(query.namespace)}"]
    where.append("o.state = 'COMMITTED'")
    # One lower bound on the key, the tighter of prefix and cursor: SQLite starts an
    # index range from one of them only, and from the prefix a deep page would step
    # over every row before its cursor.
    past = _past_rolled_up(query)
    after = query.after if _resumes_at_cursor(query) else None
    if past is not None:
        where.append(f"o.key >= {p(past)}")
    elif query.prefix and after is None:
        where.append(f"o.key >= {p(query.prefix)}")
    if query.prefix:
        upper = prefix_upper_bound(query.prefix)
        if upper is not None:
            where.append(f"o.key < {p(upper)}")
    if after is not None:
        # `key >= cursor` bounds the index range; the OR only filters rows of that one key.
        key, seq = after.key, after.commit_seq
        where.append(f"o.key >= {p(key)} AND (o.key > {p(key)} OR o.commit_seq < {p(seq)})")
    if query.storage_class is not None:
        where.append(f"o.storage_class = {p(query.storage_class.value)}")
    if newest_only:
        where.append(
            "NOT EXISTS (SELECT 1 FROM objects n WHERE n.tenant_id = o.tenant_id"
            " AND n.namespace = o.namespace AND n.key = o.key AND n.state = 'COMMITTED'"
            " AND n.commit_seq > o.commit_seq)"
        )
    return (
        f"SELECT {columns} FROM objects o WHERE {' AND '.join(where)}"
        f" ORDER BY o.key, o.commit_seq DESC LIMIT {p(query.limit)}"
    )


def _past_rolled_up(query: ListQuery) -> str | None:
    """The key range's start after a cursor past a common prefix (SPEC §8.4), when it
    is tighter than the prefix; else None."""
    if query.after is None or not query.after.rolled_up:
        return None
    past = skip_past(query.after.key)
    return past if past >= query.prefix else None


def _resumes_at_cursor(query: ListQuery) -> bool:
    """True if the cursor is after a version whose key is within or past the prefix."""
    after = query.after
    return after is not None and not after.rolled_up and after.key >= query.prefix


def newest_by_key_sql(query: ListQuery, params: Params, columns: str) -> str:
    """Each key's newest committed version, `query.limit` keys from after the cursor's
    key (`query.after.commit_seq` is not used), in key order; no storage-class filter.

    A loose index scan: a recursive step seeks the next key on the committed-by-key
    index, then one more seek finds that key's newest version. A page costs about two
    index seeks per key however many versions its keys have, where scanning (or the
    `NOT EXISTS` filter) visits every version.
    """
    p: Callable[[Any], str] = params

    upper = prefix_upper_bound(query.prefix) if query.prefix else None

    def scope(alias: str, *, below_prefix_end: bool) -> str:
        where = [
            f"{alias}.tenant_id = {p(query.tenant_id)}",
            f"{alias}.namespace = {p(query.namespace)}",
            f"{alias}.state = 'COMMITTED'",
        ]
        if below_prefix_end and upper is not None:
            where.append(f"{alias}.key < {p(upper)}")
        return " AND ".join(where)

    # Each seek has one lower bound (SQLite starts an index range from one only): the
    # first from the tighter of cursor and prefix, each next one from the key before.
    # Placeholders bind in the order they are made: build the text in that order.
    first = f"SELECT k.key FROM objects k WHERE {scope('k', below_prefix_end=True)}"
    past = _past_rolled_up(query)
    if past is not None:
        first += f" AND k.key >= {p(past)}"
    elif query.after is not None and _resumes_at_cursor(query):
        first += f" AND k.key > {p(query.after.key)}"
    elif query.prefix:
        first += f" AND k.key >= {p(query.prefix)}"
    first += " ORDER BY k.key LIMIT 1"
    following = (
        f"SELECT k.key FROM objects k WHERE {scope('k', below_prefix_end=True)}"
        " AND k.key > h.key ORDER BY k.key LIMIT 1"
    )
    heads = (
        f"WITH RECURSIVE heads(key, n) AS (SELECT ({first}), 1"
        f" UNION ALL SELECT ({following}), h.n + 1 FROM heads h"
        f" WHERE h.key IS NOT NULL AND h.n < {p(query.limit)})"
    )
    newest = (
        f"SELECT v.id FROM objects v WHERE {scope('v', below_prefix_end=False)}"
        " AND v.key = h.key ORDER BY v.commit_seq DESC LIMIT 1"
    )
    return (
        f"{heads} SELECT {columns} FROM heads h JOIN objects o ON o.id = ({newest})"
        " WHERE h.key IS NOT NULL ORDER BY h.key"
    )


# Upload by hash's probe (SPEC §8.3): the smallest size at or above the asked one
# among the tenant's committed objects of that class and content; the tenant holds
# the content if it is the asked size. `{index}` is the dialect's
# `tenant_content_index`.
#
# Its cost must not depend on other tenants' rows (SPEC §5), so only
# objects_committed_by_tenant_blob (migration 0009) may answer it, whatever the
# statistics say. A plain `... AND size_bytes = ? LIMIT 1` leaves that to the
# planner: when one content makes up much of the table, PostgreSQL expects a match
# within the first rows of a sequential scan, and reads the whole table for a tenant
# that holds none. Asking for rows in size order removes that bet: with tenant, class
# and hash fixed, only that index yields them already sorted, so the LIMIT stops at
# its first entry, while any other plan must read and sort every candidate first
# (the whole table for a scan, every tenant's rows of the content for the index by
# hash). Only a table of a few pages is then read whole, at the same cost for every
# hash. On SQLite the usage index (tenant, class, size) yields that order too, and
# stale statistics can make it or a scan look cheaper: INDEXED BY pins the probe.
# `SET LOCAL enable_seqscan = off` would not do: PostgreSQL then walks the index by
# hash through every tenant's rows of the content, and the setting would outlive
# the probe for the rest of its transaction.
HOLDS_CONTENT_SQL = (
    "SELECT size_bytes FROM objects{index}"
    " WHERE tenant_id = ? AND storage_class = ? AND content_hash = ?"
    " AND size_bytes >= ? AND state = 'COMMITTED' ORDER BY size_bytes LIMIT 1"
)


USAGE_SQL = (
    "SELECT storage_class, SUM(objects), SUM(size_bytes) FROM usage_counters"
    " WHERE tenant_id = {tenant} GROUP BY storage_class"
)

# Adds a delta to one shard of a tenant's usage counters (see migration 0003).
USAGE_SHARDS = 16


def count_usage_sql(rows: int) -> str:
    """Adds `rows` deltas (tenant, class, shard, objects, bytes; `?` placeholders) to the
    usage counters in one statement. The rows' keys differ."""
    values = ", ".join(["(?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO usage_counters (tenant_id, storage_class, shard, objects, size_bytes)"
        f" VALUES {values} ON CONFLICT (tenant_id, storage_class, shard)"
        " DO UPDATE SET objects = usage_counters.objects + excluded.objects,"
        " size_bytes = usage_counters.size_bytes + excluded.size_bytes"
    )


def usage_deltas(versions: list[ObjectVersion], sign: int) -> dict[StorageClass, tuple[int, int]]:
    """(objects, bytes) to add per storage class when `versions` appear (+1) or go (-1)."""
    deltas: dict[StorageClass, tuple[int, int]] = {}
    for version in versions:
        objects, size = deltas.get(version.storage_class, (0, 0))
        deltas[version.storage_class] = (objects + sign, size + sign * version.size_bytes)
    return deltas


# Census counter rows (see migration 0005) of every live state; a handful per
# (tenant, namespace, class, state), whatever the number of objects.
CENSUS_SQL = (
    "SELECT tenant_id, namespace, state, storage_class, SUM(objects), SUM(size_bytes)"
    " FROM census_counters GROUP BY tenant_id, namespace, state, storage_class"
    " HAVING SUM(objects) <> 0 OR SUM(size_bytes) <> 0"
)
# The namespaces of one tenant that hold committed versions: its census rows only
# (the primary key starts with the tenant), however many objects they count.
NAMESPACES_SQL = (
    "SELECT namespace, SUM(objects), SUM(size_bytes) FROM census_counters"
    " WHERE tenant_id = ? AND state = 'COMMITTED' GROUP BY namespace"
    " HAVING SUM(objects) > 0"
)
CensusKey = tuple[str, str, str, str]  # tenant, namespace, storage class, state
CensusDeltas = dict[CensusKey, tuple[int, int]]  # → (objects, bytes)


def census_deltas(
    versions: list[ObjectVersion], state: ObjectState, sign: int, *, sized: bool = True
) -> CensusDeltas:
    """(objects, bytes) to add per census row when `versions` enter (+1) or leave (-1)
    `state`; without `sized` the bytes are not counted (a WRITING row has no size)."""
    deltas: CensusDeltas = {}
    for version in versions:
        key = (
            str(version.tenant_id),
            str(version.namespace),
            version.storage_class.value,
            state.value,
        )
        objects, size = deltas.get(key, (0, 0))
        deltas[key] = (objects + sign, size + (sign * version.size_bytes if sized else 0))
    return deltas


def count_census_sql(rows: int) -> str:
    """Adds `rows` deltas (tenant, namespace, class, state, shard, objects, bytes; `?`
    placeholders) to the census counters in one statement. The rows' keys differ."""
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * rows)
    return (
        "INSERT INTO census_counters"
        " (tenant_id, namespace, storage_class, state, shard, objects, size_bytes)"
        f" VALUES {values} ON CONFLICT (tenant_id, namespace, storage_class, state, shard)"
        " DO UPDATE SET objects = census_counters.objects + excluded.objects,"
        " size_bytes = census_counters.size_bytes + excluded.size_bytes"
    )
