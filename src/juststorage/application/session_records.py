"""Records of resumable multipart uploads (SPEC §8.2) that the ports pass: the
session row, its stored parts, and the part files a store's scan finds.

The Protocols that take and return them are `UploadSessionRows` (ports.py) and
`PartStore` (blob_ports.py); the use cases are in `sessions.py`.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import NotFound
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectKey,
    StorageClass,
    TenantId,
)

MIN_PART_NUMBER = 1
MAX_PART_NUMBER = 10000


class DamagedPart(NotFound):
    """A part's stored bytes no longer hash to the sha256 its row recorded when the
    part was acknowledged (bit rot, a file replaced by hand): as good as lost. The
    client is told to send that part again; `details` (the address and both digests)
    is for the server's log only."""

    def __init__(self, number: int, address: str, expected: str, found: str) -> None:
        super().__init__(
            f"part {number} of the upload session is damaged (its stored bytes changed"
            f" since it was acknowledged) and was dropped; send part {number} again"
        )
        self.number = number
        self.details = f"part={number} address={address} recorded={expected} read={found}"


class PartCheck:
    """The digest of one part's bytes as they are read back, compared with its row's."""

    def __init__(self, number: int, address: str, expected: ContentHash) -> None:
        self._number = number
        self._address = address
        self._expected = expected.hex
        self.hasher = hashlib.sha256()  # fed by `update`, or by a caller in a thread

    @classmethod
    def of(cls, part: SessionPart) -> PartCheck:
        return cls(part.number, part.address, part.sha256)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self.hasher.update(data)

    def verify(self) -> None:
        """Raises DamagedPart unless the bytes read hash to the row's sha256."""
        found = self.hasher.hexdigest()
        if found != self._expected:
            raise DamagedPart(self._number, self._address, self._expected, found)


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
    # Set (`{}` at least) when the S3 gateway opened the session: its `x-amz-meta-*`
    # for the object, which gets S3's multipart ETag.
    user_metadata: str | None = None


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


@dataclass(frozen=True, slots=True)
class StreamSlot:
    """Where an in-order part may go (`PartStore.receive`): appended to the session's
    stream `name` at `offset`, where the parts before it in this stream end. A store
    that keeps in-order parts as one file completes such a session without copying."""

    name: str
    offset: int


# A part's address may name a byte range of a stored file: `<file>@<offset>:<length>`.
RANGE_MARK = "@"


def stored_name(address: str) -> str:
    """The stored file (or object) an address names, without its range."""
    return address.partition(RANGE_MARK)[0]
