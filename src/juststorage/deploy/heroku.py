"""Heroku: `app.json` (Postgres and Bucketeer add-ons, generated JWT secret), a
`Procfile`, and a `.profile` that points the storage roots at the Bucketeer bucket.

A dyno's disk is lost at every restart, so blobs go to S3: the Bucketeer add-on
creates a bucket and sets BUCKETEER_* config vars. Config vars cannot refer to
each other, so `.profile`, which Heroku runs in bash before every dyno's command
(web, release, `heroku run`), exports the names the server reads (AWS_*,
JUSTSTORAGE_HOT_ROOT, JUSTSTORAGE_COLD_ROOT) from them, and stops the dyno with a
message when the add-on is missing rather than keeping blobs on the dyno's disk.
"""

from __future__ import annotations

from typing import Any

from juststorage.deploy.credential import KEYS_CREATE
from juststorage.deploy.documents import header, json_text
from juststorage.deploy.options import DeployOptions

# Heroku's Common Runtime regions (`heroku regions`); Private Spaces have more.
REGIONS = ("us", "eu")
DEFAULT_REGION = "us"
BUCKETEER_PLAN = "bucketeer:hobbyist"
_PROCESSES = {
    "release": "juststorage migrate",
    "web": "juststorage serve --host 0.0.0.0 --port $PORT",
}
# What the server reads, from the config vars Bucketeer sets (bash syntax).
_S3_EXPORTS = {
    "AWS_ACCESS_KEY_ID": "$BUCKETEER_AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "$BUCKETEER_AWS_SECRET_ACCESS_KEY",
    "AWS_REGION": "$BUCKETEER_AWS_REGION",
    "JUSTSTORAGE_HOT_ROOT": "s3://$BUCKETEER_BUCKET_NAME/hot",
    "JUSTSTORAGE_COLD_ROOT": "s3://$BUCKETEER_BUCKET_NAME/cold",
}


def _app(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "JustStorage object store: metadata in PostgreSQL, blobs in S3 (Bucketeer)",
        "stack": "heroku-24",
        "buildpacks": [{"url": "heroku/python"}],
        "formation": {"web": {"quantity": 1, "size": "basic"}},
        "addons": [
            {"plan": "heroku-postgresql:essential-0", "as": "DATABASE"},
            {"plan": BUCKETEER_PLAN, "as": "BUCKETEER"},
        ],
        "env": {
            "JWT_SECRET": {"description": "HS256 signing secret for JWTs", "generator": "secret"},
            "API_KEYS": {
                "description": "Optional bootstrap API keys (key:tenants:scopes, comma-separated)",
                "required": False,
            },
            # Nothing durable lives here: metadata is in PostgreSQL, blobs in S3.
            "JUSTSTORAGE_DATA_DIR": {"value": "/tmp/juststorage"},
            "JUSTSTORAGE_WORKERS": {"value": "2"},
            # /metrics off the public router (operator data, SPEC §2).
            "JUSTSTORAGE_METRICS_ADDR": {"value": "127.0.0.1:9091"},
        },
    }


def _profile() -> str:
    missing = f"the Bucketeer add-on is missing: heroku addons:create {BUCKETEER_PLAN}"
    lines = [f': "${{BUCKETEER_BUCKET_NAME:?{missing}}}"\n']
    lines += [f'export {name}="{value}"\n' for name, value in _S3_EXPORTS.items()]
    notes = [
        "Heroku runs this in bash before every dyno's command: the storage roots and S3",
        "credentials the server reads, from the config vars of the Bucketeer add-on.",
    ]
    return header(__name__, notes) + "".join(lines)


def first_credential(options: DeployOptions) -> list[str]:
    """The command that prints the first admin API key."""
    return [f"heroku run --app {options.app_name} -- juststorage {KEYS_CREATE}"]


def setup(options: DeployOptions) -> list[str]:
    """How to create the app in the chosen region (app.json cannot name one)."""
    region = options.region or DEFAULT_REGION
    return [f"heroku create {options.app_name} --region {region} --manifest"]


def files(options: DeployOptions) -> dict[str, str]:
    """app.json, the Procfile, .profile, and what the Python buildpack reads."""
    return {
        "app.json": json_text(_app(options.app_name)),
        "Procfile": "".join(f"{kind}: {command}\n" for kind, command in _PROCESSES.items()),
        ".profile": _profile(),
        ".python-version": "3.11\n",
        "requirements.txt": "# The buildpack installs JustStorage from this checkout.\n.\n",
    }
