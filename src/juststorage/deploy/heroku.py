"""Heroku: `app.json` (Postgres add-on, generated JWT secret) and a `Procfile`.

Heroku's dyno file system is ephemeral: blobs written there are lost at the next
restart, so this suits a demo, not data you keep (docs/deployment.md).
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy.documents import json_text
from juststorage.deploy.options import DeployOptions

_PROCESSES = {
    "release": "juststorage migrate",
    "web": "juststorage serve --host 0.0.0.0 --port $PORT",
}


def _app(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "JustStorage object store (demo: dyno disks are ephemeral)",
        "stack": "heroku-24",
        "buildpacks": [{"url": "heroku/python"}],
        "formation": {"web": {"quantity": 1, "size": "basic"}},
        "addons": [{"plan": "heroku-postgresql:essential-0", "as": "DATABASE"}],
        "env": {
            "JWT_SECRET": {"description": "HS256 signing secret for JWTs", "generator": "secret"},
            "API_KEYS": {
                "description": "Optional bootstrap API keys (key:tenants:scopes, comma-separated)",
                "required": False,
            },
            "JUSTSTORAGE_DATA_DIR": {"value": "/tmp/juststorage"},
            "JUSTSTORAGE_WORKERS": {"value": "2"},
            # /metrics off the public router (operator data, SPEC §2).
            "JUSTSTORAGE_METRICS_ADDR": {"value": "127.0.0.1:9091"},
        },
    }


def files(options: DeployOptions) -> dict[str, str]:
    """app.json, the Procfile, and what the Python buildpack reads."""
    return {
        "app.json": json_text(_app(options.app_name)),
        "Procfile": "".join(f"{kind}: {command}\n" for kind, command in _PROCESSES.items()),
        ".python-version": "3.11\n",
        "requirements.txt": "# The buildpack installs JustStorage from this checkout.\n.\n",
    }
