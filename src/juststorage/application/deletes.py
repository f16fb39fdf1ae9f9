"""Delete: hide at once (COMMITTED → DELETING) and release the blob reference for GC."""

from __future__ import annotations

from uuid import UUID

from juststorage.application.ports import MetadataStore
from juststorage.domain.errors import NotFound
from juststorage.domain.model import Namespace, ObjectKey, ObjectVersion, TenantId


async def delete_object(
    metadata: MetadataStore, tenant_id: TenantId, object_id: UUID
) -> ObjectVersion:
    """Delete one version. Raises NotFound if it is not a committed version of the tenant."""
    async with metadata.transaction() as uow:
        version = await uow.objects.mark_deleting(tenant_id, object_id)
        if version is None:
            raise NotFound("no such object")
        await uow.blobs.release(version.storage_class, version.content_hash)
        await uow.commit()
    return version


async def delete_versions(
    metadata: MetadataStore, tenant_id: TenantId, namespace: Namespace, key: ObjectKey
) -> list[ObjectVersion]:
    """Delete every version of a key. Raises NotFound if it has none."""
    async with metadata.transaction() as uow:
        versions = await uow.objects.mark_key_deleting(tenant_id, namespace, key)
        if not versions:
            raise NotFound("no such key")
        # One global order of blob rows, so two deletes sharing blobs cannot deadlock.
        for version in sorted(versions, key=lambda v: (v.storage_class, v.content_hash.hex)):
            await uow.blobs.release(version.storage_class, version.content_hash)
        await uow.commit()
    return versions
