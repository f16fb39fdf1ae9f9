"""FakeWorld (a fake clock, metadata store and blob store with an uploader) and
seed_version, for use-case tests."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from uuid import uuid4

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import Clock, MetadataStore
from juststorage.application.records import BlobLocation
from juststorage.application.uploads import (
    RegistrationPolicy,
    Uploader,
    UploadRequest,
    UploadResult,
)
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectVersion,
    StorageClass,
    TenantId,
)


async def seed_version(
    store: MetadataStore,
    clock: Clock,
    key: str,
    *,
    tenant: str = "acme",
    namespace: str = "files",
    data: bytes = b"x",
    size_bytes: int | None = None,
    storage_class: StorageClass = StorageClass.HOT,
) -> ObjectVersion:
    """Commit one version through the metadata port, without any blob bytes."""
    upload = NewUpload(
        id=uuid4(),
        tenant_id=TenantId(tenant),
        namespace=Namespace(namespace),
        key=ObjectKey(key),
        storage_class=storage_class,
        content_type="application/octet-stream",
        created_at=clock.now(),
    )
    digest = ContentHash(hashlib.sha256(data).hexdigest())
    async with store.transaction() as uow:
        await uow.objects.add_writing(upload)
        version = await uow.objects.commit_upload(
            upload.id, digest, len(data) if size_bytes is None else size_bytes
        )
        await uow.blobs.acquire(BlobLocation(storage_class, digest), version.size_bytes)
        await uow.commit()
    return version


_ACME, _FILES = TenantId("acme"), Namespace("files")


def sha256_of(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


class FakeWorld:
    """A fake clock, metadata store and blob store, plus an upload helper for use-case tests."""

    def __init__(self, blobs: Callable[[FakeClock], BlobStore] = FakeBlobStore) -> None:
        self.clock = FakeClock()
        self.metadata = FakeMetadataStore(self.clock)
        self.blobs = blobs(self.clock)
        self.uploader = Uploader(
            metadata=self.metadata,
            blobs=self.blobs,
            clock=self.clock,
            max_object_bytes=1 << 20,
            registration=RegistrationPolicy(),
        )

    async def upload(
        self,
        key: str,
        data: bytes,
        cls: StorageClass = StorageClass.HOT,
        *,
        tenant: TenantId = _ACME,
        namespace: Namespace = _FILES,
    ) -> UploadResult:
        async def body() -> AsyncIterator[bytes]:
            yield data

        request = UploadRequest(tenant, namespace, ObjectKey(key), storage_class=cls)
        return await self.uploader.upload(request, body())
