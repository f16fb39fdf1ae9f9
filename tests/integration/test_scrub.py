"""Scrub (SPEC §8.9) on a real SQLite file and a real PostgreSQL, with real blob files,
inline rows and (one case) S3 objects on a real SeaweedFS: damage is found within one
pass, recorded, logged and counted; repair clears it; the rate holds; one scrubber
at a time; a restart resumes the pass."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import obstore
import pytest

from fakes.liveness import FakeLiveness
from juststorage.adapters.blobs.filesystem import blob_path
from juststorage.adapters.blobs.inline import InlineBlobStore
from juststorage.adapters.blobs.s3 import S3BlobStore
from juststorage.adapters.metadata.unit_of_work import SqlUnitOfWork
from juststorage.api.operations import refresh_census
from juststorage.application import scrub as scrub_module
from juststorage.application.blob_ports import BlobReader
from juststorage.application.deletes import delete_object
from juststorage.application.fsck import check_store
from juststorage.application.gc import GcPolicy, collect_garbage
from juststorage.application.records import BlobLocation
from juststorage.application.scrub import Scrubber, ScrubPolicy, ScrubReport, scrub_step
from juststorage.application.scrub_records import SCRUB_NAME, CorruptBlob
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services, build
from juststorage.config import Settings, load_settings
from juststorage.domain.errors import Unavailable
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId
from juststorage.worker.scrub import log_finding, run_scrub_loop
from support.seaweedfs import SeaweedFs

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT, COLD = StorageClass.HOT, StorageClass.COLD
INLINE_MAX = 1000
FAST = 1e12  # bytes per second: no pacing to speak of


async def _built(settings: Settings) -> Services:
    built = build(settings)
    await built.metadata.migrate()
    await built.blobs.prepare()
    return built


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = await _built(
        Settings(data_dir=tmp_path, database_url=database_url, inline_max_bytes=INLINE_MAX)
    )
    try:
        yield built
    finally:
        await built.metadata.close()


async def upload(
    services: Services, key: str, data: bytes, storage_class: StorageClass = HOT
) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(ACME, FILES, ObjectKey(key), storage_class=storage_class)
    return await services.uploader.upload(request, body())


def scrubber(
    services: Services,
    rate: float = FAST,
    identity: str = "scrubber-a",
    save_every_blobs: int = 200,
    **policy_fields: Any,
) -> Scrubber:
    policy = ScrubPolicy(
        bytes_per_second=rate,
        min_pass_seconds=0.0,
        save_every_blobs=save_every_blobs,
        **policy_fields,
    )
    return Scrubber(
        services.metadata,
        services.blobs,
        services.clock,
        FakeLiveness(identity),
        policy,
        on_bytes=services.metrics.scrub_bytes.inc,
    )


async def one_pass(scrub: Scrubber) -> list[ScrubReport]:
    """Steps until a pass completes (bounded)."""
    reports = []
    for _ in range(1000):
        report = await scrub_step(scrub)
        assert report.ran
        reports.append(report)
        if report.passes_completed:
            return reports
    raise AssertionError("no pass completed")


async def corrupt_rows(services: Services) -> list[CorruptBlob]:
    async with services.metadata.snapshot() as view:
        return await view.scrub.corrupt(100)


def gauge(services: Services, name: str) -> float:
    text = services.metrics.render().decode()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def flip_byte(path: Path, offset: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def digest(data: bytes) -> ContentHash:
    return ContentHash(hashlib.sha256(data).hexdigest())


async def test_a_flipped_byte_in_a_file_is_found_recorded_logged_and_counted(
    services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = os.urandom(5000)
    bad = os.urandom(7000)
    await upload(services, "good", good)
    damaged = await upload(services, "damaged", bad, COLD)
    await upload(services, "same-bytes", bad, COLD)
    path = blob_path(tmp_path / "cold", digest(bad))
    flip_byte(path, 1234)
    await refresh_census(services)
    assert gauge(services, "just_storage_scrub_corrupt_blobs") == 0

    reports = await one_pass(scrubber(services))
    findings = [f for r in reports for f in r.findings]
    (finding,) = findings
    assert finding.location.content_hash == digest(bad) and finding.new
    assert finding.location.storage_class is COLD
    assert finding.detail.startswith("bytes hash to sha256:")
    assert {r.key for r in finding.references} == {"damaged", "same-bytes"}
    assert damaged.version.id in {r.object_id for r in finding.references}
    (row,) = await corrupt_rows(services)
    assert (row.storage_class, row.content_hash) == (COLD, digest(bad))
    await refresh_census(services)
    assert gauge(services, "just_storage_scrub_corrupt_blobs") == 1
    assert gauge(services, "just_storage_scrub_passes_completed") == 1
    assert gauge(services, "just_storage_scrub_bytes_total") == len(good) + len(bad)

    with caplog.at_level(logging.WARNING, logger="juststorage.scrub"):
        log_finding(finding)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    message = record.getMessage()
    assert f"cold sha256:{digest(bad).hex}" in message
    assert f"acme/files/damaged#{damaged.version.id}" in message
    assert record.fields["content_hash"] == digest(bad).hex

    # Put back: the next pass start re-reads the known row and the gauge drops.
    flip_byte(path, 1234)
    reports = await one_pass(scrubber(services))
    assert any(f.good for r in reports for f in r.findings)
    assert await corrupt_rows(services) == []
    await refresh_census(services)
    assert gauge(services, "just_storage_scrub_corrupt_blobs") == 0


async def test_a_missing_file_and_a_damaged_inline_row_are_found(
    services: Services, tmp_path: Path
) -> None:
    small = b"inline bytes " * 10
    large = os.urandom(3000)
    await upload(services, "small", small)
    await upload(services, "large", large)
    async with services.metadata.transaction() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        await uow.session.execute(
            "UPDATE inline_blobs SET data = ? WHERE content_hash = ?",
            (b"X" + small[1:], digest(small).hex),
        )
        await uow.commit()
    blob_path(tmp_path / "hot", digest(large)).unlink()

    await one_pass(scrubber(services))
    found = {(r.content_hash, r.detail.split(":")[0]) for r in await corrupt_rows(services)}
    assert found == {(digest(small), "bytes hash to sha256"), (digest(large), "missing")}

    # An upload of the same bytes puts the file back; fsck verifies it and clears it.
    await upload(services, "again", large)
    await check_store(services.metadata, services.blobs)
    assert [r.content_hash for r in await corrupt_rows(services)] == [digest(small)]


async def test_gc_removing_the_blob_row_drops_its_corrupt_row(
    services: Services, tmp_path: Path
) -> None:
    data = os.urandom(4000)
    result = await upload(services, "doomed", data)
    flip_byte(blob_path(tmp_path / "hot", digest(data)))
    await one_pass(scrubber(services))
    assert len(await corrupt_rows(services)) == 1
    await delete_object(services.metadata, ACME, result.version.id)
    policy = GcPolicy(grace_seconds=0)
    await collect_garbage(services.metadata, services.blobs, services.clock, policy, FakeLiveness())
    assert await corrupt_rows(services) == []


async def test_a_missing_blob_no_object_holds_is_no_finding(
    services: Services, tmp_path: Path
) -> None:
    # GC unlinks such a blob before it commits the row's removal: no false alarm.
    data = os.urandom(4000)
    result = await upload(services, "deleted", data)
    await delete_object(services.metadata, ACME, result.version.id)
    blob_path(tmp_path / "hot", digest(data)).unlink()
    reports = await one_pass(scrubber(services))
    assert [f for r in reports for f in r.findings] == []
    assert await corrupt_rows(services) == []


async def test_a_pass_over_n_bytes_at_rate_r_takes_about_n_over_r(services: Services) -> None:
    sizes = [300_000, 200_000, 100_000, 50_000]
    for index, size in enumerate(sizes):
        await upload(services, f"k{index}", os.urandom(size))
    total, rate = sum(sizes), 400_000
    scrub = scrubber(services, rate)
    started = time.monotonic()
    await one_pass(scrub)
    took = time.monotonic() - started
    # A functional check of small reads; the rate's 10 % is the next test's.
    assert 0.6 * total / rate <= took <= 2.0 * total / rate


async def test_a_pass_reads_at_the_configured_rate_within_ten_percent(
    services: Services,
) -> None:
    # 6 MiB at 2 MiB/s: three seconds, so that the step's own overheads (a few
    # queries, milliseconds) are well under the 10 % allowed.
    size, count, rate = 1024 * 1024, 6, 2 * 1024 * 1024
    for index in range(count):
        await upload(services, f"k{index}", os.urandom(size))
    started = time.monotonic()
    reports = await one_pass(scrubber(services, rate))
    took = time.monotonic() - started
    read = sum(r.bytes_read for r in reports)
    assert read == size * count
    assert read / took == pytest.approx(rate, rel=0.10)


async def test_tiny_blobs_cost_at_least_blob_cost_bytes_each(services: Services) -> None:
    # 12 blobs of 2 kB at a rate of 8 blob costs per second: about 1.5 s, not the
    # 3 ms their bytes alone would take (nor thousands of opens a second).
    count, cost = 12, 64 * 1024
    for index in range(count):
        await upload(services, f"tiny{index}", os.urandom(2000))
    started = time.monotonic()
    await one_pass(scrubber(services, rate=8 * cost, blob_cost_bytes=cost))
    took = time.monotonic() - started
    assert took >= 0.9 * count / 8


@pytest.mark.parametrize(
    ("size", "rate"),
    [(200_000, 100_000), (1_200_000, 500_000)],
    ids=["one-read-longer-than-the-lease", "many-reads-longer-than-the-lease"],
)
async def test_the_lease_is_kept_while_one_blob_takes_longer_than_it(
    services: Services, size: int, rate: int
) -> None:
    # Two seconds or more to read one blob under a 0.9 s lease: the pacing sleeps
    # in slices and renews the lease between them.
    data = os.urandom(size)
    await upload(services, "slow", data)
    scrub = scrubber(services, rate, lease_seconds=0.9)
    report = await scrub_step(scrub)
    assert report.ran and report.blobs_checked == 1 and report.bytes_read == size
    assert scrub.holds_lease
    assert report.passes_completed == 1
    other = scrubber(services, identity="other")
    assert not (await scrub_step(other)).ran  # never lapsed, so never taken


async def test_a_blob_that_cannot_be_read_is_recorded_and_the_pass_goes_on(
    services: Services, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A directory where the file was fails the read as EIO from a bad sector does.
    bad, good = os.urandom(6000), os.urandom(5000)
    result = await upload(services, "bad-sector", bad)
    await upload(services, "fine", good)
    path = blob_path(tmp_path / "hot", digest(bad))
    path.unlink()
    path.mkdir()
    reports = await one_pass(scrubber(services))
    (finding,) = [f for r in reports for f in r.findings]
    assert finding.location.content_hash == digest(bad) and finding.new
    assert finding.detail.startswith("unreadable: cannot read blob:")
    assert [r.object_id for r in finding.references] == [result.version.id]
    (row,) = await corrupt_rows(services)
    assert row.detail == finding.detail
    await refresh_census(services)
    assert gauge(services, "just_storage_scrub_corrupt_blobs") == 1
    assert gauge(services, "just_storage_scrub_passes_completed") == 1
    with caplog.at_level(logging.WARNING, logger="juststorage.scrub"):
        log_finding(finding)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR and "unreadable" in record.getMessage()


async def test_a_damaged_blob_that_migrate_blobs_moved_mid_read_is_no_finding(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The pass read the old copy (damaged: migrate-blobs removes it once the row
    # points at the new one); the row's new address says these bytes are not it.
    data = os.urandom(6000)
    await upload(services, "moving", data)
    flip_byte(blob_path(tmp_path / "hot", digest(data)))
    opened = services.blobs.open

    async def open_then_move(
        location: BlobLocation, *, first: int = 0, length: int | None = None, **kw: Any
    ) -> BlobReader:
        reader = await opened(location, first=first, length=length, **kw)
        async with services.metadata.transaction() as uow:
            assert await uow.blobs.relocate(location, "elsewhere/copy")
            await uow.commit()
        return reader

    monkeypatch.setattr(services.blobs, "open", open_then_move)
    reports = await one_pass(scrubber(services))
    assert [f for r in reports for f in r.findings] == []
    assert await corrupt_rows(services) == []


async def test_a_damaged_blob_no_object_holds_is_no_finding(
    services: Services, tmp_path: Path
) -> None:
    # A deleted object's blob waiting out the GC grace: nobody can download it.
    data = os.urandom(4000)
    result = await upload(services, "deleted", data)
    await delete_object(services.metadata, ACME, result.version.id)
    flip_byte(blob_path(tmp_path / "hot", digest(data)))
    reports = await one_pass(scrubber(services))
    assert [f for r in reports for f in r.findings] == []
    assert await corrupt_rows(services) == []


async def test_gc_removing_the_row_before_the_finding_is_written_leaves_no_row(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(4000)
    result = await upload(services, "doomed", data)
    flip_byte(blob_path(tmp_path / "hot", digest(data)))
    checked = scrub_module._moved

    async def then_collected(scrub: Scrubber, location: BlobLocation) -> bool:
        moved = await checked(scrub, location)
        await delete_object(services.metadata, ACME, result.version.id)
        policy = GcPolicy(grace_seconds=0)
        await collect_garbage(
            services.metadata, services.blobs, services.clock, policy, FakeLiveness()
        )
        return moved

    monkeypatch.setattr(scrub_module, "_moved", then_collected)
    reports = await one_pass(scrubber(services))
    assert [f for r in reports for f in r.findings] == []
    assert await corrupt_rows(services) == []


async def test_a_missing_blob_of_a_root_that_fails_its_probe_is_no_finding(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An unmounted root makes every blob read as missing: the step fails instead.
    data = os.urandom(4000)
    await upload(services, "k", data)
    blob_path(tmp_path / "hot", digest(data)).unlink()

    async def unmounted(storage_class: StorageClass) -> None:
        raise Unavailable("the storage root is not writable: No such file or directory")

    monkeypatch.setattr(services.blobs, "probe", unmounted)
    with pytest.raises(Unavailable):
        await scrub_step(scrubber(services))
    assert await corrupt_rows(services) == []


async def test_one_scrubber_at_a_time_and_a_dead_holder_is_taken_over(
    services: Services,
) -> None:
    await upload(services, "k", os.urandom(2000))
    first = scrubber(services, identity="first")
    second = scrubber(services, identity="second")
    assert (await scrub_step(first)).ran
    assert not (await scrub_step(second)).ran
    assert not second.holds_lease
    async with services.metadata.snapshot() as view:
        assert await view.leases.holder_of("scrub") == "first"
    assert isinstance(second.liveness, FakeLiveness)
    second.liveness.dead.add("first")
    assert (await scrub_step(second)).ran
    assert not (await scrub_step(first)).ran
    await second.release()
    async with services.metadata.snapshot() as view:
        assert await view.leases.holder_of("scrub") is None


async def test_a_restart_resumes_the_pass_from_the_saved_position(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url, inline_max_bytes=0)
    services = await _built(settings)
    hashes = []
    for index in range(5):
        data = os.urandom(1000 + index)
        await upload(services, f"k{index}", data)
        hashes.append(digest(data))
    order = sorted(hashes, key=lambda h: h.hex)
    before = scrubber(services, save_every_blobs=2)
    assert (await scrub_step(before)).blobs_checked == 2
    await before.release()  # the process stops
    await services.metadata.close()

    services = await _built(settings)  # the restart: a new process, a new lease
    try:
        checked: list[str] = []
        opened = services.blobs.open

        async def recording_open(
            location: BlobLocation, *, first: int = 0, length: int | None = None, **kw: Any
        ) -> BlobReader:
            checked.append(location.content_hash.hex)
            return await opened(location, first=first, length=length, **kw)

        monkeypatch.setattr(services.blobs, "open", recording_open)
        second = await scrub_step(scrubber(services, identity="restarted", save_every_blobs=2))
        assert second.position is not None and second.position.pass_number == 1
        assert second.position.blobs_done == 4
        assert checked == [h.hex for h in order[2:4]]  # not from the first blob
        assert second.position.after == (HOT, order[3])
    finally:
        await services.metadata.close()


def recording_opens(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hashes of the blobs opened from now on, one per blob (a blob's later
    pieces are not counted again)."""
    checked: list[str] = []
    opened = services.blobs.open

    async def recording_open(
        location: BlobLocation, *, first: int = 0, length: int | None = None, **kw: Any
    ) -> BlobReader:
        if first == 0:
            checked.append(location.content_hash.hex)
        return await opened(location, first=first, length=length, **kw)

    monkeypatch.setattr(services.blobs, "open", recording_open)
    return checked


