"""Prometheus and Grafana: scrape config, alert rules and provisioning, as data.

docker compose mounts these files from deploy/; Kubernetes gets the same alert
groups inside a PrometheusRule (kubernetes.py). Thresholds are starting points
(docs/operations.md); deploy/prometheus/alerts.test.yml holds promtool's unit
tests of the rules.
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy import dashboard
from juststorage.deploy.documents import json_text, yaml_text

COMPOSE_JOB = "juststorage"  # the scrape job in prometheus.yml, whatever the app is called
# The port of JUSTSTORAGE_METRICS_ADDR in every generated deployment: /metrics is
# operator data (SPEC §2), served there and never on the public listener.
METRICS_PORT = 9091
METRICS_ADDR = f"0.0.0.0:{METRICS_PORT}"
# JustStorageDiskFillsSoon: the horizon of its linear prediction.
FILL_HOURS = 4
# JustStorageScrubStalled: how long the scrub's position may stand still. A healthy
# scrub saves it every few seconds; only a blob taking this long to read at the
# scrub rate (14 GB at 2 MB/s) holds it still as long.
SCRUB_STALL_WINDOW = "2h"


def _alert(
    name: str, expr: str, wait: str, severity: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": wait,
        "labels": {"severity": severity},
        "annotations": {"summary": summary, "description": description},
    }


def alert_groups(job: str) -> list[dict[str, Any]]:
    """The alert rule groups, for the metrics of scrape job `job`."""

    def series(metric: str, matchers: str = "") -> str:
        return f'{metric}{{job="{job}"{matchers}}}'

    free_ratio = (
        "min by (instance, storage_class) (\n"
        f"  {series('just_storage_root_free_bytes')}"
        f" / {series('just_storage_root_size_bytes')}\n"
        ")"
    )
    rules = [
        _alert(
            "JustStorageDown",
            f"{series('up')} == 0",
            "2m",
            "critical",
            "JustStorage target {{ $labels.instance }} cannot be scraped",
            "Prometheus has not reached /metrics on {{ $labels.instance }} for 2 minutes.",
        ),
        _alert(
            "JustStorageNotReady",
            f"min by (instance, check) ({series('just_storage_ready')}) == 0",
            "2m",
            "critical",
            "JustStorage readiness check {{ $labels.check }} fails on {{ $labels.instance }}",
            "GET /ready answers 503: the {{ $labels.check }} check has failed for 2 minutes"
            " (database unreachable or a storage root not writable).",
        ),
        _alert(
            "JustStorageHighErrorRatio",
            "sum by (job) (rate("
            + series("just_storage_requests_total", ',status=~"5.."')
            + "[5m]))\n"
            f"  / sum by (job) (rate({series('just_storage_requests_total')}[5m]))\n"
            "  > 0.05\n",
            "10m",
            "critical",
            "JustStorage answers more than 5% of requests with 5xx",
            "{{ $value | humanizePercentage }} of requests failed with a server error"
            " over the last 5 minutes.",
        ),
        _alert(
            "JustStorageHighLatency",
            # One quantile over two histograms with the same buckets: reads until their
            # first byte (a download's sending grows with its size, its start does not)
            # and deletes to their end. Their series differ in `method`, so `or` keeps
            # both. Uploads are left out: their answer waits for their whole body.
            "histogram_quantile(0.99,\n"
            "  sum by (le, namespace) (\n"
            "    rate("
            + series("just_storage_time_to_first_byte_seconds_bucket", ',method=~"GET|HEAD"')
            + "[5m])\n"
            "    or\n"
            "    rate("
            + series("just_storage_request_duration_seconds_bucket", ',method="DELETE"')
            + "[5m])\n"
            "  )\n"
            ") > 2.5\n",
            "15m",
            "warning",
            "JustStorage p99 latency above 2.5 s in namespace {{ $labels.namespace }}",
            "The 99th percentile of reads (GET and HEAD, to their first byte) and deletes"
            " took {{ $value | humanizeDuration }} over 5 minutes. A download's sending"
            " time, which grows with its size, and uploads are left out.",
        ),
        _alert(
            "JustStorageGcNotRunning",
            f"sum by (job) (increase({series('just_storage_gc_runs_total')}[30m])) == 0",
            "30m",
            "warning",
            "No JustStorage GC pass has finished for an hour",
            "just_storage_gc_runs_total has not grown: deleted objects keep their disk space."
            " Check the logs of juststorage.gc (or JUSTSTORAGE_GC_INTERVAL_S=0).",
        ),
        _alert(
            "JustStorageDiskAlmostFull",
            f"{free_ratio} < 0.10\n",
            "10m",
            "warning",
            "JustStorage {{ $labels.storage_class }} root has less than 10% free",
            "Uploads to the {{ $labels.storage_class }} class will fail with 507 when it is"
            " full. Free space: {{ $value | humanizePercentage }}.",
        ),
        _alert(
            "JustStorageDiskFull",
            f"{free_ratio} < 0.02\n",
            "2m",
            "critical",
            "JustStorage {{ $labels.storage_class }} root is (almost) full",
            "Less than 2% free: uploads to {{ $labels.storage_class }} are about to fail with 507.",
        ),
        _alert(
            "JustStorageDiskFillsSoon",
            "min by (instance, storage_class) (\n"
            f"  predict_linear({series('just_storage_root_free_bytes')}[6h], {FILL_HOURS} * 3600)\n"
            ") < 0\n",
            "30m",
            "warning",
            "JustStorage {{ $labels.storage_class }} root fills up within"
            f" {FILL_HOURS} hours at this rate",
            "Free space on the {{ $labels.storage_class }} root, extrapolated from the last"
            f" 6 hours, reaches 0 within {FILL_HOURS} hours; uploads then fail with 507.",
        ),
        _alert(
            "JustStorageInsufficientStorage",
            "sum by (job) (increase("
            + series("just_storage_requests_total", ',status="507"')
            + "[5m])) > 0\n",
            "0m",
            "critical",
            "JustStorage answers uploads with 507 Insufficient Storage",
            "{{ $value | humanize }} requests failed with 507 in 5 minutes: a storage root"
            " is full (or the S3 store refuses writes). Free space or add capacity.",
        ),
        _alert(
            "JustStorageStoredChecksumMismatch",
            "sum by (job) (increase("
            + series("just_storage_checksum_mismatches_total", ',source="stored"')
            + "[15m])) > 0\n",
            "0m",
            "critical",
            "JustStorage read stored bytes that no longer match their SHA-256",
            "Stored bytes read back in the last 15 minutes that do not hash to their record:"
            " {{ $value | humanize }}. They changed on disk or in the object store after"
            " they were acknowledged (data rot, a failing disk, a file changed by hand)."
            " The server log names them; `juststorage fsck` checks every blob.",
        ),
        _alert(
            "JustStorageScrubFoundCorruptBlobs",
            f"max by (job) ({series('just_storage_scrub_corrupt_blobs')}) > 0\n",
            "0m",
            "critical",
            "JustStorage scrub found {{ $value | humanize }} corrupt or missing blobs",
            "Blobs whose stored bytes no longer hash to their name, or are gone (the"
            " corrupt_blobs table; every process reports the same count). The server log"
            " (juststorage.scrub) names each with the objects that hold it. Restore them"
            " with `juststorage fsck --repair --from-backup TARGET`; the alert clears"
            " once they read back good.",
        ),
        _alert(
            "JustStorageScrubStalled",
            f"max by (job) ({series('just_storage_scrub_rate_bytes_per_second')}) > 0\n"
            "and on (job)\n"
            f"max by (job) (changes({series('just_storage_scrub_pass_bytes')}"
            f"[{SCRUB_STALL_WINDOW}])) == 0\n"
            "and on (job)\n"
            f"max by (job) (changes({series('just_storage_scrub_passes_completed')}"
            f"[{SCRUB_STALL_WINDOW}])) == 0\n",
            "0m",
            "warning",
            f"JustStorage scrub is on but has not moved for {SCRUB_STALL_WINDOW}",
            "The scrub rate is set, yet neither the pass position nor the passes completed"
            f" changed in {SCRUB_STALL_WINDOW}: damage is no longer being looked for. The"
            " server log (juststorage.scrub) says why (a step failing, an unreachable store)."
            " A single blob that takes longer than this to read at the scrub rate also"
            " holds the position still: raise the rate.",
        ),
        _alert(
            "JustStorageThrottlingStorm",
            f"sum by (tenant) (rate({series('just_storage_throttled_requests_total')}[5m])) > 10",
            "10m",
            "warning",
            "Tenant {{ $labels.tenant }} is throttled at {{ $value | humanize }} requests/s",
            "More than 10 requests a second answered 429 for 10 minutes: a client retries"
            " without backing off, or the tenant's limits are too low.",
        ),
        _alert(
            "JustStorageDatabasePoolSaturated",
            f"sum by (job) ({series('just_storage_db_connections_in_use')})\n"
            f"  / sum by (job) ({series('just_storage_db_connections_max')}) > 0.9\n",
            "10m",
            "warning",
            "JustStorage database connections are more than 90% in use",
            "Requests wait for a database connection; add capacity or look for slow queries.",
        ),
    ]
    return [{"name": "juststorage", "rules": rules}]


def _prometheus_config() -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "rule_files": ["/etc/prometheus/alerts.yml"],
        "scrape_configs": [
            {
                "job_name": COMPOSE_JOB,
                "metrics_path": "/metrics",
                # The metrics listener: the service's public port answers 404 there.
                "static_configs": [{"targets": [f"juststorage:{METRICS_PORT}"]}],
            }
        ],
    }


def _grafana_datasources() -> dict[str, Any]:
    source = {
        "name": "Prometheus",
        "type": "prometheus",
        "uid": "prometheus",
        "access": "proxy",
        "url": "http://prometheus:9090",
        "isDefault": True,
    }
    return {"apiVersion": 1, "datasources": [source]}


def _grafana_dashboards() -> dict[str, Any]:
    provider = {
        "name": "juststorage",
        "folder": "JustStorage",
        "type": "file",
        "options": {"path": "/var/lib/grafana/dashboards"},
    }
    return {"apiVersion": 1, "providers": [provider]}


def files() -> dict[str, str]:
    """Prometheus config and rules, Grafana provisioning and dashboard (under deploy/)."""
    return {
        "deploy/prometheus/prometheus.yml": yaml_text(
            __name__,
            _prometheus_config(),
            notes=[
                'Prometheus for docker-compose.yml (profile "monitoring"): scrapes JustStorage',
                "and loads the alert rules next to this file.",
            ],
        ),
        "deploy/prometheus/alerts.yml": yaml_text(
            __name__,
            {"groups": alert_groups(COMPOSE_JOB)},
            notes=[
                "Prometheus alert rules for JustStorage. Load with `rule_files:` in prometheus.yml",
                "(docker-compose.yml does), or through the PrometheusRule in deploy/kubernetes/.",
                "Thresholds are starting points: tune them to your traffic (docs/operations.md).",
            ],
        ),
        "deploy/grafana/dashboards/juststorage.json": json_text(dashboard.dashboard()),
        "deploy/grafana/provisioning/datasources/prometheus.yml": yaml_text(
            __name__, _grafana_datasources()
        ),
        "deploy/grafana/provisioning/dashboards/juststorage.yml": yaml_text(
            __name__, _grafana_dashboards()
        ),
    }
