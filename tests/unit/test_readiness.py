"""/ready's checks: run at once, each bounded in time, a hung one checked once."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.api.operations import check_readiness, refresh_scrape_gauges
from juststorage.application.authentication import Authenticator
from juststorage.bootstrap import Services
from juststorage.config import Settings
from juststorage.domain.errors import InsufficientStorage, StorageError, Unavailable
from juststorage.domain.model import StorageClass
from juststorage.logs import FIELDS_ATTR

pytestmark = pytest.mark.anyio


class HangingColdStore(FakeBlobStore):
    """The cold class's store never answers (an unreachable object store)."""

    def __init__(self) -> None:
        super().__init__()
        self.cold_probes = 0

    async def probe(self, storage_class: StorageClass) -> None:
        if storage_class is StorageClass.COLD:
            self.cold_probes += 1
            await asyncio.sleep(3600)


class DownDatabase(FakeMetadataStore):
    async def ping(self) -> None:
        raise Unavailable("database unavailable: connection refused")


def _services(metadata: FakeMetadataStore, blobs: FakeBlobStore) -> Services:
    authenticator = Authenticator(metadata, jwt=None, bootstrap_keys=[])
    return Services(Settings(), FakeClock(), metadata, blobs, authenticator)


async def test_all_ok() -> None:
    services = _services(FakeMetadataStore(FakeClock()), FakeBlobStore())
    assert await check_readiness(services, {}) == {"database": "ok", "hot": "ok", "cold": "ok"}


async def test_a_hung_dependency_is_reported_in_time_and_checked_once() -> None:
    blobs = HangingColdStore()
    services = _services(DownDatabase(FakeClock()), blobs)
    running: dict[str, asyncio.Task[None]] = {}
    started = time.monotonic()
    checks = await check_readiness(services, running, timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert checks == {
        "database": "database unavailable: connection refused",
        "hot": "ok",
        "cold": "no answer within 0.2 s",
    }
    await check_readiness(services, running, timeout_s=0.2)
    assert blobs.cold_probes == 1  # the hung check is still running: not started again


class HotOnDiskStore(FakeBlobStore):
    """Hot on a disk with 1 GB of 4 free; cold on a store with no disk (S3)."""

    async def space(self, storage_class: StorageClass) -> tuple[int, int] | None:
        return (10**9, 4 * 10**9) if storage_class is StorageClass.HOT else None


async def test_the_disk_gauge_shows_what_each_class_store_measures() -> None:
    services = _services(FakeMetadataStore(FakeClock()), HotOnDiskStore())
    await refresh_scrape_gauges(services, {})
    text = services.metrics.render().decode()
    assert 'just_storage_root_free_bytes{storage_class="hot"} 1e+09' in text
    assert 'just_storage_root_size_bytes{storage_class="hot"} 4e+09' in text
    assert 'root_free_bytes{storage_class="cold"}' not in text


class BrokenDatabase(FakeMetadataStore):
    """A bug's error, whose message carries the driver's text (a path, SQL)."""

    async def ping(self) -> None:
        raise StorageError("database error: file /srv/js/meta.db is not a database")


async def test_a_bug_shows_no_database_text_and_logs_it_under_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    services = _services(BrokenDatabase(FakeClock()), FakeBlobStore())
    with caplog.at_level(logging.WARNING, logger="juststorage.api"):
        checks = await check_readiness(services, {}, request_id="req-7")
    assert checks["database"] == "internal error"
    (record,) = [r for r in caplog.records if "not ready" in r.getMessage()]
    assert "/srv/js/meta.db" in record.getMessage()
    assert getattr(record, FIELDS_ATTR) == {"request_id": "req-7"}


async def test_a_full_database_disk_says_so() -> None:
    class FullDatabase(FakeMetadataStore):
        async def ping(self) -> None:
            raise InsufficientStorage("the database's disk is full")

    services = _services(FullDatabase(FakeClock()), FakeBlobStore())
    checks = await check_readiness(services, {})
    assert checks["database"] == "the database's disk is full"
