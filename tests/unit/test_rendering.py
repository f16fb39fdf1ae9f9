"""The object JSON as the API sends it (summarize + orjson): SPEC field formats."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from juststorage.api.rendering import JsonResponse, download_headers, http_date
from juststorage.application.downloads import DownloadAnswer, DownloadPlan
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


def _reference_http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def test_http_date_is_the_email_modules_imf_fixdate_for_many_moments() -> None:
    rng = random.Random(1234)
    zones = [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9, minutes=-30))]
    moments = [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),  # before the epoch
        datetime(2000, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),  # leap day, last microsecond
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=-1))),
        datetime(2099, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC),
    ]
    for _ in range(20_000):
        seconds = rng.uniform(-86_400 * 365 * 5, 4_102_444_800)  # 1965 to 2100
        moments.append(datetime.fromtimestamp(seconds, rng.choice(zones)))
    # Many moments in a few seconds: the cached strings must still be each second's own.
    base = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC).timestamp()
    moments += [datetime.fromtimestamp(base + i / 7, UTC) for i in range(100)]
    for moment in moments + moments:  # twice: formatted, then from the cache
        assert http_date(moment) == _reference_http_date(moment), moment


def test_download_headers_carry_the_last_modified_of_the_version() -> None:
    created = datetime(2026, 11, 27, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    version = _version(uuid.uuid4(), created)
    headers = dict(download_headers(DownloadPlan(version, DownloadAnswer.WHOLE)))
    assert headers[b"last-modified"] == b"Fri, 27 Nov 2026 06:30:15 GMT"
    assert headers[b"content-length"] == b"12"
    assert headers[b"content-type"] == b"text/plain"
    assert headers[b"etag"] == b'"sha256:' + b"ab" * 32 + b'"'
