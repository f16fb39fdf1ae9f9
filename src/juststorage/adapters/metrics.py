"""Prometheus instruments (`just_storage_*`) on a registry owned by one app instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from juststorage.application.ports import Census

_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """Every metric the service exports. Label values are bounded: no keys, no ids."""

    def __init__(self) -> None:
        # `_created` series only add noise to every counter (the function is untyped).
        cast(Callable[[], None], disable_created_metrics)()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "just_storage_requests",
            "HTTP requests answered.",
            ["method", "status", "namespace"],
            registry=r,
        )
        self.request_duration = Histogram(
            "just_storage_request_duration_seconds",
            "Time to answer a request.",
            ["method", "namespace"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.objects = Gauge(
            "just_storage_objects_total",  # the SPEC's name, though it is a gauge
            "Object versions by state.",
            ["namespace", "tenant", "status"],
            registry=r,
        )
        self.storage_bytes = Gauge(
            "just_storage_storage_bytes",
            "Logical bytes of committed versions.",
            ["storage_class", "namespace"],
            registry=r,
        )
        self.gc_runs = Counter("just_storage_gc_runs", "GC passes run.", registry=r)
        self.gc_deleted_blobs = Counter(
            "just_storage_gc_deleted_blobs", "Blob files removed by GC.", registry=r
        )
        self.gc_duration = Histogram(
            "just_storage_gc_duration_seconds", "Time of one GC pass.", registry=r
        )
        self.uploaded_bytes = Counter(
            "just_storage_uploaded_bytes", "Bytes received in committed uploads.", registry=r
        )
        self.downloaded_bytes = Counter(
            "just_storage_downloaded_bytes", "Bytes sent in object downloads.", registry=r
        )
        self.dedup_hits = Counter(
            "just_storage_dedup_hits", "Uploads whose bytes were already stored.", registry=r
        )
        self.dedup_bytes_saved = Counter(
            "just_storage_dedup_bytes_saved", "Bytes not stored again thanks to dedup.", registry=r
        )
        self.throttled = Counter(
            "just_storage_throttled_requests", "Requests answered 429.", ["tenant"], registry=r
        )

    def observe_census(self, census: list[Census]) -> None:
        """Replace the object and byte gauges with a fresh count from the database."""
        self.objects.clear()
        self.storage_bytes.clear()
        for row in census:
            self.objects.labels(row.namespace, row.tenant_id, row.state.value).inc(row.objects)
            if row.state.value == "COMMITTED":
                self.storage_bytes.labels(row.storage_class.value, row.namespace).inc(
                    row.size_bytes
                )

    def render(self) -> bytes:
        return generate_latest(self.registry)
