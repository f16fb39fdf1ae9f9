"""Records the ports pass across the application's edge: plain frozen values.

The Protocols that take and return them are in `ports.py`; the object JSON the
listing returns is in `summaries.py`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from juststorage.domain.auth import Scope
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectState,
    StorageClass,
    TenantId,
)


@dataclass(frozen=True, slots=True)
class ListQuery:
    tenant_id: TenantId
    namespace: Namespace
    limit: int
    after: ListCursor | None = None
    prefix: str = ""
    all_versions: bool = False
    storage_class: StorageClass | None = None


@dataclass(frozen=True, slots=True)
class ClassUsage:
    storage_class: StorageClass
    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Census:
    """How many versions (and logical bytes) are in one state, per tenant/namespace/class."""

    tenant_id: str
    namespace: str
    state: ObjectState
    storage_class: StorageClass
    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A stored API key: never the key itself, only its hash."""

    id: str
    key_hash: str
    tenants: frozenset[str]
    scopes: frozenset[Scope]
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class WritingUpload:
    """An upload in flight (or dead): its `WRITING` row."""

    id: UUID
    storage_class: StorageClass
    owner: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """A blob: its identity is (class, hash); `key` is where a keyed store holds it
    (the `blobs.location` column), None where the place follows from the hash."""

    storage_class: StorageClass
    content_hash: ContentHash
    key: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class BlobAudit:
    """A blob row with the number of committed objects that point at it (for fsck)."""

    location: BlobLocation
    size_bytes: int
    ref_count: int
    live_objects: int


@dataclass(frozen=True, slots=True)
class TempFile:
    """An upload in flight: a temp file, or an unfinished multipart upload.

    A temp file is `<upload id>.tmp`, or `<upload id>.<owner>.tmp` where `<owner>`
    is the uploading process's identity in URL-safe base64, so GC can leave the
    temp files of live processes alone without asking the database. `handle` is
    what the store needs to remove it (the multipart upload's id)."""

    storage_class: StorageClass
    name: str
    modified_at: datetime
    handle: str = field(default="", compare=False)

    @staticmethod
    def name_for(upload_id: UUID, owner: str = "") -> str:
        if not owner:
            return f"{upload_id}.tmp"
        encoded = base64.urlsafe_b64encode(owner.encode()).decode().rstrip("=")
        return f"{upload_id}.{encoded}.tmp"

    @property
    def upload_id(self) -> str:
        return self.name.removesuffix(".tmp").partition(".")[0]

    @property
    def owner(self) -> str:
        """The owner's identity; "" when the name carries none (or is not ours)."""
        encoded = self.name.removesuffix(".tmp").partition(".")[2]
        try:
            return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return ""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    location: BlobLocation
    size_bytes: int
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An object of a keyed store; `upload_id` is the upload that wrote it, if any."""

    storage_class: StorageClass
    key: str
    size_bytes: int
    modified_at: datetime
    upload_id: UUID | None
