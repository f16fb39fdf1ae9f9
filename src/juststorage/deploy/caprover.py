"""CapRover: `captain-definition` (build from the Dockerfile) and a one-click-app
template that adds PostgreSQL, the persistent directories and the secrets.

CapRover fills the `$$cap_` variables at install time (asking for them or
generating random ones): no secret is stored in either file.
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy.credential import KEYS_CREATE, token_issue_lines
from juststorage.deploy.documents import json_text, yaml_text
from juststorage.deploy.options import DeployOptions

_APP = "$$cap_appname"
_DB = f"{_APP}-db"


def _variable(name: str, label: str, default: str, **more: str) -> dict[str, str]:
    return {"id": name, "label": label, "defaultValue": default, **more}


def _services() -> dict[str, Any]:
    database = {
        "image": "postgres:16-alpine",
        "volumes": [f"{_DB}-data:/var/lib/postgresql/data"],
        "restart": "always",
        "environment": {
            "POSTGRES_DB": "juststorage",
            "POSTGRES_USER": "juststorage",
            "POSTGRES_PASSWORD": "$$cap_pg_password",
        },
        "caproverExtra": {"notExposeAsWebApp": "true"},
    }
    database_url = f"postgresql://juststorage:$$cap_pg_password@srv-captain--{_DB}:5432/juststorage"
    app = {
        "depends_on": [_DB],
        "image": "$$cap_image",
        "restart": "always",
        "volumes": [f"{_APP}-{name}:/data/{name}" for name in ("hot", "cold", "meta")],
        "environment": {
            "DATABASE_URL": database_url,
            "JWT_SECRET": "$$cap_jwt_secret",
            "API_KEYS": "$$cap_api_keys",
            "JUSTSTORAGE_METRICS_ADDR": "0.0.0.0:9091",
        },
        "caproverExtra": {"containerHttpPort": "8080"},
    }
    return {_DB: database, _APP: app}


def _one_click_app(app_name: str) -> dict[str, Any]:
    # 64 hex digits: 256 bits, the least an HS256 JWT_SECRET should hold.
    random_secret = "$$cap_gen_random_hex(64)"
    variables = [
        _variable(_APP, "App name", app_name, validRegex="/^([a-z0-9-])+$/"),
        _variable(
            "$$cap_image",
            "JustStorage image (built from this repository's Dockerfile)",
            "juststorage:latest",
        ),
        _variable("$$cap_pg_password", "PostgreSQL password", random_secret),
        _variable("$$cap_jwt_secret", "JWT_SECRET (HS256 signing secret)", random_secret),
        _variable("$$cap_api_keys", "API_KEYS (optional bootstrap keys, key:tenants:scopes)", ""),
    ]
    instructions = {
        "start": "JustStorage object store with PostgreSQL."
        " Data lives in three persistent directories.",
        "end": "JustStorage is deployed. Its health check is /ready; metrics are at"
        " /metrics on port 9091, not published, but every app on this CapRover instance"
        " reaches it over CapRover's network (srv-captain--APP:9091): deploy tenants'"
        " apps on another instance.",
    }
    return {
        "captainVersion": 4,
        "services": _services(),
        "caproverOneClickApp": {
            "variables": variables,
            "instructions": instructions,
            "displayName": "JustStorage",
            "isOfficial": False,
            "description": "Content-addressed internal object storage.",
            "documentation": "See docs/deployment.md in the JustStorage repository.",
        },
    }


def first_credential(options: DeployOptions) -> list[str]:
    """The command, on the CapRover host, that prints the first admin API key."""
    container = f"$(docker ps -q -f name=srv-captain--{options.app_name}. | head -n 1)"
    return [
        f"on the CapRover host: docker exec {container} juststorage-entrypoint {KEYS_CREATE}",
        *token_issue_lines("the app's App Configs page"),
    ]


def files(options: DeployOptions) -> dict[str, str]:
    """captain-definition and the one-click app, its app name defaulting to the option's."""
    notes = [
        "CapRover one-click app: Apps > One-Click Apps/Databases > TEMPLATE, paste this file.",
        "Secrets are asked for at install time ($$cap_ variables); none are stored here.",
        "The first credential, an admin API key printed once:",
        *(f"  {line}" for line in first_credential(options)),
    ]
    definition = {"schemaVersion": 2, "dockerfilePath": "./Dockerfile"}
    return {
        "captain-definition": json_text(definition),
        "caprover-one-click-app.yml": yaml_text(
            __name__, _one_click_app(options.app_name), notes=notes
        ),
    }
