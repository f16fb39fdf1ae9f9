"""CopyObject into another storage class reads the bytes of the version it checked
(SPEC §8.8), on a real SQLite file and real blob files: a newer version written
after the check is not what is copied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from juststorage.application.downloads import find_newest
from juststorage.application.records import LocatedVersion
from juststorage.application.uploads import UploadRequest
from juststorage.bootstrap import Services, build
from juststorage.domain.errors import NotFound
from juststorage.domain.model import Namespace, ObjectKey, TenantId
from juststorage.s3.objects import open_copy_source

pytestmark = pytest.mark.anyio

ACME, DOCS, KEY = TenantId("acme"), Namespace("docs"), ObjectKey("report")


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    from juststorage.config import load_settings

    # Inline blobs off: the bytes are files, read through the blob store.
    built = build(
        load_settings({"JUSTSTORAGE_DATA_DIR": str(tmp_path), "JUSTSTORAGE_INLINE_MAX_BYTES": "0"})
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _read_all(services: Services, found: LocatedVersion) -> bytes:
    reader = await open_copy_source(services, found)
    try:
        size = found.version.size_bytes
        return b"".join([chunk async for chunk in reader.chunks(0, size)])
    finally:
        await reader.close()


async def test_the_checked_version_is_copied_not_a_newer_one(services: Services) -> None:
    await services.uploader.upload(UploadRequest(ACME, DOCS, KEY), _body(b"first version"))
    checked = await find_newest(services.metadata, ACME, DOCS, KEY, with_bytes=False)
    await services.uploader.upload(
        UploadRequest(ACME, DOCS, KEY), _body(b"a longer second version of it")
    )
    assert await _read_all(services, checked) == b"first version"


async def test_a_checked_version_deleted_since_is_not_found(services: Services) -> None:
    await services.uploader.upload(UploadRequest(ACME, DOCS, KEY), _body(b"gone soon"))
    checked = await find_newest(services.metadata, ACME, DOCS, KEY, with_bytes=False)
    await services.uploader.upload(UploadRequest(ACME, DOCS, KEY), _body(b"the next one"))
    async with services.metadata.transaction() as tx:
        await tx.objects.mark_deleting(ACME, checked.version.id)
        await tx.commit()
    with pytest.raises(NotFound):
        await _read_all(services, checked)
