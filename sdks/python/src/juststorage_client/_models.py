"""What the server answers, as frozen values (SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object version, as upload and list answer it."""

    id: str
    tenant_id: str
    namespace: str
    key: str
    content_hash: str  # "sha256:<hex>"
    size_bytes: int
    storage_class: str
    content_type: str
    created_at: datetime

    @property
    def sha256(self) -> str:
        return self.content_hash.removeprefix("sha256:")

    @property
    def etag(self) -> str:
        return f'"{self.content_hash}"'

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectInfo:
        return cls(
            id=str(data["id"]),
            tenant_id=str(data["tenant_id"]),
            namespace=str(data["namespace"]),
            key=str(data["key"]),
            content_hash=str(data["content_hash"]),
            size_bytes=int(data["size_bytes"]),
            storage_class=str(data["storage_class"]),
            content_type=str(data["content_type"]),
            created_at=_timestamp(str(data["created_at"])),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "namespace": self.namespace,
            "key": self.key,
            "content_hash": self.content_hash,
            "size_bytes": self.size_bytes,
            "storage_class": self.storage_class,
            "content_type": self.content_type,
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class CommonPrefix:
    """Keys a listing with a delimiter rolled up (SPEC §8.4): every key starting
    with `prefix`, which ends with the delimiter."""

    prefix: str

    def to_json(self) -> dict[str, Any]:
        return {"prefix": self.prefix}


@dataclass(frozen=True)
class ListPage:
    """One page of a listing: `items` and (with a delimiter) `common_prefixes`,
    each in key order; `next_cursor` is None on the last page."""

    items: list[ObjectInfo]
    common_prefixes: list[str]
    next_cursor: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ListPage:
        cursor = data.get("next_cursor")
        return cls(
            items=[ObjectInfo.from_json(item) for item in data["items"]],
            common_prefixes=[str(p) for p in data.get("common_prefixes") or []],
            next_cursor=None if cursor is None else str(cursor),
        )

    def entries(self) -> list[ObjectInfo | CommonPrefix]:
        """Items and prefixes merged in key order (UTF-8 byte order is code point order)."""
        merged: list[ObjectInfo | CommonPrefix] = [*self.items]
        merged += [CommonPrefix(p) for p in self.common_prefixes]
        return sorted(merged, key=_entry_key)


def _entry_key(entry: ObjectInfo | CommonPrefix) -> str:
    return entry.prefix if isinstance(entry, CommonPrefix) else entry.key


@dataclass(frozen=True)
class ObjectHead:
    """The headers of a download (HEAD, or GET before its body)."""

    id: str
    content_hash: str  # "sha256:<hex>", from the ETag
    size_bytes: int  # of the whole object
    content_type: str
    storage_class: str
    last_modified: datetime | None

    @property
    def sha256(self) -> str:
        return self.content_hash.removeprefix("sha256:")

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> ObjectHead:
        etag = headers.get("etag", "").strip('"')
        content_range = headers.get("content-range")
        if content_range and "/" in content_range:
            size = int(content_range.rsplit("/", 1)[1])
        else:
            size = int(headers.get("content-length", "0"))
        modified = headers.get("last-modified")
        return cls(
            id=headers.get("x-object-id", ""),
            content_hash=etag,
            size_bytes=size,
            content_type=headers.get("content-type", "application/octet-stream"),
            storage_class=headers.get("x-storage-class", ""),
            last_modified=parsedate_to_datetime(modified) if modified else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "content_hash": self.content_hash,
            "size_bytes": self.size_bytes,
            "content_type": self.content_type,
            "storage_class": self.storage_class,
            "last_modified": self.last_modified.isoformat() if self.last_modified else None,
        }


@dataclass(frozen=True)
class ClassUsage:
    objects: int
    bytes: int
    monthly_cost: float


@dataclass(frozen=True)
class Usage:
    """`GET /v1/usage`: logical totals and the monthly cost per storage class."""

    tenant_id: str
    objects: int
    logical_bytes: int
    by_storage_class: dict[str, ClassUsage]
    monthly_cost: float
    currency: str
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Usage:
        return cls(
            tenant_id=str(data["tenant_id"]),
            objects=int(data["objects"]),
            logical_bytes=int(data["logical_bytes"]),
            by_storage_class={
                name: ClassUsage(int(c["objects"]), int(c["bytes"]), float(c["monthly_cost"]))
                for name, c in data["by_storage_class"].items()
            },
            monthly_cost=float(data["monthly_cost"]),
            currency=str(data["currency"]),
            raw=data,
        )


@dataclass(frozen=True)
class PresignedUrl:
    """`POST /v1/presign`: a URL for one method on one object until `expires_at`."""

    url: str
    method: str
    expires_at: datetime
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any], base_url: str) -> PresignedUrl:
        url = str(data["url"])
        if url.startswith("/"):  # a path and query: this client's server
            url = base_url.rstrip("/") + url
        return cls(url, str(data["method"]), _timestamp(str(data["expires_at"])), data)


@dataclass(frozen=True)
class Health:
    """`/health` or `/ready`: `ok` is True only on a 200 with status "ok"."""

    ok: bool
    status: str
    checks: dict[str, str]

    @classmethod
    def from_response(cls, response: httpx.Response) -> Health:
        try:
            data = response.json()
        except ValueError:
            data = {}
        status = str(data.get("status", "unavailable")) if isinstance(data, dict) else "?"
        checks = data.get("checks", {}) if isinstance(data, dict) else {}
        return cls(
            ok=response.status_code == 200 and status == "ok",
            status=status,
            checks={str(k): str(v) for k, v in checks.items()},
        )