async def test_a_restart_resumes_across_the_storage_class_boundary(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=database_url, inline_max_bytes=0)
    services = await _built(settings)
    by_class: dict[StorageClass, list[str]] = {HOT: [], COLD: []}
    for index in range(6):
        data = os.urandom(1000 + index)
        storage_class = COLD if index % 2 else HOT
        await upload(services, f"k{index}", data, storage_class)
        by_class[storage_class].append(digest(data).hex)
    # Rows go by (class, hash): the cold class's three, then the hot class's.
    before = scrubber(services, save_every_blobs=3)
    first = await scrub_step(before)
    assert first.blobs_checked == 3 and first.position is not None
    assert first.position.after is not None and first.position.after[0] is COLD
    await before.release()
    await services.metadata.close()

    services = await _built(settings)
    try:
        checked = recording_opens(services, monkeypatch)
        after = scrubber(services, identity="restarted", save_every_blobs=3)
        report = await scrub_step(after)
        assert checked == sorted(by_class[HOT])  # the hot class only, none again
        assert report.position is not None and report.position.blobs_done == 6
        done = await scrub_step(after)
        assert done.passes_completed == 1 and done.blobs_checked == 0
    finally:
        await services.metadata.close()


async def test_rows_added_and_removed_mid_pass_are_read_once_or_not_at_all(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = {}
    for index in range(6):
        data = os.urandom(1000 + index)
        results[digest(data).hex] = await upload(services, f"k{index}", data)
    order = sorted(results)
    scrub = scrubber(services, save_every_blobs=2)
    first = await scrub_step(scrub)
    assert first.blobs_checked == 2
    # Mid-pass: the last row ahead goes (deleted and collected), new rows come, one
    # before the position (the next pass reads it) and some after.
    doomed = results[order[-1]]
    await delete_object(services.metadata, ACME, doomed.version.id)
    await collect_garbage(
        services.metadata, services.blobs, services.clock, GcPolicy(grace_seconds=0), FakeLiveness()
    )
    added = []
    for index in range(6):
        data = os.urandom(2000 + index)
        await upload(services, f"new{index}", data)
        added.append(digest(data).hex)
    checked = recording_opens(services, monkeypatch)
    rest = await one_pass(scrub)
    ahead = [h for h in sorted(order[2:-1] + added) if h > order[1]]
    assert checked == ahead
    assert [f for r in rest for f in r.findings] == []
    assert rest[-1].position is not None and rest[-1].position.passes_completed == 1


async def test_scrub_is_off_by_default_and_reads_nothing(services: Services) -> None:
    assert Settings().scrub_bytes_per_s == 0
    await upload(services, "k", os.urandom(2000))
    await asyncio.wait_for(run_scrub_loop(services), timeout=5)  # returns at once
    async with services.metadata.snapshot() as view:
        assert await view.scrub.position(SCRUB_NAME) is None
        assert await view.leases.holder_of("scrub") is None
    assert gauge(services, "just_storage_scrub_bytes_total") == 0


async def test_the_loop_finds_damage_and_releases_its_lease_on_the_way_out(
    services: Services, tmp_path: Path
) -> None:
    data = os.urandom(4000)
    await upload(services, "k", data)
    flip_byte(blob_path(tmp_path / "hot", digest(data)))
    policy = ScrubPolicy(bytes_per_second=1_000_000, min_pass_seconds=0.2)
    task = asyncio.create_task(run_scrub_loop(services, policy))
    try:
        for _ in range(100):
            await asyncio.sleep(0.1)
            if await corrupt_rows(services):
                break
        assert len(await corrupt_rows(services)) == 1
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with services.metadata.snapshot() as view:
        assert await view.leases.holder_of("scrub") is None  # released on the way out


@pytest.mark.s3
async def test_a_flipped_byte_in_an_s3_object_is_found(
    seaweedfs: SeaweedFs, tmp_path: Path
) -> None:
    import uuid

    prefix = uuid.uuid4().hex
    env = {
        **seaweedfs.env(),
        "JUSTSTORAGE_DATA_DIR": str(tmp_path),
        "JUSTSTORAGE_HOT_ROOT": seaweedfs.root(f"{prefix}/hot"),
        "JUSTSTORAGE_COLD_ROOT": seaweedfs.root(f"{prefix}/cold"),
        "JUSTSTORAGE_INLINE_MAX_BYTES": "0",
    }
    services = await _built(load_settings(env))
    try:
        data = os.urandom(20_000)
        result = await upload(services, "on-s3", data)
        assert isinstance(services.blobs, InlineBlobStore)
        assert isinstance(services.blobs.larger, S3BlobStore)
        store = services.blobs.larger._stores[HOT]
        key = f"blobs/{result.version.id}"
        await obstore.put_async(store, key, b"Z" + data[1:])
        await one_pass(scrubber(services))
        (row,) = await corrupt_rows(services)
        assert row.content_hash == digest(data) and row.detail.startswith("bytes hash to")
        await refresh_census(services)
        assert gauge(services, "just_storage_scrub_corrupt_blobs") == 1
        await obstore.put_async(store, key, data)  # repaired
        await one_pass(scrubber(services))
        assert await corrupt_rows(services) == []
    finally:
        await services.metadata.close()


@pytest.mark.s3
async def test_an_s3_blob_longer_to_read_than_the_request_timeout_is_read_in_pieces(
    seaweedfs: SeaweedFs, tmp_path: Path
) -> None:
    import uuid

    prefix = uuid.uuid4().hex
    timeout = 2.0
    env = {
        **seaweedfs.env(),
        "JUSTSTORAGE_DATA_DIR": str(tmp_path),
        "JUSTSTORAGE_HOT_ROOT": seaweedfs.root(f"{prefix}/hot"),
        "JUSTSTORAGE_COLD_ROOT": seaweedfs.root(f"{prefix}/cold"),
        "JUSTSTORAGE_INLINE_MAX_BYTES": "0",
        "JUSTSTORAGE_S3_TIMEOUT_SECONDS": str(timeout),
    }
    services = await _built(load_settings(env))
    try:
        # 3 MB at 1 MB/s: one GET over the whole object would outlive the 2 s timeout.
        data = os.urandom(3_000_000)
        await upload(services, "large", data)
        scrub = scrubber(services, rate=1_000_000, request_seconds=timeout / 4)
        reports = await one_pass(scrub)
        assert sum(r.bytes_read for r in reports) == len(data)
        assert [f for r in reports for f in r.findings] == []
        assert await corrupt_rows(services) == []
    finally:
        await services.metadata.close()


async def test_scrub_reads_of_small_files_do_not_block_the_event_loop(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small read from a cold page is a disk seek: off the loop for the scrub.
    for index in range(3):
        await upload(services, f"small{index}", os.urandom(2000 + index))
    loop_thread = threading.get_ident()
    on_loop: list[str] = []
    real_open, real_pread = os.open, os.pread

    def watched_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if "sha256" in str(path) and threading.get_ident() == loop_thread:
            on_loop.append(f"open {path}")
        return real_open(path, flags, *args, **kw)

    def watched_pread(fd: int, size: int, offset: int) -> bytes:
        if threading.get_ident() == loop_thread:
            on_loop.append(f"pread {size}")
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "open", watched_open)
    monkeypatch.setattr(os, "pread", watched_pread)
    reports = await one_pass(scrubber(services))
    assert sum(r.blobs_checked for r in reports) == 3
    assert on_loop == []


@pytest.mark.parametrize("store_answers", [True, False], ids=["store-answers", "store-down"])
async def test_a_blob_whose_reads_keep_failing_while_its_store_answers_is_unreadable(
    services: Services, monkeypatch: pytest.MonkeyPatch, store_answers: bool
) -> None:
    # One object that times out on every GET (a slow disk behind the S3 endpoint)
    # stalled the pass forever; a store that is down must still stall nothing but
    # the step, with no finding.
    stuck, fine = os.urandom(3000), os.urandom(4000)
    while digest(fine).hex > digest(stuck).hex:  # read first: its progress is kept
        fine = os.urandom(4000)
    await upload(services, "stuck", stuck)
    await upload(services, "fine", fine)
    opened = services.blobs.open

    async def timing_out(
        location: BlobLocation, *, first: int = 0, length: int | None = None, **kw: Any
    ) -> BlobReader:
        if location.content_hash == digest(stuck) or not store_answers:
            raise Unavailable("read: the object store failed")
        return await opened(location, first=first, length=length, **kw)

    async def probe(storage_class: StorageClass) -> None:
        if not store_answers:
            raise Unavailable("the object store did not answer in time")

    monkeypatch.setattr(services.blobs, "open", timing_out)
    monkeypatch.setattr(services.blobs, "probe", probe)
    scrub = scrubber(services)
    for _ in range(scrub.policy.unavailable_tries - 1):
        with pytest.raises(Unavailable):
            await scrub_step(scrub)
        async with services.metadata.snapshot() as view:
            saved = await view.scrub.position(SCRUB_NAME)
        if store_answers:  # the blob read before the failure stays read
            assert saved is not None and saved.after == (HOT, digest(fine))
    if not store_answers:
        for _ in range(3):
            with pytest.raises(Unavailable):
                await scrub_step(scrub)
        assert await corrupt_rows(services) == []
        return
    report = await scrub_step(scrub)
    (finding,) = report.findings
    assert finding.location.content_hash == digest(stuck)
    assert finding.detail.startswith("unreadable: read: the object store failed (3 tries")
    assert report.passes_completed == 1 and report.blobs_checked == 1
