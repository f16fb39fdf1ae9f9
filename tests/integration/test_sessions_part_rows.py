"""What a part upload reads from the metadata store (SPEC §8.2), on a real SQLite
file: the session's row only, never the rows of the parts sent before, so the n-th
part of a session costs the same as the first."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from juststorage.adapters.metadata.sessions import SqlUploadSessionRows
from juststorage.application.session_records import UploadSession
from juststorage.application.sessions import SessionRequest
from juststorage.bootstrap import Services, build
from juststorage.domain.model import Namespace, ObjectKey, TenantId

pytestmark = pytest.mark.anyio

ACME, MODELS = TenantId("acme"), Namespace("models")
MIB = 1024 * 1024


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    from juststorage.config import load_settings

    built = build(load_settings({"JUSTSTORAGE_DATA_DIR": str(tmp_path)}))
    await built.metadata.migrate()
    try:
        yield built
    finally:
        await built.metadata.close()


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_a_part_upload_reads_no_earlier_part_row(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = services.sessions
    session = await sessions.create(SessionRequest(ACME, MODELS, ObjectKey("m.bin")))
    parts_read: list[int] = []
    real = SqlUploadSessionRows.session

    async def counted(
        self: SqlUploadSessionRows, session_id: object, *, with_parts: bool = True
    ) -> UploadSession | None:
        found = await real(self, session_id, with_parts=with_parts)  # type: ignore[arg-type]
        parts_read.append(len(found.parts) if found is not None else 0)
        return found

    monkeypatch.setattr(SqlUploadSessionRows, "session", counted)
    data = [os.urandom(5 * MIB) for _ in range(3)] + [os.urandom(1000)]
    for number, part in enumerate(data, start=1):
        await sessions.put_part(ACME, session.id, number, body(part))
    assert parts_read == [0, 0, 0, 0]
    await sessions.abort(ACME, session.id)
    assert parts_read[-1] == 0
    # Inspecting a session still lists its parts.
    again = await sessions.create(SessionRequest(ACME, MODELS, ObjectKey("n.bin")))
    await sessions.put_part(ACME, again.id, 1, body(data[0]))
    assert [p.number for p in (await sessions.get(ACME, again.id)).parts] == [1]


async def test_dropping_a_damaged_part_needs_its_row_to_name_the_same_bytes(
    services: Services,
) -> None:
    """`drop_part` (completion found the part's bytes damaged) deletes the row only
    while it names the bytes that were read: a part replaced meanwhile stays."""
    sessions = services.sessions
    session = await sessions.create(SessionRequest(ACME, MODELS, ObjectKey("d.bin")))
    first = await sessions.put_part(ACME, session.id, 1, body(b"one"))
    replacement = await sessions.put_part(ACME, session.id, 1, body(b"uno"))
    async with services.metadata.transaction() as uow:
        assert await uow.sessions.drop_part(session.id, 1, first.address) is None
        await uow.commit()
    assert [p.address for p in (await sessions.get(ACME, session.id)).parts] == [
        replacement.address
    ]
    async with services.metadata.transaction() as uow:
        dropped = await uow.sessions.drop_part(session.id, 1, replacement.address)
        await uow.commit()
    assert dropped is not None and dropped.sha256 == replacement.sha256
    assert not (await sessions.get(ACME, session.id)).parts
    await sessions.abort(ACME, session.id)
    async with services.metadata.transaction() as uow:
        assert await uow.sessions.drop_part(session.id, 1, replacement.address) is None
