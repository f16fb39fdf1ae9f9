"""Railway: `railway.json` (Dockerfile build, start command, readiness check).

Railway keeps databases, volumes and variables outside this file: add a
PostgreSQL service, set `DATABASE_URL=${{Postgres.DATABASE_URL}}` and
`JWT_SECRET` as service variables, and attach a volume at /data
(docs/deployment.md).
"""

from __future__ import annotations

from juststorage.deploy import monitoring
from juststorage.deploy.credential import KEYS_CREATE, token_issue_lines
from juststorage.deploy.documents import json_text
from juststorage.deploy.options import DeployOptions


def first_credential(options: DeployOptions) -> list[str]:
    """Where to run the command that prints the first admin API key."""
    return [
        f"railway ssh --service {options.app_name}, then run",
        f"  juststorage-entrypoint {KEYS_CREATE}",
        *token_issue_lines("the service's Variables"),
    ]


def files(options: DeployOptions) -> dict[str, str]:
    """railway.json (Railway keeps the rest in its dashboard)."""
    config = {
        "$schema": "https://railway.com/railway.schema.json",
        "build": {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"},
        "deploy": {
            # /metrics on its own port (a service variable may move it), never on the
            # public one (SPEC §2). The start command replaces the image's entry
            # point, so it names it: Railway's volume is root-owned, and the entry
            # point hands it to uid 10001 and drops root.
            "startCommand": (
                "sh -c 'export JUSTSTORAGE_METRICS_ADDR="
                f'"${{JUSTSTORAGE_METRICS_ADDR:-{monitoring.METRICS_ADDR}}}";'
                " exec juststorage-entrypoint serve --host 0.0.0.0 --port ${PORT:-8080}'"
            ),
            "healthcheckPath": "/ready",
            "healthcheckTimeout": 120,
            "restartPolicyType": "ON_FAILURE",
            "restartPolicyMaxRetries": 10,
            "numReplicas": 1,
        },
    }
    return {"railway.json": json_text(config)}
