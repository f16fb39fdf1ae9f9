"""List: keyset pages of a tenant's namespace."""

from __future__ import annotations

from dataclasses import dataclass

from juststorage.application.ports import MetadataStore
from juststorage.application.records import ListQuery
from juststorage.application.summaries import ObjectSummary
from juststorage.domain.cursor import ListCursor

MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[ObjectSummary]
    next_cursor: str | None


async def list_objects(metadata: MetadataStore, query: ListQuery) -> ListPage:
    """One page; `next_cursor` is None on the last page."""
    probe = ListQuery(
        tenant_id=query.tenant_id,
        namespace=query.namespace,
        limit=query.limit + 1,  # one extra row tells whether another page exists
        after=query.after,
        prefix=query.prefix,
        all_versions=query.all_versions,
        storage_class=query.storage_class,
    )
    async with metadata.snapshot() as view:
        rows = await view.objects.list_page(probe)
    items = [summary for summary, _ in rows[: query.limit]]
    next_cursor = None
    if len(rows) > query.limit:
        last, commit_seq = rows[query.limit - 1]
        next_cursor = ListCursor(last["key"], commit_seq).encode()
    return ListPage(items, next_cursor)
