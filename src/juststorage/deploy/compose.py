"""docker compose: JustStorage + PostgreSQL, Prometheus and Grafana (profile `monitoring`)."""

from __future__ import annotations

import json

from juststorage.deploy import dashboard, kubernetes
from juststorage.deploy.options import DeployOptions, fill, template


def monitoring_files(job: str) -> dict[str, str]:
    """Prometheus config and rules, Grafana provisioning and dashboard (under deploy/)."""
    return {
        "deploy/prometheus/prometheus.yml": template("monitoring", "prometheus.yml"),
        "deploy/prometheus/alerts.yml": kubernetes.alert_rules(job),
        "deploy/grafana/dashboards/juststorage.json": (
            json.dumps(dashboard.dashboard(), indent=2) + "\n"
        ),
        "deploy/grafana/provisioning/datasources/prometheus.yml": template(
            "monitoring", "grafana-datasource.yml"
        ),
        "deploy/grafana/provisioning/dashboards/juststorage.yml": template(
            "monitoring", "grafana-dashboards.yml"
        ),
    }


def files(options: DeployOptions) -> dict[str, str]:
    return {
        "docker-compose.yml": fill(template("compose", "docker-compose.yml"), options),
        ".env.example": template("compose", "env.example"),
        # The scrape job in prometheus.yml is named `juststorage` whatever the app is called.
        **monitoring_files("juststorage"),
    }
