"""The scrub's step on fakes (SPEC §8.9): pacing, the lease, passes over an empty
and a small store. Damage on real stores: integration/test_scrub.py."""

from __future__ import annotations

import logging

import pytest

from fakes.liveness import FakeLiveness
from fakes.world import FakeWorld
from juststorage.application.records import BlobLocation
from juststorage.application.scrub import Finding, Scrubber, ScrubPolicy, TokenBucket, scrub_step
from juststorage.application.scrub_records import SCRUB_NAME
from juststorage.domain.model import ContentHash, StorageClass
from juststorage.worker.scrub import log_finding

pytestmark = pytest.mark.anyio


class Ticks:
    """A monotonic clock that only sleeping moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_bucket_starts_empty_and_holds_the_rate_without_bursts() -> None:
    ticks = Ticks()
    bucket = TokenBucket(1000.0, burst=500.0, monotonic=ticks, sleep=ticks.sleep)
    for _ in range(10):
        await bucket.take(250)
    assert ticks.now == pytest.approx(2.5)  # 2,500 bytes at 1,000/s, the first paid too
    ticks.now += 60.0  # idle: credit for one burst only
    await bucket.take(500)
    assert ticks.now == pytest.approx(62.5)
    await bucket.take(1000)
    assert ticks.now == pytest.approx(63.5)


async def test_a_long_debt_is_slept_in_slices_with_the_hook_between() -> None:
    ticks = Ticks()
    bucket = TokenBucket(1000.0, burst=500.0, monotonic=ticks, sleep=ticks.sleep)
    hooked: list[float] = []

    async def between() -> None:
        hooked.append(ticks.now)

    await bucket.take(2500, slice_seconds=1.0, between=between)
    assert ticks.slept == pytest.approx([1.0, 1.0, 0.5])
    assert hooked == pytest.approx([1.0, 2.0])


def scrubber(world: FakeWorld, identity: str) -> Scrubber:
    policy = ScrubPolicy(bytes_per_second=1e12, min_pass_seconds=0.0, save_every_blobs=2)
    return Scrubber(world.metadata, world.blobs, world.clock, FakeLiveness(identity), policy)


async def test_passes_walk_every_blob_row_and_start_again() -> None:
    world = FakeWorld()
    for index in range(5):
        await world.upload(f"k{index}", f"bytes {index}".encode())
    scrub = scrubber(world, "a")
    checked = [(await scrub_step(scrub)).blobs_checked for _ in range(4)]
    assert checked == [2, 2, 1, 2]  # the third step ends the first pass
    async with world.metadata.snapshot() as view:
        position = await view.scrub.position(SCRUB_NAME)
    assert position is not None
    assert (position.pass_number, position.passes_completed, position.blobs_done) == (2, 1, 2)


async def test_an_empty_store_completes_passes_without_reading() -> None:
    world = FakeWorld()
    report = await scrub_step(scrubber(world, "a"))
    assert report.ran and report.passes_completed == 1 and report.bytes_read == 0


async def test_a_lapsed_lease_goes_to_another_and_its_position_is_not_moved() -> None:
    world = FakeWorld()
    for index in range(5):
        await world.upload(f"k{index}", f"bytes {index}".encode())
    first, second = scrubber(world, "first"), scrubber(world, "second")
    assert (await scrub_step(first)).ran
    assert not (await scrub_step(second)).ran
    world.clock.advance(first.policy.lease_seconds + 1)  # first stalled past its lease
    taken = await scrub_step(second)
    assert taken.ran and taken.position is not None and taken.position.blobs_done == 4
    assert not (await scrub_step(first)).ran
    async with world.metadata.snapshot() as view:
        saved = await view.scrub.position(SCRUB_NAME)
    assert saved == taken.position


def test_a_known_row_dropped_with_its_blob_row_is_logged_as_no_longer_stored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    location = BlobLocation(StorageClass.HOT, ContentHash("ab" * 32))
    with caplog.at_level(logging.INFO, logger="juststorage.scrub"):
        log_finding(Finding(location, "", new=False, gone=True))
        log_finding(Finding(location, "", new=False))
    gone, good = (r.getMessage() for r in caplog.records)
    assert gone == f"scrub: blob hot sha256:{'ab' * 32} is no longer stored"
    assert good == f"scrub: blob hot sha256:{'ab' * 32} reads back good again"
