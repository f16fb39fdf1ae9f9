"""tenant_usage: logical bytes per class and the monthly cost (GB = 10**9 bytes)."""

from __future__ import annotations

import pytest

from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from fakes.world import seed_version
from juststorage.application.deletes import delete_object
from juststorage.application.usage import ClassCost, tenant_usage
from juststorage.domain.model import StorageClass, TenantId

pytestmark = pytest.mark.anyio

HOT, COLD = StorageClass.HOT, StorageClass.COLD
PRICES = {HOT: 0.10, COLD: 0.02}
GB = 10**9


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> FakeMetadataStore:
    return FakeMetadataStore(clock)


async def test_cost_is_bytes_over_ten_to_the_ninth_times_price(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    await seed_version(store, clock, "big", size_bytes=2 * GB)
    await seed_version(store, clock, "half", size_bytes=GB // 2)
    await seed_version(store, clock, "archive", size_bytes=3 * GB, storage_class=COLD)
    usage = await tenant_usage(store, TenantId("acme"), prices_gb_month=PRICES, currency="EUR")
    assert usage.tenant_id == "acme"
    assert usage.currency == "EUR"
    assert usage.by_storage_class == {
        HOT: ClassCost(2, 2_500_000_000, 0.25),
        COLD: ClassCost(1, 3_000_000_000, 0.06),
    }
    assert usage.objects == 3
    assert usage.logical_bytes == 5_500_000_000
    assert usage.monthly_cost == pytest.approx(0.31)


async def test_a_gibibyte_is_not_a_gigabyte(store: FakeMetadataStore, clock: FakeClock) -> None:
    await seed_version(store, clock, "k", size_bytes=2**30)
    usage = await tenant_usage(store, TenantId("acme"), prices_gb_month=PRICES, currency="USD")
    assert usage.by_storage_class[HOT].monthly_cost == pytest.approx(0.1073741824, abs=1e-6)


async def test_every_version_and_every_duplicate_is_billed(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    await seed_version(store, clock, "k", data=b"same", size_bytes=GB)
    await seed_version(store, clock, "k", data=b"same", size_bytes=GB)
    await seed_version(store, clock, "copy", data=b"same", size_bytes=GB)
    usage = await tenant_usage(store, TenantId("acme"), prices_gb_month=PRICES, currency="USD")
    assert (usage.objects, usage.logical_bytes) == (3, 3 * GB)
    assert usage.monthly_cost == pytest.approx(0.30)


async def test_deleted_objects_and_other_tenants_are_not_billed(
    store: FakeMetadataStore, clock: FakeClock
) -> None:
    gone = await seed_version(store, clock, "gone", size_bytes=GB)
    await seed_version(store, clock, "theirs", tenant="other", size_bytes=GB)
    await delete_object(store, TenantId("acme"), gone.id)
    usage = await tenant_usage(store, TenantId("acme"), prices_gb_month=PRICES, currency="USD")
    assert usage.by_storage_class == {HOT: ClassCost(0, 0, 0.0), COLD: ClassCost(0, 0, 0.0)}
    assert (usage.objects, usage.logical_bytes, usage.monthly_cost) == (0, 0, 0.0)
