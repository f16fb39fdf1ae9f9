"""Domain values → JSON bodies and response headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from juststorage.application.downloads import DownloadPlan
from juststorage.application.usage import TenantUsage
from juststorage.domain.model import ObjectVersion


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def object_json(version: ObjectVersion) -> dict[str, Any]:
    return {
        "id": str(version.id),
        "namespace": version.namespace,
        "tenant_id": version.tenant_id,
        "key": version.key,
        "content_hash": version.content_hash.prefixed,
        "size_bytes": version.size_bytes,
        "storage_class": version.storage_class.value,
        "content_type": version.content_type,
        "created_at": rfc3339(version.created_at),
    }


def usage_json(usage: TenantUsage) -> dict[str, Any]:
    return {
        "tenant_id": usage.tenant_id,
        "objects": usage.objects,
        "logical_bytes": usage.logical_bytes,
        "by_storage_class": {
            storage_class.value: {
                "objects": cost.objects,
                "bytes": cost.size_bytes,
                "monthly_cost": cost.monthly_cost,
            }
            for storage_class, cost in usage.by_storage_class.items()
        },
        "monthly_cost": usage.monthly_cost,
        "currency": usage.currency,
    }


def download_headers(plan: DownloadPlan) -> dict[str, str]:
    version = plan.version
    headers = {
        "ETag": version.content_hash.etag,
        "Last-Modified": format_datetime(version.created_at.astimezone(UTC), usegmt=True),
        "X-Object-Id": str(version.id),
        "X-Storage-Class": version.storage_class.value,
        "Accept-Ranges": "bytes",
        "Content-Type": version.content_type,
    }
    if plan.status != 304:
        headers["Content-Length"] = str(plan.body_length)
    if plan.byte_range is not None:
        headers["Content-Range"] = plan.byte_range.content_range(version.size_bytes)
    return headers
