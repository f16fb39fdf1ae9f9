"""The SPEC's object JSON: what a listing page holds and an upload answers."""

from __future__ import annotations

from typing import TypedDict

from juststorage.domain.model import ObjectVersion
from juststorage.domain.timestamps import utc_text


class ObjectSummary(TypedDict):
    """The SPEC's object JSON, every value already in its JSON form.

    Listings go from database rows to this without building an `ObjectVersion`
    (the database formats the values), which keeps a page of 1000 cheap.
    """

    id: str
    namespace: str
    tenant_id: str
    key: str
    content_hash: str  # "sha256:<hex>"
    size_bytes: int
    storage_class: str
    content_type: str
    created_at: str  # RFC 3339, UTC, whole seconds (truncated), with "Z"


def summarize(version: ObjectVersion) -> ObjectSummary:
    """`version` as the SPEC's object JSON."""
    return {
        "id": str(version.id),
        "namespace": version.namespace,
        "tenant_id": version.tenant_id,
        "key": version.key,
        "content_hash": version.content_hash.prefixed,
        "size_bytes": version.size_bytes,
        "storage_class": version.storage_class.value,
        "content_type": version.content_type,
        "created_at": utc_text(version.created_at),
    }


# One listed version: its summary and its commit_seq (which a cursor carries).
Listed = tuple[ObjectSummary, int]
