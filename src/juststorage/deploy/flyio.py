"""Fly.io: `fly.toml` with a volume for the blobs and SQLite, and a readiness check.

Secrets: `fly secrets set JWT_SECRET=... [DATABASE_URL=postgres://...] [API_KEYS=...]`.
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy.credential import KEYS_CREATE
from juststorage.deploy.documents import toml_text
from juststorage.deploy.options import DeployOptions

_PORT = 8080
_METRICS_PORT = 9091
# Fly's regions (`fly platform regions`), as listed in 2026.
REGIONS = (
    "ams", "arn", "bom", "cdg", "dfw", "ewr", "fra", "gru", "iad",
    "jnb", "lax", "lhr", "nrt", "ord", "sin", "sjc", "syd", "yyz",
)  # fmt: skip
DEFAULT_REGION = "iad"


def _fly_toml(app: str, region: str) -> dict[str, Any]:
    check = {"grace_period": "10s", "interval": "15s", "method": "GET", "path": "/ready"}
    return {
        "app": app,
        "primary_region": region,
        "kill_signal": "SIGTERM",
        "kill_timeout": "60s",
        "build": {"dockerfile": "Dockerfile"},
        "env": {
            "JUSTSTORAGE_HOST": "0.0.0.0",
            "JUSTSTORAGE_PORT": str(_PORT),
            "JUSTSTORAGE_DATA_DIR": "/data/meta",
            "JUSTSTORAGE_HOT_ROOT": "/data/hot",
            "JUSTSTORAGE_COLD_ROOT": "/data/cold",
            "JUSTSTORAGE_METRICS_ADDR": f"0.0.0.0:{_METRICS_PORT}",
        },
        "mounts": [{"source": "juststorage_data", "destination": "/data"}],
        "http_service": {
            "internal_port": _PORT,
            "force_https": True,
            "auto_stop_machines": "off",
            "auto_start_machines": True,
            "min_machines_running": 1,
            "checks": [{**check, "timeout": "5s"}],
        },
        "metrics": {"port": _METRICS_PORT, "path": "/metrics"},
    }


def first_credential(options: DeployOptions) -> list[str]:
    """The command that prints the first admin API key (through the entry point,
    which drops root: `fly ssh console` runs as root)."""
    # `--tenant=*`: the same word whether or not a shell runs the command there.
    create = KEYS_CREATE.replace("--tenant '*'", "--tenant=*")
    return [f'fly ssh console --app {options.app_name} --command "juststorage-entrypoint {create}"']


def files(options: DeployOptions) -> dict[str, str]:
    """fly.toml for `options.app_name` in `options.region` (default iad)."""
    region = options.region or DEFAULT_REGION
    notes = [
        "Fly.io: `fly launch --no-deploy --copy-config`, then",
        f"  fly volumes create juststorage_data --region {region} --size 10",
        '  fly secrets set JWT_SECRET="$(openssl rand -hex 32)"',
        "  fly deploy",
        "Without DATABASE_URL the metadata is SQLite on the volume (one machine only);",
        "for several machines set DATABASE_URL to a PostgreSQL database (fly secrets set).",
        "/metrics listens on JUSTSTORAGE_METRICS_ADDR (port 9091), where Fly scrapes it;",
        "the internet does not reach it, but every app of the same Fly organization",
        "does, over the private network: deploy tenants' apps in another organization.",
        "The first credential, an admin API key printed once:",
        *(f"  {line}" for line in first_credential(options)),
    ]
    return {"fly.toml": toml_text(__name__, _fly_toml(options.app_name, region), notes=notes)}
