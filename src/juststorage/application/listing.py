"""List: keyset pages of a tenant's namespace, optionally rolled up by a delimiter."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from juststorage.application.ports import MetadataStore
from juststorage.application.records import CommonPrefix, ListQuery
from juststorage.application.summaries import Listed, ObjectSummary
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import delimiter as checked_delimiter

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page: `items` and (with a delimiter) `common_prefixes`, each in key order;
    together at most the query's limit."""

    items: list[ObjectSummary]
    next_cursor: str | None
    common_prefixes: list[str] = field(default_factory=list)


async def list_objects(metadata: MetadataStore, query: ListQuery) -> ListPage:
    """One page; `next_cursor` is None on the last page.

    Raises BadRequest for a delimiter that is not 1-16 bytes of UTF-8 without
    control characters.
    """
    if query.delimiter is not None:
        checked_delimiter(query.delimiter)
    probe = replace(query, limit=query.limit + 1)  # one more entry: is there another page?
    async with metadata.snapshot() as view:
        if query.delimiter is None:
            entries: list[Listed | CommonPrefix] = list(await view.objects.list_page(probe))
        else:
            entries = await view.objects.list_delimited(probe)
    page = entries[: query.limit]
    items = [entry[0] for entry in page if not isinstance(entry, CommonPrefix)]
    prefixes = [entry.prefix for entry in page if isinstance(entry, CommonPrefix)]
    next_cursor = None
    if len(entries) > query.limit:
        next_cursor = _after(page[-1]).encode()
    return ListPage(items, next_cursor, prefixes)


def _after(entry: Listed | CommonPrefix) -> ListCursor:
    """The cursor that resumes after `entry`: past all of a common prefix."""
    if isinstance(entry, CommonPrefix):
        return ListCursor.past(entry.prefix)
    summary, commit_seq = entry
    return ListCursor(summary["key"], commit_seq)
