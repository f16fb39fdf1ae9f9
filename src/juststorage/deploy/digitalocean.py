"""DigitalOcean App Platform: `.do/app.yaml` with a managed PostgreSQL database and
the blobs in a DigitalOcean Space (S3-compatible).

App Platform has no persistent volumes, so the storage roots are `s3://` roots in
a Space named after the app, in the Spaces region nearest the app's region; its
access key is a pair of SECRET variables set in the control panel.
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy.credential import KEYS_CREATE, token_issue_lines
from juststorage.deploy.documents import yaml_text
from juststorage.deploy.options import DeployOptions

# App Platform region -> the Spaces region the blobs go to (the same place, or the
# nearest one that has Spaces).
SPACES_REGION = {
    "ams": "ams3",
    "blr": "blr1",
    "fra": "fra1",
    "lon": "ams3",
    "nyc": "nyc3",
    "sfo": "sfo3",
    "sgp": "sgp1",
    "syd": "syd1",
    "tor": "nyc3",
}
REGIONS = tuple(SPACES_REGION)
DEFAULT_REGION = "nyc"


def bucket(app: str) -> str:
    """The Space (bucket) the generated spec names: created by the operator."""
    return f"{app}-blobs"


def _spec(app: str, region: str) -> dict[str, Any]:
    spaces = SPACES_REGION[region]
    plain = {
        "JUSTSTORAGE_HOT_ROOT": f"s3://{bucket(app)}/hot",
        "JUSTSTORAGE_COLD_ROOT": f"s3://{bucket(app)}/cold",
        "AWS_ENDPOINT_URL": f"https://{spaces}.digitaloceanspaces.com",
        "AWS_REGION": spaces,
        "JUSTSTORAGE_METRICS_ADDR": "0.0.0.0:9091",
    }
    env = [
        {"key": "DATABASE_URL", "scope": "RUN_TIME", "value": f"${{{app}-db.DATABASE_URL}}"},
        {"key": "JWT_SECRET", "scope": "RUN_TIME", "type": "SECRET"},
        {"key": "API_KEYS", "scope": "RUN_TIME", "type": "SECRET"},
        # A Spaces access key (API > Spaces Keys) for the bucket above.
        {"key": "AWS_ACCESS_KEY_ID", "scope": "RUN_TIME", "type": "SECRET"},
        {"key": "AWS_SECRET_ACCESS_KEY", "scope": "RUN_TIME", "type": "SECRET"},
        *({"key": key, "scope": "RUN_TIME", "value": value} for key, value in plain.items()),
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


def first_credential(options: DeployOptions) -> list[str]:
    """Where to run the command that prints the first admin API key."""
    return [
        "in the control panel: the app > Console (the running component), run",
        f"  juststorage-entrypoint {KEYS_CREATE}",
        *token_issue_lines("the app's Settings > Environment Variables"),
    ]


def files(options: DeployOptions) -> dict[str, str]:
    """.do/app.yaml for `options.app_name` in `options.region` (default nyc)."""
    region = options.region or DEFAULT_REGION
    spaces = SPACES_REGION[region]
    notes = [
        "DigitalOcean App Platform: doctl apps create --spec .do/app.yaml",
        "Set the repository below. Blobs live in the Space (bucket)"
        f" {bucket(options.app_name)} in {spaces}:",
        "create it and a Spaces access key first (control panel: Spaces Object Storage).",
        "JWT_SECRET, API_KEYS, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are SECRET",
        "variables: set their values in the control panel (or doctl), never in this file.",
        "/metrics is on port 9091, not routed from outside the app: at most the other",
        "components of this app reach it (docs/deployment.md).",
        "The first credential, an admin API key printed once:",
        *(f"  {line}" for line in first_credential(options)),
    ]
    spec = _spec(options.app_name, region)
    return {".do/app.yaml": yaml_text(__name__, spec, notes=notes)}
