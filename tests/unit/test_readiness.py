"""/ready's checks: run at once, each bounded in time, a hung one checked once."""

from __future__ import annotations

import asyncio
import time

import pytest

from fakes.blobs import FakeBlobStore
from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.api.operations import check_readiness
from juststorage.application.authentication import Authenticator
from juststorage.bootstrap import Services
from juststorage.config import Settings
from juststorage.domain.errors import Unavailable
from juststorage.domain.model import StorageClass

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
    assert await check_readiness(services) == {"database": "ok", "hot": "ok", "cold": "ok"}


async def test_a_hung_dependency_is_reported_in_time_and_checked_once() -> None:
    blobs = HangingColdStore()
    services = _services(DownDatabase(FakeClock()), blobs)
    started = time.monotonic()
    checks = await check_readiness(services, timeout_s=0.2)
    assert time.monotonic() - started < 2
    assert checks == {
        "database": "database unavailable: connection refused",
        "hot": "ok",
        "cold": "no answer within 0.2 s",
    }
    await check_readiness(services, timeout_s=0.2)
    assert blobs.cold_probes == 1  # the hung check is still running: not started again
