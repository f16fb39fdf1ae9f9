"""Download: find the version, then decide from the request's headers what to send:
nothing new (the client's copy matches), the whole object, or one byte range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from uuid import UUID

from juststorage.application.blob_ports import BlobReader, BlobStore
from juststorage.application.ports import MetadataStore
from juststorage.application.records import LocatedVersion
from juststorage.domain.conditions import ByteRange, etag_matches, parse_range
from juststorage.domain.errors import NotFound
from juststorage.domain.model import Namespace, ObjectKey, ObjectVersion, TenantId


class DownloadAnswer(StrEnum):
    """What a download sends (the API maps each to its HTTP status: 304, 200, 206)."""

    NOT_MODIFIED = "not-modified"  # the client's copy matches: headers only
    WHOLE = "whole"
    PARTIAL = "partial"  # `byte_range` of the object


@dataclass(frozen=True, slots=True)
class DownloadPlan:
    version: ObjectVersion
    answer: DownloadAnswer
    byte_range: ByteRange | None = None

    @property
    def body_length(self) -> int:
        if self.answer is DownloadAnswer.NOT_MODIFIED:
            return 0
        return self.byte_range.length if self.byte_range else self.version.size_bytes


async def find_by_id(
    metadata: MetadataStore, tenant_id: TenantId, object_id: UUID, *, with_bytes: bool = True
) -> LocatedVersion:
    """The committed version with this id in this tenant, with where its bytes are
    (and its inline bytes, unless `with_bytes` is False: a HEAD sends none).

    Raises NotFound otherwise."""
    async with metadata.snapshot() as view:
        return _found(await view.objects.located(tenant_id, object_id, with_bytes=with_bytes))


async def find_newest(
    metadata: MetadataStore,
    tenant_id: TenantId,
    namespace: Namespace,
    key: ObjectKey,
    *,
    with_bytes: bool = True,
) -> LocatedVersion:
    """The newest committed version of a key, with where its bytes are (and its
    inline bytes unless `with_bytes` is False).

    Raises NotFound if it has none."""
    async with metadata.snapshot() as view:
        located = await view.objects.newest_located(
            tenant_id, namespace, key, with_bytes=with_bytes
        )
        return _found(located)


def _found(found: LocatedVersion | None) -> LocatedVersion:
    if found is None:
        raise NotFound("no such object")
    return found


def plan_download(
    version: ObjectVersion, *, range_header: str | None, if_none_match: str | None
) -> DownloadPlan:
    """Conditional first (RFC 9110 §13.2.2): a matching If-None-Match wins over Range.

    Raises:
        RangeNotSatisfiable: a single range outside the object, or several ranges.
    """
    if etag_matches(if_none_match, version.content_hash):
        return DownloadPlan(version, DownloadAnswer.NOT_MODIFIED)
    byte_range = parse_range(range_header, version.size_bytes)
    if byte_range is None:
        return DownloadPlan(version, DownloadAnswer.WHOLE)
    return DownloadPlan(version, DownloadAnswer.PARTIAL, byte_range)


class InlineReader:
    """A `BlobReader` over bytes already in memory: an inline blob (SPEC §8.1)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def path(self) -> Path | None:
        return None

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        if length > 0:
            yield self._data[first : first + length]

    async def close(self) -> None:
        pass


async def open_blob(
    blobs: BlobStore, found: LocatedVersion, *, first: int = 0, length: int | None = None
) -> BlobReader:
    """The version's bytes: from the row its lookup read when the blob is inline (no
    second query, no file open), else from its store.

    Raises NotFound if the blob is gone."""
    if found.inline is not None:
        return InlineReader(found.inline)
    return await blobs.open(found.blob, first=first, length=length)
