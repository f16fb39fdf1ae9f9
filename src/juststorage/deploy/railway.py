"""Railway: `railway.json` (Dockerfile build, start command, readiness check).

Railway keeps databases, volumes and variables outside this file: add a
PostgreSQL service, set `DATABASE_URL=${{Postgres.DATABASE_URL}}` and
`JWT_SECRET` as service variables, and attach a volume at /data
(docs/deployment.md).
"""

from __future__ import annotations

from juststorage.deploy import monitoring
from juststorage.deploy.documents import json_text
from juststorage.deploy.options import DeployOptions


def files(options: DeployOptions) -> dict[str, str]:
    """railway.json (Railway keeps the rest in its dashboard)."""
    config = {
        "$schema": "https://railway.com/railway.schema.json",
        "build": {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile"},
        "deploy": {
            # /metrics on its own port (a service variable may move it), never on the
            # public one (SPEC §2).
            "startCommand": (
                "sh -c 'export JUSTSTORAGE_METRICS_ADDR="
                f'"${{JUSTSTORAGE_METRICS_ADDR:-{monitoring.METRICS_ADDR}}}";'
                " exec juststorage serve --host 0.0.0.0 --port ${PORT:-8080}'"
            ),
            "healthcheckPath": "/ready",
            "healthcheckTimeout": 120,
            "restartPolicyType": "ON_FAILURE",
            "restartPolicyMaxRetries": 10,
            "numReplicas": 1,
        },
    }
    return {"railway.json": json_text(config)}
