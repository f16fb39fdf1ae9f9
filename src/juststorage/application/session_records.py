"""Records of resumable multipart uploads (SPEC §8.2) that the ports pass: the
session row, its stored parts, and the part files a store's scan finds.

The Protocols that take and return them are `UploadSessionRows` (ports.py) and
`PartStore` (blob_ports.py); the use cases are in `sessions.py`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectKey,
    StorageClass,
    TenantId,
)

MIN_PART_NUMBER = 1
MAX_PART_NUMBER = 10000


class SessionState(enum.StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class SessionPart:
    """One stored part: its bytes at `address` in the session's class, their digest,
    and the quota reservation that counts them until the completion (None: no quota)."""

    number: int
    size_bytes: int
    sha256: ContentHash
    address: str
    created_at: datetime
    reservation_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class UploadSession:
    """A session row with its parts sorted by number (none once completed)."""

    id: UUID
    tenant_id: TenantId
    namespace: Namespace
    key: ObjectKey
    storage_class: StorageClass
    content_type: str
    expected_hash: ContentHash | None
    precondition: WritePrecondition
    state: SessionState
    created_at: datetime
    expires_at: datetime
    object_id: UUID | None = None
    parts: tuple[SessionPart, ...] = ()


@dataclass(frozen=True, slots=True)
class PartFile:
    """A part's bytes as a store's `PartStore.scan` finds them: the session they belong
    to, the store's `address` for them, and the process that wrote them (`owner`,
    where the store keeps it): GC and fsck compare these with the part rows."""

    storage_class: StorageClass
    session_id: UUID
    address: str
    size_bytes: int
    modified_at: datetime
    owner: str = ""
