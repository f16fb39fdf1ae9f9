"""Multipart upload sessions as the server answers them (SPEC §8.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UploadedPart:
    """One part the server holds durably."""

    part: int
    size_bytes: int
    sha256: str  # hex

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadedPart:
        return cls(
            part=int(data["part"]),
            size_bytes=int(data["size_bytes"]),
            sha256=str(data["sha256"]).removeprefix("sha256:"),
        )


@dataclass(frozen=True)
class UploadSession:
    """A multipart upload: where it will commit and the parts received so far."""

    upload_id: str
    tenant_id: str
    namespace: str
    key: str
    state: str
    parts: tuple[UploadedPart, ...]
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadSession:
        return cls(
            upload_id=str(data["upload_id"]),
            tenant_id=str(data.get("tenant_id", "")),
            namespace=str(data.get("namespace", "")),
            key=str(data.get("key", "")),
            state=str(data.get("state", "open")),
            parts=tuple(UploadedPart.from_json(p) for p in data.get("parts", [])),
            raw=data,
        )
