"""The per-tenant storage quota in upload_object, on the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import uuid4

import anyio
import pytest

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore, FakeUnitOfWork
from juststorage.application.quota import (
    CONFIRM_MARGIN_SECONDS,
    RESERVATION_TTL_SECONDS,
    QuotaHold,
)
from juststorage.application.uploads import (
    RegistrationPolicy,
    Uploader,
    UploadRequest,
    UploadResult,
)
from juststorage.application.usage import tenant_usage
from juststorage.domain.errors import PayloadTooLarge
from juststorage.domain.model import Namespace, ObjectKey, StorageClass, TenantId

pytestmark = pytest.mark.anyio

ACME, BETA, FILES = TenantId("acme"), TenantId("beta"), Namespace("files")
QUOTA = 100


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.metadata = FakeMetadataStore(self.clock)
        self.blobs = FakeBlobStore()
        self.read = 0

    async def body(self, chunks: list[bytes]) -> AsyncIterator[bytes]:
        for chunk in chunks:
            self.read += len(chunk)
            yield chunk

    async def upload(
        self,
        key: str,
        chunks: list[bytes],
        *,
        declared: bool = True,
        tenant: TenantId = ACME,
        storage_class: StorageClass = StorageClass.HOT,
    ) -> UploadResult:
        size = sum(len(c) for c in chunks)
        request = UploadRequest(
            tenant,
            FILES,
            ObjectKey(key),
            storage_class=storage_class,
            declared_size=size if declared else None,
        )
        return await self.uploader().upload(request, self.body(chunks))

    def uploader(self) -> Uploader:
        return Uploader(
            metadata=self.metadata,
            blobs=self.blobs,
            clock=self.clock,
            max_object_bytes=10_000,
            quota_of=lambda _tenant: QUOTA,
            registration=RegistrationPolicy(),
        )

    async def used(self, tenant: TenantId = ACME) -> int:
        prices = {StorageClass.HOT: 0.0, StorageClass.COLD: 0.0}
        usage = await tenant_usage(self.metadata, tenant, prices_gb_month=prices, currency="X")
        return usage.logical_bytes


@pytest.fixture
def world() -> World:
    return World()


async def test_declared_size_over_what_is_left_is_refused_before_reading(world: World) -> None:
    await world.upload("a", [b"x" * 60], storage_class=StorageClass.COLD)
    world.read = 0
    with pytest.raises(PayloadTooLarge, match="quota"):
        await world.upload("b", [b"y" * 41])
    assert world.read == 0
    assert await world.used() == 60
    assert world.metadata.writing_ids() == set() and world.blobs.temps == {}


async def test_chunked_body_is_stopped_as_soon_as_it_passes_the_quota(world: World) -> None:
    await world.upload("a", [b"x" * 60])
    with pytest.raises(PayloadTooLarge):
        await world.upload("b", [b"y" * 30, b"y" * 30, b"z" * 1000], declared=False)
    assert world.read == 60 + 60  # the 1000-byte chunk was never asked for
    assert await world.used() == 60
    assert world.metadata.writing_ids() == set() and world.blobs.temps == {}


async def test_a_chunked_body_near_the_quota_reserves_the_room_left_once(world: World) -> None:
    """When a 4 MiB step no longer fits, one transaction reserves all the room left
    and the chunks within it cost none (a failed step, then exactly what had arrived,
    cost two transactions a chunk)."""
    await world.upload("a", [b"x" * 10])
    before = world.metadata.transactions
    await world.upload("b", [b"y" * 9] * 10, declared=False)  # 90 of the 90 left
    assert world.metadata.transactions == before + 3  # reserve, WRITING row, commit
    assert await world.used() == QUOTA
    with pytest.raises(PayloadTooLarge):
        await world.upload("c", [b"z"], declared=False)


async def test_exactly_the_quota_fits_and_versions_and_dedup_count(world: World) -> None:
    await world.upload("a", [b"x" * 50])
    await world.upload("a", [b"x" * 50])  # same bytes, new version: usage is logical
    assert await world.used() == QUOTA
    with pytest.raises(PayloadTooLarge):
        await world.upload("b", [b"!"])
    assert (await world.upload("empty", [])).version.size_bytes == 0


async def test_quota_is_per_tenant(world: World) -> None:
    await world.upload("a", [b"x" * QUOTA])
    assert (await world.upload("a", [b"x" * QUOTA], tenant=BETA)).version.size_bytes == QUOTA


async def test_concurrent_uploads_never_take_usage_over_the_quota(world: World) -> None:
    """Ten uploads of 90 bytes against a quota of 100, all in flight at once: each
    reserves its declared length before its body is read, so one fits and nine are
    refused (checking usage at admission alone let all ten through)."""
    release = anyio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        await release.wait()  # every upload is admitted before any commits
        yield b"x" * 90

    async def one(index: int) -> str:
        request = UploadRequest(ACME, FILES, ObjectKey(f"k{index}"), declared_size=90)
        try:
            await world.uploader().upload(request, slow_body())
        except PayloadTooLarge:
            return "413"
        return "201"

    outcomes: list[str] = []

    async def run(index: int) -> None:
        outcomes.append(await one(index))

    async with anyio.create_task_group() as tasks:
        for index in range(10):
            tasks.start_soon(run, index)
        await anyio.sleep(0.05)
        release.set()
    assert sorted(outcomes) == ["201"] + ["413"] * 9
    assert await world.used() == 90
    assert world.metadata.state.reservations == {}  # settled by the commit, or released


async def test_a_lapsed_reservation_is_checked_again_before_the_commit(world: World) -> None:
    """A reservation whose renewals stopped (minutes without the database) may have been
    counted on by others: the commit refuses when the quota no longer has room."""
    hold = QuotaHold(world.metadata, world.clock, ACME, QUOTA, uuid4())
    await hold.cover(60)
    world.clock.advance(RESERVATION_TTL_SECONDS + 1)
    await world.upload("other", [b"y" * 50])  # counts only live reservations
    with pytest.raises(PayloadTooLarge, match="quota of 100 bytes"):
        await hold.confirm(60)
    await hold.confirm(50)  # exactly what is left is taken again


async def test_a_declared_upload_under_a_quota_costs_one_reservation_and_its_commit(
    world: World,
) -> None:
    """The commit settles a reservation written moments before: confirm() renews
    nothing (renewing it there cost every quota'd upload a third transaction)."""
    await world.upload("a", [b"x" * 10])
    assert world.metadata.transactions == 2  # reserve, commit
    assert world.metadata.state.reservations == {}


async def test_a_reservation_near_its_end_is_renewed_before_the_commit(world: World) -> None:
    hold = QuotaHold(world.metadata, world.clock, ACME, QUOTA, uuid4())
    await hold.cover(60)
    world.clock.advance(RESERVATION_TTL_SECONDS - CONFIRM_MARGIN_SECONDS + 1)
    before = world.metadata.transactions
    await hold.confirm(60)
    assert world.metadata.transactions == before + 1  # the renewal
    world.clock.advance(CONFIRM_MARGIN_SECONDS)  # past the first expiry, not the renewed
    with pytest.raises(PayloadTooLarge):
        await world.upload("other", [b"y" * 50])  # the 60 bytes are still held


async def test_an_upload_cancelled_as_its_reservation_commits_releases_it_at_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client disconnects right after the reservation's transaction commits, before
    the hold learns it: release() still frees the bytes now, not after the TTL."""
    hold = QuotaHold(world.metadata, world.clock, ACME, QUOTA, uuid4())
    commit = FakeUnitOfWork.commit

    async def commit_then_cancel(self: FakeUnitOfWork) -> None:
        await commit(self)
        scope.cancel()  # the disconnect, delivered at the next checkpoint
        await anyio.sleep(0)

    with anyio.CancelScope() as scope:
        monkeypatch.setattr(FakeUnitOfWork, "commit", commit_then_cancel)
        await hold.cover(60)
    monkeypatch.setattr(FakeUnitOfWork, "commit", commit)
    assert scope.cancelled_caught and hold.reserved is None
    assert len(world.metadata.state.reservations) == 1  # the row did commit
    await hold.release()
    assert world.metadata.state.reservations == {}
    await world.upload("next", [b"z" * QUOTA])  # the whole quota is free again


async def test_release_without_any_reservation_costs_no_transaction(world: World) -> None:
    hold = QuotaHold(world.metadata, world.clock, ACME, QUOTA, uuid4())
    await hold.release()
    assert world.metadata.commits == 0
