"""The lease of a part being written (SPEC §8.2, part_leases.py) on a real SQLite
file and a real PostgreSQL database: its part row commits only while it is held,
and nothing brings it back once that row has released it."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata.sessions import SqlUploadSessionRows
from juststorage.adapters.metadata.unit_of_work import SqlUnitOfWork
from juststorage.application import part_leases
from juststorage.application.part_leases import LEASE_PREFIX, LEASE_SECONDS
from juststorage.application.sessions import SessionRequest
from juststorage.bootstrap import Services, build
from juststorage.config import Settings
from juststorage.domain.errors import Unavailable
from juststorage.domain.model import Namespace, ObjectKey, TenantId

pytestmark = pytest.mark.anyio

ACME = TenantId("acme")
PART = 64 * 1024


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
        ),
        clock=clock,
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


async def _open(services: Services) -> Any:
    return await services.sessions.create(
        SessionRequest(ACME, Namespace("models"), ObjectKey("model.bin"))
    )


async def _part_leases(services: Services) -> list[tuple[str, str, datetime]]:
    async with services.metadata.snapshot() as view:
        return await view.leases.named(LEASE_PREFIX)


async def test_a_renewal_in_flight_never_brings_the_lease_back(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renewals as often as can be, and some of them run between the part row's commit
    # (which released the lease) and the end of the upload.
    monkeypatch.setattr(part_leases, "RENEW_SECONDS", 0.001)
    in_put_part: list[SqlUploadSessionRows] = []
    real_put_part = SqlUploadSessionRows.put_part
    real_exit = SqlUnitOfWork.__aexit__

    async def put_part(self: SqlUploadSessionRows, *args: Any, **kwargs: Any) -> Any:
        in_put_part.append(self)
        return await real_put_part(self, *args, **kwargs)

    async def end_then_wait(self: SqlUnitOfWork, *exc_info: object) -> None:
        await real_exit(self, *exc_info)  # committed, the connection given back
        if any(rows is self.sessions for rows in in_put_part):
            in_put_part.clear()
            await asyncio.sleep(0.2)

    monkeypatch.setattr(SqlUploadSessionRows, "put_part", put_part)
    monkeypatch.setattr(SqlUnitOfWork, "__aexit__", end_then_wait)
    session = await _open(services)
    await services.sessions.put_part(ACME, session.id, 1, _body(os.urandom(PART)))
    await asyncio.sleep(0.05)  # a renewal that was still to come
    assert await _part_leases(services) == []


@pytest.mark.parametrize("gc_removed_it", [False, True], ids=["lapsed", "removed"])
async def test_a_part_whose_lease_lapsed_is_refused(
    services: Services, clock: FakeClock, gc_removed_it: bool
) -> None:
    """A writer whose renewals failed for longer than the lease: GC may have taken
    its bytes for leaked, so the part is not recorded (503, sent again)."""
    session = await _open(services)

    async def slow_body() -> AsyncIterator[bytes]:
        yield os.urandom(PART // 2)
        clock.advance(LEASE_SECONDS + 1)
        if gc_removed_it:
            async with services.metadata.transaction() as uow:
                for name, holder, _ in await uow.leases.named(LEASE_PREFIX):
                    await uow.leases.release(name, holder)
                await uow.commit()
        yield os.urandom(PART // 2)

    with pytest.raises(Unavailable):
        await services.sessions.put_part(ACME, session.id, 1, slow_body())
    assert (await services.sessions.get(ACME, session.id)).parts == ()
    assert await _part_leases(services) == []
    # Sent again, it is stored.
    await services.sessions.put_part(ACME, session.id, 1, _body(os.urandom(PART)))
    assert [p.number for p in (await services.sessions.get(ACME, session.id)).parts] == [1]


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data
