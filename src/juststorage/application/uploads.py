"""Upload: stream → hash → fsync → publish → reference → commit (SPEC §5)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, replace

import anyio

from juststorage.application.blob_ports import BlobStore
from juststorage.application.commits import GroupCommitter, SealedUpload
from juststorage.application.ports import Clock, MetadataStore
from juststorage.application.quota import QuotaHold
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import BadRequest, ChecksumMismatch, PayloadTooLarge, StorageError
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectVersion,
    StorageClass,
    TenantId,
)

HEARTBEAT_SECONDS = 60.0  # well under GcPolicy.remote_owner_seconds
# Uploads that declare at most this many bytes write no WRITING row (RegistrationPolicy).
UNREGISTERED_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class UploadRequest:
    tenant_id: TenantId
    namespace: Namespace
    key: ObjectKey
    storage_class: StorageClass = StorageClass.HOT
    content_type: str = "application/octet-stream"
    declared_size: int | None = None
    expected_hash: ContentHash | None = None
    precondition: WritePrecondition = WritePrecondition()
    # Through the S3 gateway: `x-amz-meta-*` as JSON, and the MD5 hex of the body,
    # asked once the body has ended (its reader computes it while streaming).
    user_metadata: str | None = None
    md5_of: Callable[[], str | None] | None = None


@dataclass(frozen=True, slots=True)
class UploadResult:
    """The committed version; `deduplicated` when its bytes were stored already."""

    version: ObjectVersion
    deduplicated: bool


@dataclass(frozen=True, slots=True)
class RegistrationPolicy:
    """Which uploads write a `WRITING` row before their bytes arrive.

    The row marks a large upload in flight: GC reaps it if the process dies, and
    losing it in a power cut is harmless, so its commit need not be flushed. A small
    upload commits without one and saves a database round (docs/performance.md):
    where its store keeps the uploading process's identity with the bytes (the
    filesystem's temp file names), that keeps GC away. `always` names the classes
    whose store cannot keep it (an S3 object does not say who writes it): there GC
    judges every stored upload by its `WRITING` row, so every upload writes one,
    except one declared to be at most `inline_max_bytes`: kept in memory until its
    commit writes it inline (SPEC §8.1), it stores nothing GC could judge.
    """

    unregistered_max_bytes: int = UNREGISTERED_MAX_BYTES
    always: frozenset[StorageClass] = frozenset()
    inline_max_bytes: int = 0

    def registers(self, request: UploadRequest) -> bool:
        """True if this upload writes its `WRITING` row first."""
        declared = request.declared_size
        if declared is not None and self.inline_max_bytes > 0 and declared <= self.inline_max_bytes:
            return False
        return (
            request.declared_size is None
            or request.declared_size > self.unregistered_max_bytes
            or request.storage_class in self.always
        )


class Uploader:
    """Stores object versions; one per process (bootstrap builds it), so that every
    upload shares its one `GroupCommitter`."""

    def __init__(
        self,
        *,
        metadata: MetadataStore,
        blobs: BlobStore,
        clock: Clock,
        max_object_bytes: int,
        quota_of: Callable[[TenantId], int | None] | None = None,
        registration: RegistrationPolicy,
        owner: str = "",
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self.clock = clock
        self.max_object_bytes = max_object_bytes
        self.quota_of = quota_of or _no_quota
        self.owner = owner
        self.registration = registration
        self.committer = GroupCommitter(metadata)

    async def upload(self, request: UploadRequest, body: AsyncIterable[bytes]) -> UploadResult:
        """Store one object version and return it once bytes and metadata are durable.

        Raises:
            PayloadTooLarge: the body is, or is declared to be, over `max_object_bytes`,
                or over what the tenant's quota leaves: logical bytes of its committed
                versions (as usage counts them) and of its uploads in flight on every
                process, which reserve their declared length before the body is read
                (a body of unknown length reserves as it arrives), so concurrent
                uploads never take the tenant over its quota.
            ChecksumMismatch: the bytes do not hash to `request.expected_hash`.
            PreconditionFailed: `If-None-Match` / `If-Match` do not hold at commit.
            InsufficientStorage: the storage root is full.
        A failure leaves nothing visible; the staged bytes are removed at once (a blob
        published before a refused commit is unreferenced: GC removes it after the
        grace). Concurrent uploads share commits (`GroupCommitter`).
        """
        metadata, max_object_bytes = self.metadata, self.max_object_bytes
        if request.declared_size is not None and request.declared_size > max_object_bytes:
            raise PayloadTooLarge(f"objects are limited to {max_object_bytes} bytes")
        if request.precondition.is_conditional:
            # Fail fast, before receiving the body; the commit below checks again.
            async with metadata.snapshot() as view:
                current = await view.objects.newest(
                    request.tenant_id, request.namespace, request.key
                )
            request.precondition.check(current.content_hash if current else None)

        upload = NewUpload(
            id=uuid.uuid4(),
            tenant_id=request.tenant_id,
            namespace=request.namespace,
            key=request.key,
            storage_class=request.storage_class,
            content_type=request.content_type,
            created_at=self.clock.now(),
            owner=self.owner,
            user_metadata=request.user_metadata,
        )
        quota_bytes = self.quota_of(request.tenant_id)
        hold = None
        if quota_bytes is not None:
            hold = QuotaHold(metadata, self.clock, request.tenant_id, quota_bytes, upload.id)
            if request.declared_size is not None:
                await hold.cover(request.declared_size)  # before the body is read
        registered = self.registration.registers(request)
        keepalive: asyncio.Task[None] | None = None
        try:
            if registered:
                async with metadata.transaction(durable=False) as uow:
                    await uow.objects.add_writing(upload)
                    await uow.commit()
            if registered or hold is not None:
                keepalive = asyncio.ensure_future(
                    _keep_alive(metadata, upload.id if registered else None, hold)
                )
            async with self.blobs.stage(request.storage_class, upload.id, self.owner) as staged:
                received = 0
                async for chunk in body:
                    received += len(chunk)
                    if received > max_object_bytes:
                        raise PayloadTooLarge(f"objects are limited to {max_object_bytes} bytes")
                    if hold is not None and request.declared_size is None:
                        await hold.cover_received(received, max_object_bytes)
                    await staged.write(chunk)
                digest, size = await staged.seal()  # bytes durable, not yet addressable
                if request.declared_size is not None and size != request.declared_size:
                    raise BadRequest("the body is shorter than its Content-Length")
                if request.expected_hash is not None and digest != request.expected_hash:
                    raise ChecksumMismatch("the body does not match X-Content-SHA256")
                if request.md5_of is not None:
                    upload = replace(upload, s3_etag=request.md5_of())
                if hold is not None:
                    await hold.confirm(size)  # the commit below settles the reservation
                # Durable at its address before any reference to it is committed.
                published = await staged.publish()
                sealed = SealedUpload(
                    upload,
                    registered,
                    digest,
                    size,
                    request.precondition,
                    staged,
                    reserved=hold is not None and hold.reserved is not None,
                )
                # Checks the precondition, takes the blob's reference, confirms the blob
                # is still there, settles the quota reservation and commits: durable
                # before the caller answers 201.
                committed = await self.committer.commit(sealed)
        except BaseException:
            if registered:
                await _forget_upload(metadata, upload.id)
            if hold is not None:
                await hold.release()
            raise
        finally:
            if keepalive is not None:
                keepalive.cancel()
        return UploadResult(
            committed.version,
            deduplicated=committed.elsewhere or not (published or committed.confirmed),
        )


def _no_quota(tenant_id: TenantId) -> int | None:
    return None


async def _keep_alive(
    metadata: MetadataStore, upload_id: uuid.UUID | None, hold: QuotaHold | None
) -> None:
    """Every HEARTBEAT_SECONDS until cancelled, whether or not its client is sending:
    touch the upload's WRITING row (GC takes a row untouched for long for abandoned)
    and renew its quota reservation (else it lapses)."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        try:
            if upload_id is not None:
                async with metadata.transaction(durable=False) as uow:
                    await uow.objects.touch_writing(upload_id)
                    await uow.commit()
            if hold is not None:
                await hold.renew()  # a lapse is caught by `confirm()` before the commit
        except StorageError:
            pass  # the next beat may get through; a row stays unreaped for minutes


async def _forget_upload(metadata: MetadataStore, upload_id: uuid.UUID) -> None:
    """Best effort: drop the WRITING row now rather than wait for GC."""
    with anyio.CancelScope(shield=True):
        try:
            async with metadata.transaction(durable=False) as uow:
                await uow.objects.discard_writing(upload_id)
                await uow.commit()
        except StorageError:
            pass  # GC removes stale WRITING rows after the grace period
