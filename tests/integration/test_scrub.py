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
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import obstore
import pytest

from fakes.liveness import FakeLiveness
from juststorage.adapters.blobs.filesystem import blob_path
from juststorage.adapters.blobs.inline import InlineBlobStore
from juststorage.adapters.blobs.s3 import S3BlobStore
from juststorage.adapters.metadata.unit_of_work import SqlUnitOfWork
from juststorage.api.operations import refresh_census
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
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, StorageClass, TenantId
from juststorage.worker.scrub import log_finding, run_scrub_loop
from support.seaweedfs import SeaweedFs

pytestmark = pytest.mark.anyio

ACME, FILES = TenantId("acme"), Namespace("files")
HOT, COLD = StorageClass.HOT, StorageClass.COLD
INLINE_MAX = 1000
FAST = 1e12  # bytes per second: no pacing to speak of


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/meta.db"
    else:
        yield request.getfixturevalue("postgres_url")


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
) -> Scrubber:
    policy = ScrubPolicy(
        bytes_per_second=rate, min_pass_seconds=0.0, save_every_blobs=save_every_blobs
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
    # A functional check, not a benchmark.
    assert 0.6 * total / rate <= took <= 2.0 * total / rate


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
            location: BlobLocation, *, first: int = 0, length: int | None = None
        ) -> BlobReader:
            checked.append(location.content_hash.hex)
            return await opened(location, first=first, length=length)

        monkeypatch.setattr(services.blobs, "open", recording_open)
        second = await scrub_step(scrubber(services, identity="restarted", save_every_blobs=2))
        assert second.position is not None and second.position.pass_number == 1
        assert second.position.blobs_done == 4
        assert checked == [h.hex for h in order[2:4]]  # not from the first blob
        assert second.position.after == (HOT, order[3])
    finally:
        await services.metadata.close()


async def test_scrub_is_off_by_default_and_reads_nothing(services: Services) -> None:
    assert Settings().scrub_bytes_per_s == 0
    await upload(services, "k", os.urandom(2000))
    await asyncio.wait_for(run_scrub_loop(services), timeout=5)  # returns at once
    async with services.metadata.snapshot() as view:
        assert await view.scrub.position(SCRUB_NAME) is None
        assert await view.leases.holder_of("scrub") is None
    assert gauge(services, "just_storage_scrub_bytes_total") == 0


async def test_the_loop_scrubs_at_the_configured_rate(services: Services, tmp_path: Path) -> None:
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
