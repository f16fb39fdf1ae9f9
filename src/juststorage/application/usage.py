"""Usage: a tenant's logical bytes and monthly cost per storage class (SPEC §2)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from juststorage.application.ports import MetadataStore
from juststorage.application.records import NamespaceUsage
from juststorage.domain.model import StorageClass, TenantId

BYTES_PER_GB = 10**9


@dataclass(frozen=True, slots=True)
class ClassCost:
    objects: int
    size_bytes: int
    monthly_cost: float


@dataclass(frozen=True, slots=True)
class TenantUsage:
    tenant_id: TenantId
    objects: int
    logical_bytes: int
    by_storage_class: dict[StorageClass, ClassCost]
    monthly_cost: float
    currency: str


def _cost(size_bytes: int, price_gb_month: float) -> float:
    return round(size_bytes / BYTES_PER_GB * price_gb_month, 6)


async def tenant_usage(
    metadata: MetadataStore,
    tenant_id: TenantId,
    *,
    prices_gb_month: Mapping[StorageClass, float],
    currency: str,
) -> TenantUsage:
    """Every committed version counts; dedup savings are not billed away."""
    async with metadata.snapshot() as view:
        rows = {u.storage_class: u for u in await view.objects.usage(tenant_id)}
    by_class = {}
    for storage_class in StorageClass:
        row = rows.get(storage_class)
        objects, size = (row.objects, row.size_bytes) if row else (0, 0)
        by_class[storage_class] = ClassCost(
            objects, size, _cost(size, prices_gb_month[storage_class])
        )
    return TenantUsage(
        tenant_id=tenant_id,
        objects=sum(c.objects for c in by_class.values()),
        logical_bytes=sum(c.size_bytes for c in by_class.values()),
        by_storage_class=by_class,
        monthly_cost=round(sum(c.monthly_cost for c in by_class.values()), 6),
        currency=currency,
    )


async def tenant_namespaces(metadata: MetadataStore, tenant_id: TenantId) -> list[NamespaceUsage]:
    """The namespaces holding committed versions of the tenant, by name (byte order)."""
    async with metadata.snapshot() as view:
        rows = await view.objects.namespaces(tenant_id)
    return sorted(rows, key=lambda row: row.namespace.encode("utf-8"))
