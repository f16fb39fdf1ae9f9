"""Upload by hash (SPEC §8.3): commit a new version from content its tenant already
stores, without a body.

The lookup is one read of the caller's tenant's own rows (`holds_content`), so no
answer, and no answer's timing, depends on what other tenants store (SPEC §5). A
match is committed through the uploads' group commit, which takes the blob's
reference only while the blob still holds one (`acquire_referenced`): a GC pass
removes a blob only under the same row lock with no reference left, so the new
version never points at bytes GC removed between the lookup and the commit
(docs/durability.md).
"""

from __future__ import annotations

import uuid

from juststorage.application.commits import NOT_HELD, SealedUpload
from juststorage.application.ports import UnitOfWork
from juststorage.application.quota import QuotaHold
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import Uploader, UploadRequest, UploadResult
from juststorage.domain.errors import NotFound, PayloadTooLarge
from juststorage.domain.model import ContentHash, NewUpload


async def upload_by_hash(
    uploader: Uploader, request: UploadRequest, content_hash: ContentHash, size_bytes: int
) -> UploadResult:
    """Commit a version of `request`'s key whose bytes are the blob of `content_hash`
    and `size_bytes` in `request.storage_class`, if the request's tenant holds a
    committed object of them (in any namespace). Durable when it returns, as an upload.

    Raises:
        NotFound: the tenant holds no such object (content of other tenants never
            counts), or its last one went, and its blob with it, before the commit.
        PayloadTooLarge: over `max_object_bytes`, or over the tenant's quota.
        PreconditionFailed: `If-None-Match` / `If-Match` do not hold at commit.
    """
    if size_bytes > uploader.max_object_bytes:
        raise PayloadTooLarge(f"objects are limited to {uploader.max_object_bytes} bytes")
    async with uploader.metadata.snapshot() as view:
        held = await view.objects.holds_content(
            request.tenant_id, request.storage_class, content_hash, size_bytes
        )
    if not held:
        raise NotFound(NOT_HELD)
    return await commit_reference(uploader, request, content_hash, size_bytes)


async def commit_reference(
    uploader: Uploader,
    request: UploadRequest,
    content_hash: ContentHash,
    size_bytes: int,
    *,
    s3_etag: str | None = None,
) -> UploadResult:
    """Commit a version of `request`'s key whose bytes are the stored blob of
    `content_hash` and `size_bytes` in `request.storage_class`, taking a reference on
    it only while it still holds one: no bytes move. The caller has established that
    its credential may read an object of those bytes (an upload by hash: its tenant
    holds one; a server-side copy: the source object it named).

    Raises:
        NotFound: the blob lost its last reference before the commit.
        PayloadTooLarge: over the tenant's quota.
        PreconditionFailed: `If-None-Match` / `If-Match` do not hold at commit.
    """
    upload = NewUpload(
        id=uuid.uuid4(),
        tenant_id=request.tenant_id,
        namespace=request.namespace,
        key=request.key,
        storage_class=request.storage_class,
        content_type=request.content_type,
        created_at=uploader.clock.now(),
        owner=uploader.owner,
        s3_etag=s3_etag,
        user_metadata=request.user_metadata,
    )
    quota_bytes = uploader.quota_of(request.tenant_id)
    hold = None
    if quota_bytes is not None:
        hold = QuotaHold(
            uploader.metadata, uploader.clock, request.tenant_id, quota_bytes, upload.id
        )
        await hold.cover(size_bytes)  # logical bytes count as for any upload (SPEC §2 Usage)
    try:
        committed = await uploader.committer.commit(
            SealedUpload(
                upload,
                registered=False,
                content_hash=content_hash,
                size_bytes=size_bytes,
                precondition=request.precondition,
                staged=_NoBytes(),
                reserved=hold is not None,
                by_reference=True,
            )
        )
    except BaseException:
        if hold is not None:
            await hold.release()
        raise
    return UploadResult(committed.version, deduplicated=True)


class _NoBytes:
    """The `StagedBlob` of an upload by hash: it brings no bytes, so it has no address
    and nothing to settle once the group commit has taken the blob's reference."""

    address = ""

    async def write(self, chunk: bytes) -> None:
        raise NotImplementedError("an upload by hash has no body")

    async def seal(self) -> tuple[ContentHash, int]:
        raise NotImplementedError("an upload by hash has no body")

    async def publish(self) -> bool:
        return False

    def inline_bytes(self, blob: BlobLocation) -> bytes | bytearray | None:
        return None

    async def confirm(self, blob: BlobLocation, *, uow: UnitOfWork) -> bool:
        return False
