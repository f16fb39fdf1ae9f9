"""The Grafana dashboard (deploy/grafana/dashboards/juststorage.json) as data.

Each panel is one row of `_PANELS`: a title, a unit and its queries with their
legends. Panels are laid out two to a row in the order given. Every query is
scoped by the dashboard's `job` variable; tests/e2e/test_metrics_multiprocess.py
checks that each metric a query names is one the server exposes.
"""

from __future__ import annotations

from typing import Any

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_PANEL_WIDTH = 12
_PANEL_HEIGHT = 8
_PER_ROW = 2

# (title, unit, ((PromQL, legend), ...))
_PANELS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Request rate by status",
        "reqps",
        (
            (
                'sum by (status) (rate(just_storage_requests_total{job=~"$job"}'
                "[$__rate_interval]))",
                "{{status}}",
            ),
        ),
    ),
    (
        "Error ratio (5xx)",
        "percentunit",
        (
            (
                'sum(rate(just_storage_requests_total{job=~"$job",status=~"5.."}'
                "[$__rate_interval])) / clamp_min(sum(rate("
                'just_storage_requests_total{job=~"$job"}[$__rate_interval])), 1e-9)',
                "5xx / all",
            ),
        ),
    ),
    (
        "Latency p50 by namespace",
        "s",
        (
            (
                "histogram_quantile(0.5, sum by (le, namespace) (rate("
                'just_storage_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))',
                "{{namespace}}",
            ),
        ),
    ),
    (
        "Latency p99 by namespace",
        "s",
        (
            (
                "histogram_quantile(0.99, sum by (le, namespace) (rate("
                'just_storage_request_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))',
                "{{namespace}}",
            ),
        ),
    ),
    (
        "Time to first byte p99 by namespace (GET, HEAD)",
        "s",
        (
            (
                "histogram_quantile(0.99, sum by (le, namespace) (rate("
                'just_storage_time_to_first_byte_seconds_bucket{job=~"$job",method=~"GET|HEAD"}'
                "[$__rate_interval])))",
                "{{namespace}}",
            ),
        ),
    ),
    (
        "Checksum mismatches",
        "short",
        (
            (
                "sum by (source) (increase("
                'just_storage_checksum_mismatches_total{job=~"$job"}[$__rate_interval]))',
                "{{source}}",
            ),
        ),
    ),
    (
        "Stored bytes by storage class",
        "bytes",
        (
            (
                "sum by (storage_class) (max by (storage_class, namespace) "
                '(just_storage_storage_bytes{job=~"$job"}))',
                "{{storage_class}}",
            ),
        ),
    ),
    (
        "Objects by state",
        "short",
        (
            (
                "sum by (status) (max by (namespace, tenant, status) "
                '(just_storage_objects_total{job=~"$job"}))',
                "{{status}}",
            ),
        ),
    ),
    # Bytes and hits are two panels: one axis cannot carry bytes/s and hits/s.
    (
        "Dedup savings (bytes)",
        "Bps",
        (
            (
                'sum(rate(just_storage_dedup_bytes_saved_total{job=~"$job"}[$__rate_interval]))',
                "bytes saved / s",
            ),
        ),
    ),
    (
        "Dedup hits",
        "ops",
        (
            (
                'sum(rate(just_storage_dedup_hits_total{job=~"$job"}[$__rate_interval]))',
                "dedup hits / s",
            ),
        ),
    ),
    (
        "Upload and download throughput",
        "Bps",
        (
            (
                'sum(rate(just_storage_uploaded_bytes_total{job=~"$job"}[$__rate_interval]))',
                "uploaded",
            ),
            (
                'sum(rate(just_storage_downloaded_bytes_total{job=~"$job"}[$__rate_interval]))',
                "downloaded",
            ),
        ),
    ),
    (
        "GC runs and deleted blobs",
        "short",
        (
            (
                'sum(increase(just_storage_gc_runs_total{job=~"$job"}[$__rate_interval]))',
                "passes",
            ),
            (
                'sum(increase(just_storage_gc_deleted_blobs_total{job=~"$job"}[$__rate_interval]))',
                "blobs deleted",
            ),
        ),
    ),
    (
        "GC pass duration p99",
        "s",
        (
            (
                "histogram_quantile(0.99, sum by (le) (rate("
                'just_storage_gc_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))',
                "p99",
            ),
        ),
    ),
    (
        "Throttled requests by tenant",
        "reqps",
        (
            (
                "sum by (tenant) (rate("
                'just_storage_throttled_requests_total{job=~"$job"}[$__rate_interval]))',
                "{{tenant}}",
            ),
        ),
    ),
    (
        "Database connections and uploads in flight",
        "short",
        (
            ('sum(just_storage_db_connections_in_use{job=~"$job"})', "db connections in use"),
            ('sum(just_storage_db_connections_max{job=~"$job"})', "db connections max"),
            ('sum(just_storage_uploads_in_flight{job=~"$job"})', "uploads in flight"),
        ),
    ),
    (
        "Storage root free space",
        "percentunit",
        (
            (
                'min by (storage_class) (just_storage_root_free_bytes{job=~"$job"}'
                ' / just_storage_root_size_bytes{job=~"$job"})',
                "{{storage_class}}",
            ),
        ),
    ),
    (
        "Server processes: CPU",
        "short",
        (
            (
                'sum by (instance, pid) (rate(process_cpu_seconds_total{job=~"$job"}'
                "[$__rate_interval]))",
                "{{instance}} pid {{pid}}",
            ),
        ),
    ),
    (
        "Server processes: resident memory",
        "bytes",
        (('process_resident_memory_bytes{job=~"$job"}', "{{instance}} pid {{pid}}"),),
    ),
    (
        "Readiness checks",
        "short",
        (('min by (check) (just_storage_ready{job=~"$job"})', "{{check}}"),),
    ),
    (
        "Scrub read rate",
        "Bps",
        (
            (
                'sum(rate(just_storage_scrub_bytes_total{job=~"$job"}[$__rate_interval]))',
                "re-hashed",
            ),
        ),
    ),
    (
        "Scrub: corrupt blobs and passes",
        "short",
        (
            ('max(just_storage_scrub_corrupt_blobs{job=~"$job"})', "corrupt blobs"),
            ('max(just_storage_scrub_passes_completed{job=~"$job"})', "passes completed"),
        ),
    ),
)


def _panel(index: int, title: str, unit: str, queries: tuple[tuple[str, str], ...]) -> Any:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "description": "",
        "datasource": dict(_DATASOURCE),
        "gridPos": {
            "h": _PANEL_HEIGHT,
            "w": _PANEL_WIDTH,
            "x": (index % _PER_ROW) * _PANEL_WIDTH,
            "y": (index // _PER_ROW) * _PANEL_HEIGHT,
        },
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {
            "legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull"]}
        },
        "targets": [
            {
                "refId": chr(ord("A") + n),
                "datasource": dict(_DATASOURCE),
                "expr": expr,
                "legendFormat": legend,
            }
            for n, (expr, legend) in enumerate(queries)
        ],
    }


def dashboard() -> dict[str, Any]:
    """The dashboard: a data source and a `job` variable, then the panels."""
    return {
        "title": "JustStorage",
        "uid": "juststorage-overview",
        "tags": ["juststorage"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "timezone": "utc",
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Data source",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "job",
                    "type": "query",
                    "datasource": dict(_DATASOURCE),
                    "query": "label_values(just_storage_requests_total, job)",
                    "refresh": 2,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "current": {},
                    "label": "Job",
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": [_panel(i, *panel) for i, panel in enumerate(_PANELS)],
    }
