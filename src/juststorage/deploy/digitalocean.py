"""DigitalOcean App Platform: `.do/app.yaml` with a managed PostgreSQL database.

App Platform has no persistent volumes: blobs live on the container's disk and
are lost on redeploy, so this suits a demo only (docs/deployment.md).
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy.documents import yaml_text
from juststorage.deploy.options import DeployOptions


def _spec(app: str, region: str) -> dict[str, Any]:
    env = [
        {"key": "DATABASE_URL", "scope": "RUN_TIME", "value": f"${{{app}-db.DATABASE_URL}}"},
        {"key": "JWT_SECRET", "scope": "RUN_TIME", "type": "SECRET"},
        {"key": "API_KEYS", "scope": "RUN_TIME", "type": "SECRET"},
        {"key": "JUSTSTORAGE_METRICS_ADDR", "scope": "RUN_TIME", "value": "0.0.0.0:9091"},
    ]
    service = {
        "name": app,
        "dockerfile_path": "Dockerfile",
        "source_dir": "/",
        "github": {"repo": "YOUR-ORG/juststorage", "branch": "main", "deploy_on_push": True},
        "http_port": 8080,
        "instance_count": 1,
        "instance_size_slug": "apps-s-1vcpu-1gb",
        "health_check": {"http_path": "/ready", "initial_delay_seconds": 10, "period_seconds": 15},
        "envs": env,
    }
    database = {"name": f"{app}-db", "engine": "PG", "version": "16", "production": False}
    return {"name": app, "region": region, "services": [service], "databases": [database]}


def files(options: DeployOptions) -> dict[str, str]:
    """.do/app.yaml for `options.app_name` in `options.region` (default nyc)."""
    notes = [
        "DigitalOcean App Platform: doctl apps create --spec .do/app.yaml",
        "Set the repository below. JWT_SECRET and API_KEYS are SECRET variables: set",
        "their values in the control panel (or doctl), never in this file.",
        "/metrics is on port 9091, not routed from outside the app: at most the other",
        "components of this app reach it (docs/deployment.md).",
    ]
    spec = _spec(options.app_name, options.region or "nyc")
    return {".do/app.yaml": yaml_text(__name__, spec, notes=notes)}
