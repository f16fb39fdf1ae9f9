"""PerClassBlobStore: one blob store per storage class, e.g. hot on a local disk and
cold on S3. Every port method names its class, so routing is a lookup."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from uuid import UUID

from juststorage.application.blob_ports import BlobReader, BlobStore, StagedBlob
from juststorage.application.records import BlobLocation, StoredBlob, TempFile
from juststorage.domain.model import ContentHash, StorageClass


class PerClassBlobStore:
    def __init__(self, stores: Mapping[StorageClass, BlobStore]) -> None:
        self.stores = dict(stores)

    async def prepare(self) -> None:
        for store in {id(s): s for s in self.stores.values()}.values():
            await store.prepare()

    def stage(
        self, storage_class: StorageClass, upload_id: UUID, owner: str = ""
    ) -> AbstractAsyncContextManager[StagedBlob]:
        return self.stores[storage_class].stage(storage_class, upload_id, owner)

    async def open(
        self,
        location: BlobLocation,
        *,
        first: int = 0,
        length: int | None = None,
        background: bool = False,
    ) -> BlobReader:
        store = self.stores[location.storage_class]
        return await store.open(location, first=first, length=length, background=background)

    async def digest_of(self, location: BlobLocation) -> ContentHash:
        return await self.stores[location.storage_class].digest_of(location)

    async def probe(self, storage_class: StorageClass) -> None:
        await self.stores[storage_class].probe(storage_class)

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        return await self.stores[storage_class].space(storage_class)

    def scan(self, storage_class: StorageClass) -> AsyncIterator[list[StoredBlob]]:
        return self.stores[storage_class].scan(storage_class)

    async def remove(self, storage_class: StorageClass, address: str) -> bool:
        return await self.stores[storage_class].remove(storage_class, address)

    async def temp_files(self, storage_class: StorageClass) -> list[TempFile]:
        return await self.stores[storage_class].temp_files(storage_class)

    async def remove_temp(self, temp: TempFile) -> None:
        await self.stores[temp.storage_class].remove_temp(temp)

    async def rewrite(self, location: BlobLocation, chunks: AsyncIterable[bytes]) -> None:
        await self.stores[location.storage_class].rewrite(location, chunks)
