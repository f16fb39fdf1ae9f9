"""A client that disconnects while its upload's batch commits, on a keyed store (S3):
the real S3 staged blob and a real SQLite database; only the S3 calls are stubbed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from juststorage.adapters.blobs import s3_io
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.application.uploads import RegistrationPolicy, Uploader, UploadRequest
from juststorage.bootstrap import SystemClock
from juststorage.domain.model import Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio


class _Writer:
    """Stands in for obstore's multipart writer: the bytes go nowhere."""

    async def write(self, chunk: bytes) -> None:
        pass

    async def close(self) -> None:
        pass


class _KeyedStore:
    """The parts of the S3 blob store an upload uses, around the real `S3StagedBlob`."""

    @contextlib.asynccontextmanager
    async def stage(
        self, storage_class: StorageClass, upload_id: uuid.UUID, owner: str = ""
    ) -> AsyncIterator[Any]:
        staged = s3_io.S3StagedBlob(
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            f"blobs/{upload_id}",
            _Writer(),  # type: ignore[arg-type]
            8 << 20,
        )
        try:
            yield staged
        finally:
            await staged.aclose()


async def _body() -> AsyncIterator[bytes]:
    yield b"model weights"


async def test_a_disconnect_mid_commit_never_deletes_the_object_the_batch_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deleted: list[str] = []
    in_batch, release = asyncio.Event(), asyncio.Event()
    confirm = s3_io.S3StagedBlob.confirm

    async def delete_async(store: object, key: str) -> None:
        deleted.append(key)

    async def held_confirm(staged: Any, blob: Any, *, uow: Any) -> bool:
        in_batch.set()  # inside the batch's transaction, its outcome not known yet
        await release.wait()
        return await confirm(staged, blob, uow=uow)

    monkeypatch.setattr(s3_io.obstore, "delete_async", delete_async)
    monkeypatch.setattr(s3_io.S3StagedBlob, "confirm", held_confirm)
    clock = SystemClock()
    metadata = SqliteMetadataStore(tmp_path / "meta.db", clock)
    await metadata.migrate()
    upload = asyncio.ensure_future(
        Uploader(
            metadata=metadata,
            blobs=_KeyedStore(),  # type: ignore[arg-type]
            clock=clock,
            max_object_bytes=1 << 20,
            registration=RegistrationPolicy(always=frozenset(StorageClass)),  # as on S3
        ).upload(UploadRequest(TenantId("acme"), Namespace("models"), ObjectKey("m.bin")), _body())
    )
    await asyncio.wait_for(in_batch.wait(), 10)
    upload.cancel()  # the client disconnects while the batch commits
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await upload
    async with metadata.snapshot() as view:
        states = await view.session.fetchall("SELECT state FROM objects")  # type: ignore[attr-defined]
        locations = await view.session.fetchall("SELECT location FROM blobs")  # type: ignore[attr-defined]
    assert [row[0] for row in states] == ["COMMITTED"]  # the batch committed it
    assert deleted == [], locations  # its object is the blob the row names: kept
