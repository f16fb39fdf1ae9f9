"""Many committed objects at once, written through the application's repositories.

The listing rows need 100,000 objects in one namespace; uploading them over HTTP
would take most of a run. This writes what the upload path writes for each object,
through the same ports: a blob reference (`BlobIndex.acquire`) and a `COMMITTED`
version (`ObjectRepository.insert_committed`, which also counts usage), all in one
unit of work, so the schema is written by the adapters only. No blob file is
stored: the listing never reads one.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from juststorage.application.ports import MetadataStore
from juststorage.application.records import BlobLocation
from juststorage.bootstrap import SystemClock, build_metadata_store
from juststorage.config import load_settings
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    StorageClass,
    TenantId,
)


def fill_listing(
    environ: Mapping[str, str], tenant: str, namespace: str, n: int, size: int = 128
) -> None:
    """Commit n objects `obj/0000000`... of `size` bytes each (distinct hashes) in one
    transaction, on the metadata store the settings in `environ` name.

    Raises:
        RuntimeError: the tenant's usage did not grow by exactly n objects.
    """
    asyncio.run(_fill(environ, TenantId(tenant), Namespace(namespace), n, size))


async def _fill(
    environ: Mapping[str, str], tenant: TenantId, namespace: Namespace, n: int, size: int
) -> None:
    store = build_metadata_store(load_settings(environ), SystemClock())
    try:
        before = await _objects_counted(store, tenant)
        await commit_versions(
            store,
            tenant,
            namespace,
            [
                (
                    ObjectKey(f"obj/{i:07d}"),
                    ContentHash(hashlib.sha256(f"{namespace}/{i}".encode()).hexdigest()),
                )
                for i in range(n)
            ],
            size=size,
        )
        counted = await _objects_counted(store, tenant) - before
        if counted != n:
            raise RuntimeError(f"usage grew by {counted} objects, {n} were committed")
    finally:
        await store.close()


async def commit_versions(
    store: MetadataStore,
    tenant: TenantId,
    namespace: Namespace,
    versions: Iterable[tuple[ObjectKey, ContentHash]],
    *,
    size: int,
    content_type: str = "application/octet-stream",
) -> None:
    """Commit one hot version of `size` bytes per (key, hash), in order, in one unit of
    work: what an upload commits (a blob reference, then a `COMMITTED` version that
    counts usage), without storing any bytes. A key given twice gets two versions."""
    now = datetime.now(UTC)
    async with store.transaction() as uow:
        for key, digest in versions:
            await uow.blobs.acquire(BlobLocation(StorageClass.HOT, digest), size)
            upload = NewUpload(
                uuid.uuid4(), tenant, namespace, key, StorageClass.HOT, content_type, now
            )
            await uow.objects.insert_committed(upload, digest, size)
        await uow.commit()


async def _objects_counted(store: MetadataStore, tenant: TenantId) -> int:
    async with store.snapshot() as uow:
        return sum(u.objects for u in await uow.objects.usage(tenant))
