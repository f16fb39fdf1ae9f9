"""Records the ports pass across the application's edge: plain frozen values.

The Protocols that take and return them are in `ports.py`; the object JSON the
listing returns is in `summaries.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from juststorage.domain.auth import Scope
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    ObjectState,
    ObjectVersion,
    StorageClass,
    TenantId,
)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page of a listing: after `after`, keys starting with `prefix`.

    With a `delimiter` (SPEC §8.4), keys that hold it after the prefix are rolled
    up into common prefixes; `storage_class` then filters the items only.
    """

    tenant_id: TenantId
    namespace: Namespace
    limit: int
    after: ListCursor | None = None
    prefix: str = ""
    all_versions: bool = False
    storage_class: StorageClass | None = None
    delimiter: str | None = None


@dataclass(frozen=True, slots=True)
class CommonPrefix:
    """Keys a delimited listing rolled up: every key starting with `prefix`."""

    prefix: str


@dataclass(frozen=True, slots=True)
class ClassUsage:
    """A tenant's committed versions of one class: how many, and their logical bytes."""

    storage_class: StorageClass
    objects: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class NamespaceUsage:
    """A namespace holding committed versions of a tenant: how many, their logical bytes."""

    namespace: str
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


# The address prefix of a blob kept in the metadata database (SPEC §8.1): its bytes
# are in `inline_blobs`, and the rest of the address is its hash's hex.
INLINE_PREFIX = "inline:"


def is_inline_address(address: str) -> bool:
    """Whether `address` names a blob kept in the metadata database (`inline:<hex>`)."""
    return address.startswith(INLINE_PREFIX)


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """A blob: its identity is (class, hash); `address` is where its store keeps it.

    The address is what `StagedBlob.address` gave when the bytes were stored, and
    the blob index records it. Left out, it is the content address (the hash's
    hex), which is every blob row's address that records none.
    """

    storage_class: StorageClass
    content_hash: ContentHash
    address: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.address:
            object.__setattr__(self, "address", self.content_hash.hex)

    @property
    def is_inline(self) -> bool:
        """Whether the bytes are kept in the metadata database (`inline:<hex>`)."""
        return is_inline_address(self.address)


@dataclass(frozen=True, slots=True)
class LocatedVersion:
    """A committed version and where its bytes are, read together (downloads);
    `inline` holds the bytes themselves when the blob is kept in the database."""

    version: ObjectVersion
    blob: BlobLocation
    inline: bytes | None = None


@dataclass(frozen=True, slots=True)
class BlobAudit:
    """A blob row with the number of committed objects that point at it (for fsck)."""

    location: BlobLocation
    size_bytes: int
    ref_count: int
    live_objects: int


@dataclass(frozen=True, slots=True)
class TempFile:
    """An upload in flight (or dead): a temp file, or an unfinished multipart upload.

    `name` is what its store removes it by. `upload_id` is the upload that wrote it,
    if the store can tell; `owner` is the uploading process's identity when the store
    keeps it with the upload (the filesystem does, in the file's name), so GC can
    leave the uploads of live processes alone without asking the database.
    """

    storage_class: StorageClass
    name: str
    modified_at: datetime
    upload_id: UUID | None
    owner: str = ""


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """One stored thing a store's `scan` found, whoever it belongs to.

    Who may adopt it decides how it is removed when the index does not know it:
    `content_hash` is set when the address names its content (any upload of those
    bytes may take it as its blob, so removing it must hold that content's row
    lock); `upload_id` is set when the address belongs to one upload (only that
    upload can adopt it, so the absence of its `WRITING` row is enough); neither
    when no upload can adopt it (a leftover probe object).
    """

    storage_class: StorageClass
    address: str
    size_bytes: int
    modified_at: datetime
    content_hash: ContentHash | None = None
    upload_id: UUID | None = None
