"""The object JSON as the API sends it (summarize + orjson): SPEC field formats."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from juststorage.api.rendering import JsonResponse
from juststorage.application.summaries import summarize
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectKey,
    ObjectVersion,
    StorageClass,
    TenantId,
)


class _DriverUuid(uuid.UUID):
    """Like asyncpg's UUID: a subclass, which must still render as the plain UUID."""


def _version(object_id: uuid.UUID, created_at: datetime) -> ObjectVersion:
    return ObjectVersion(
        object_id,
        TenantId("acme"),
        Namespace("docs"),
        ObjectKey("a/b.txt"),
        ContentHash("ab" * 32),
        12,
        StorageClass.COLD,
        "text/plain",
        created_at,
    )


def test_summarize_renders_the_spec_fields() -> None:
    object_id = _DriverUuid(int=7)
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2026, 11, 27, 8, 30, 15, 123456, tzinfo=plus_two)
    body = json.loads(JsonResponse(summarize(_version(object_id, created))).body)
    assert body == {
        "id": "00000000-0000-0000-0000-000000000007",
        "namespace": "docs",
        "tenant_id": "acme",
        "key": "a/b.txt",
        "content_hash": "sha256:" + "ab" * 32,
        "size_bytes": 12,
        "storage_class": "cold",
        "content_type": "text/plain",
        "created_at": "2026-11-27T06:30:15Z",  # UTC, whole seconds, Z
    }


def test_a_list_page_renders_items_and_cursor() -> None:
    versions = [_version(uuid.uuid4(), datetime(2026, 1, 1, tzinfo=UTC)) for _ in range(3)]
    page = {"items": [summarize(v) for v in versions], "next_cursor": None}
    body = json.loads(JsonResponse(page).body)
    assert [item["id"] for item in body["items"]] == [str(v.id) for v in versions]
    assert body["next_cursor"] is None
    assert body["items"][0]["created_at"] == "2026-01-01T00:00:00Z"
