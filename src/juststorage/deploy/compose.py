"""docker compose: JustStorage + PostgreSQL, Prometheus and Grafana (profile `monitoring`).

The variables of `.env.example` are one table (`_VARIABLES`); docker-compose.yml
refers to them through `_required` and `_optional`, so a name or a default is
written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from juststorage.deploy import monitoring
from juststorage.deploy.credential import KEYS_CREATE
from juststorage.deploy.documents import comment, header, yaml_text
from juststorage.deploy.options import DeployOptions


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str
    required: bool
    default: str = ""  # an optional variable's value when .env leaves it out
    comment: str = ""  # a line written above it in .env.example


_VARIABLES = (
    _Variable("POSTGRES_PASSWORD", required=True),
    _Variable("JWT_SECRET", required=True),
    _Variable(
        "API_KEYS",
        required=False,
        comment="Optional bootstrap API keys: key:tenants:scopes, comma-separated (SPEC §7).",
    ),
    _Variable("GRAFANA_ADMIN_PASSWORD", required=True, comment="Only with `--profile monitoring`."),
    _Variable(
        "JUSTSTORAGE_IMAGE", required=False, default="juststorage:latest", comment="Optional."
    ),
    _Variable("JUSTSTORAGE_WORKERS", required=False, default="2"),
    _Variable("JUSTSTORAGE_LOG_LEVEL", required=False, default="info"),
    _Variable("JUSTSTORAGE_PUBLISH", required=False, default="127.0.0.1:8080"),
)
_BY_NAME = {variable.name: variable for variable in _VARIABLES}


def _required(name: str) -> str:
    assert _BY_NAME[name].required, name
    return f"${{{name}:?set {name} in .env}}"


def _optional(name: str) -> str:
    return f"${{{name}:-{_BY_NAME[name].default}}}"


def _env_example() -> str:
    lines = []
    for variable in _VARIABLES:
        if variable.comment:
            lines.append(comment([variable.comment]))
        if variable.default:  # commented out: compose falls back to the default
            lines.append(f"# {variable.name}={variable.default}\n")
        else:  # named, left empty for the operator to fill in
            lines.append(f"{variable.name}=\n")
    notes = [
        "Copy to .env and fill in. .env holds secrets: keep it out of version control.",
        "Generate random values with e.g. `openssl rand -hex 32`.",
    ]
    return header(__name__, notes) + "".join(lines)


def _healthcheck() -> dict[str, Any]:
    return {
        "test": ["CMD-SHELL", "pg_isready -U juststorage -d juststorage"],
        "interval": "5s",
        "timeout": "5s",
        "retries": 10,
    }


def _services() -> dict[str, Any]:
    postgres = {
        "image": "postgres:16-alpine",
        "restart": "unless-stopped",
        "environment": {
            "POSTGRES_DB": "juststorage",
            "POSTGRES_USER": "juststorage",
            "POSTGRES_PASSWORD": _required("POSTGRES_PASSWORD"),
        },
        "volumes": ["postgres-data:/var/lib/postgresql/data"],
        "healthcheck": _healthcheck(),
    }
    juststorage = {
        "image": _optional("JUSTSTORAGE_IMAGE"),
        "build": ".",
        "restart": "unless-stopped",
        "depends_on": {"postgres": {"condition": "service_healthy"}},
        "environment": {
            # The password is checked once, by the postgres service above.
            "DATABASE_URL": "postgresql://juststorage:${POSTGRES_PASSWORD}@postgres:5432/juststorage",
            "JWT_SECRET": _required("JWT_SECRET"),
            "API_KEYS": _optional("API_KEYS"),
            "JUSTSTORAGE_WORKERS": _optional("JUSTSTORAGE_WORKERS"),
            "JUSTSTORAGE_LOG_LEVEL": _optional("JUSTSTORAGE_LOG_LEVEL"),
            # /metrics on the compose network only (Prometheus scrapes it), not published.
            "JUSTSTORAGE_METRICS_ADDR": monitoring.METRICS_ADDR,
        },
        "ports": [f"{_optional('JUSTSTORAGE_PUBLISH')}:8080"],
        "volumes": ["hot-data:/data/hot", "cold-data:/data/cold", "meta-data:/data/meta"],
    }
    prometheus = {
        "image": "prom/prometheus:v2.53.0",
        "profiles": ["monitoring"],
        "restart": "unless-stopped",
        "volumes": [
            "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
            "prometheus-data:/prometheus",
        ],
        "ports": ["127.0.0.1:9090:9090"],
    }
    grafana = {
        "image": "grafana/grafana:11.1.0",
        "profiles": ["monitoring"],
        "restart": "unless-stopped",
        "depends_on": ["prometheus"],
        "environment": {"GF_SECURITY_ADMIN_PASSWORD": _required("GRAFANA_ADMIN_PASSWORD")},
        "volumes": [
            "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro",
            "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "ports": ["127.0.0.1:3000:3000"],
    }
    return {
        "postgres": postgres,
        "juststorage": juststorage,
        "prometheus": prometheus,
        "grafana": grafana,
    }


def _compose_file(options: DeployOptions) -> dict[str, Any]:
    services = _services()
    volumes = [
        source.split(":", 1)[0]
        for service in services.values()
        for source in service.get("volumes", [])
        if not source.startswith("./")
    ]
    return {
        "name": options.app_name,
        "services": services,
        "volumes": dict.fromkeys(volumes),  # named volumes, with the engine's defaults
    }


def first_credential(options: DeployOptions) -> list[str]:
    """The command that prints the first admin API key."""
    return [f"docker compose run --rm juststorage {KEYS_CREATE}"]


def files(options: DeployOptions) -> dict[str, str]:
    """docker-compose.yml, .env.example and the monitoring files it mounts."""
    notes = [
        "JustStorage with PostgreSQL; Prometheus and Grafana with `--profile monitoring`.",
        "  cp .env.example .env   # then set the secrets in .env (never commit it)",
        "  docker compose up -d --build",
        "  docker compose --profile monitoring up -d",
        "The first credential, an admin API key printed once:",
        *(f"  {line}" for line in first_credential(options)),
    ]
    return {
        "docker-compose.yml": yaml_text(__name__, _compose_file(options), notes=notes),
        ".env.example": _env_example(),
        **monitoring.files(),
    }
