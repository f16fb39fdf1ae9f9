"""Completing a multipart session (SPEC §8.2) on a real SQLite file and a real
PostgreSQL database, while something else happens to it: a refusal after the session
was claimed, a part replaced before the claim or during the assembly, an abort after
the completion, a retry near the session's end, a part replaced at the quota, a part
whose row committed though its commit reported a failure."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata.sessions import SqlUploadSessionRows
from juststorage.adapters.metadata.unit_of_work import SqlUnitOfWork
from juststorage.application.commits import Committed, SealedUpload
from juststorage.application.session_records import SessionPart, SessionState
from juststorage.application.sessions import SessionRequest
from juststorage.bootstrap import Services, build
from juststorage.config import Settings, TenantLimits
from juststorage.domain.errors import Conflict, NotFound, Unavailable
from juststorage.domain.model import Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, SMALL = TenantId("acme"), TenantId("small")
HOT = StorageClass.HOT
PART = 64 * 1024  # the servers' minimum part size
TTL_S = 3600.0
QUOTA = 3 * PART


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
async def services(tmp_path: Path, database_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    built = build(
        Settings(
            data_dir=tmp_path,
            database_url=database_url,
            inline_max_bytes=0,
            upload_part_min_bytes=PART,
            upload_ttl_seconds=TTL_S,
            tenants={str(SMALL): TenantLimits(quota_bytes=QUOTA)},
        ),
        clock=clock,
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


async def body(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def open_with_parts(services: Services, tenant: TenantId, *parts: bytes) -> Any:
    session = await services.sessions.create(
        SessionRequest(tenant, Namespace("models"), ObjectKey("model.bin"))
    )
    for number, data in enumerate(parts, start=1):
        await services.sessions.put_part(tenant, session.id, number, body(data))
    return session.id


async def test_a_completion_refused_after_its_claim_leaves_the_session_open(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on an s3:// root: the completion writes a WRITING row, which GC may discard
    # (a missed heartbeat) before the commit turns it into the object.
    sessions = services.sessions
    sessions.registered_classes = frozenset({HOT})
    data = os.urandom(PART)
    session_id = await open_with_parts(services, ACME, data)
    real_commit = sessions.committer.commit

    async def commit_after_gc(sealed: SealedUpload) -> Committed:
        async with services.metadata.transaction() as uow:
            await uow.objects.discard_writing(sealed.upload.id)
            await uow.commit()
        return await real_commit(sealed)

    monkeypatch.setattr(sessions.committer, "commit", commit_after_gc)
    with pytest.raises(NotFound):
        await sessions.complete(ACME, session_id)
    monkeypatch.undo()

    left = await sessions.get(ACME, session_id)
    assert left.state is SessionState.OPEN
    assert left.object_id is None
    assert [p.number for p in left.parts] == [1]
    done = await sessions.complete(ACME, session_id)
    assert done.created
    assert done.version.content_hash.hex == hashlib.sha256(data).hexdigest()


async def test_a_part_replaced_before_the_claim_refuses_the_completion(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = services.sessions
    first, old, new = os.urandom(PART), os.urandom(PART), b"replacement last part"
    session_id = await open_with_parts(services, ACME, first, old)
    real_commit = sessions.committer.commit

    async def commit_after_replacement(sealed: SealedUpload) -> Committed:
        # Acknowledged while the completion was assembling the old part's bytes.
        await sessions.put_part(ACME, session_id, 2, body(new))
        return await real_commit(sealed)

    monkeypatch.setattr(sessions.committer, "commit", commit_after_replacement)
    with pytest.raises(Conflict):
        await sessions.complete(ACME, session_id)
    monkeypatch.undo()

    left = await sessions.get(ACME, session_id)
    assert left.state is SessionState.OPEN
    assert [p.size_bytes for p in left.parts] == [PART, len(new)]
    done = await sessions.complete(ACME, session_id)
    assert done.version.content_hash.hex == hashlib.sha256(first + new).hexdigest()


async def test_a_part_added_before_the_claim_refuses_a_completion_of_every_part(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = services.sessions
    first, last = os.urandom(PART), os.urandom(100)
    session_id = await open_with_parts(services, ACME, first)
    real_commit = sessions.committer.commit

    async def commit_after_another_part(sealed: SealedUpload) -> Committed:
        await sessions.put_part(ACME, session_id, 2, body(last))
        return await real_commit(sealed)

    monkeypatch.setattr(sessions.committer, "commit", commit_after_another_part)
    with pytest.raises(Conflict):
        await sessions.complete(ACME, session_id)  # every received part
    monkeypatch.undo()
    done = await sessions.complete(ACME, session_id)
    assert done.version.content_hash.hex == hashlib.sha256(first + last).hexdigest()


async def test_a_part_added_is_no_conflict_for_a_completion_naming_its_parts(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = services.sessions
    first = os.urandom(PART)
    session_id = await open_with_parts(services, ACME, first)
    real_commit = sessions.committer.commit

    async def commit_after_another_part(sealed: SealedUpload) -> Committed:
        await sessions.put_part(ACME, session_id, 2, body(b"not named"))
        return await real_commit(sealed)

    monkeypatch.setattr(sessions.committer, "commit", commit_after_another_part)
    done = await sessions.complete(ACME, session_id, [1])
    assert done.version.content_hash.hex == hashlib.sha256(first).hexdigest()


async def test_a_part_replaced_during_the_assembly_is_a_conflict_not_a_404(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = services.sessions
    first, old, new = os.urandom(PART), os.urandom(PART), os.urandom(100)
    session_id = await open_with_parts(services, ACME, first, old)
    store = sessions.part_store(HOT)
    real_assemble = store.assemble

    @asynccontextmanager
    async def assemble_after_replacement(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        # The replacement's acknowledgement removes the replaced part's bytes.
        await sessions.put_part(ACME, session_id, 2, body(new))
        async with real_assemble(*args, **kwargs) as staged:
            yield staged

    monkeypatch.setattr(store, "assemble", assemble_after_replacement)
    with pytest.raises(Conflict):
        await sessions.complete(ACME, session_id)
    monkeypatch.undo()

    assert (await sessions.get(ACME, session_id)).state is SessionState.OPEN
    done = await sessions.complete(ACME, session_id)
    assert done.version.content_hash.hex == hashlib.sha256(first + new).hexdigest()


async def test_aborting_a_completed_session_is_a_conflict_and_keeps_it(
    services: Services,
) -> None:
    sessions = services.sessions
    session_id = await open_with_parts(services, ACME, b"whole")
    done = await sessions.complete(ACME, session_id)
    with pytest.raises(Conflict):
        await sessions.abort(ACME, session_id)
    again = await sessions.complete(ACME, session_id)
    assert not again.created
    assert again.version.id == done.version.id


async def test_a_completion_extends_the_session_so_a_retry_finds_it(
    services: Services, clock: FakeClock
) -> None:
    sessions = services.sessions
    session_id = await open_with_parts(services, ACME, b"whole")
    clock.advance(TTL_S - 10)  # idle almost to the end of its time
    done = await sessions.complete(ACME, session_id)
    clock.advance(60)  # the response was lost; the client retries a minute later
    again = await sessions.complete(ACME, session_id)
    assert again.version.id == done.version.id
    assert not again.created


async def test_replacing_a_part_at_the_quota_needs_no_room_for_both_copies(
    services: Services,
) -> None:
    sessions = services.sessions
    parts = [os.urandom(PART) for _ in range(3)]  # the whole quota
    session_id = await open_with_parts(services, SMALL, *parts)
    fixed = os.urandom(PART)
    await sessions.put_part(SMALL, session_id, 2, body(fixed))  # no room for a fourth
    done = await sessions.complete(SMALL, session_id)
    assert done.version.content_hash.hex == hashlib.sha256(parts[0] + fixed + parts[2]).hexdigest()


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "declared"])
async def test_a_part_row_committed_despite_a_failed_commit_keeps_its_bytes_and_quota(
    services: Services, monkeypatch: pytest.MonkeyPatch, declared: bool
) -> None:
    # A COMMIT whose answer is lost (a timeout, a cancellation once it was sent): the
    # row may well be committed, so nothing it names may be deleted.
    sessions = services.sessions
    session = await sessions.create(
        SessionRequest(SMALL, Namespace("models"), ObjectKey("model.bin"))
    )
    data = os.urandom(PART)
    in_put_part: list[SqlUploadSessionRows] = []
    real_put_part = SqlUploadSessionRows.put_part
    real_commit = SqlUnitOfWork.commit

    async def put_part(self: SqlUploadSessionRows, *args: Any, **kwargs: Any) -> Any:
        in_put_part.append(self)
        return await real_put_part(self, *args, **kwargs)

    async def commit_then_fail(self: SqlUnitOfWork) -> None:
        await real_commit(self)
        if any(rows is self.sessions for rows in in_put_part):
            in_put_part.clear()
            raise Unavailable("the database's answer to COMMIT was lost")

    monkeypatch.setattr(SqlUploadSessionRows, "put_part", put_part)
    monkeypatch.setattr(SqlUnitOfWork, "commit", commit_then_fail)
    with pytest.raises(Unavailable):
        await sessions.put_part(
            SMALL, session.id, 1, body(data), declared_size=PART if declared else None
        )
    monkeypatch.undo()

    parts = (await sessions.get(SMALL, session.id)).parts
    assert [p.number for p in parts] == [1]
    assert await read_part(services, session.id, parts[0]) == data
    async with services.metadata.snapshot() as view:
        reserved = await view.session.fetchall("SELECT id FROM quota_reservations")  # type: ignore[attr-defined]
    assert len(reserved) == 1
    done = await sessions.complete(SMALL, session.id)
    assert done.version.content_hash.hex == hashlib.sha256(data).hexdigest()


async def read_part(services: Services, session_id: Any, part: SessionPart) -> bytes:
    store = services.sessions.part_store(HOT)
    return b"".join([chunk async for chunk in store.read(HOT, session_id, part.address)])
