"""CapRover: `captain-definition` (build from the Dockerfile) and a one-click-app
template that adds PostgreSQL, the persistent directories and the secrets."""

from __future__ import annotations

import json

from juststorage.deploy.options import DeployOptions

_ONE_CLICK = """\
# CapRover one-click app: Apps > One-Click Apps/Databases > TEMPLATE, paste this file.
# Secrets are asked for at install time ($$cap_ variables); none are stored here.
captainVersion: 4
services:
  $$cap_appname-db:
    image: postgres:16-alpine
    volumes:
      - $$cap_appname-db-data:/var/lib/postgresql/data
    restart: always
    environment:
      POSTGRES_DB: juststorage
      POSTGRES_USER: juststorage
      POSTGRES_PASSWORD: $$cap_pg_password
    caproverExtra:
      notExposeAsWebApp: "true"
  $$cap_appname:
    depends_on:
      - $$cap_appname-db
    image: $$cap_image
    restart: always
    volumes:
      - $$cap_appname-hot:/data/hot
      - $$cap_appname-cold:/data/cold
      - $$cap_appname-meta:/data/meta
    environment:
      DATABASE_URL: postgresql://juststorage:$$cap_pg_password@srv-captain--$$cap_appname-db:5432/juststorage
      JWT_SECRET: $$cap_jwt_secret
      API_KEYS: $$cap_api_keys
      JUSTSTORAGE_METRICS_ADDR: 0.0.0.0:9091
    caproverExtra:
      containerHttpPort: "8080"
caproverOneClickApp:
  variables:
    - id: $$cap_appname
      label: App name
      defaultValue: __APP__
      validRegex: /^([a-z0-9-])+$/
    - id: $$cap_image
      label: JustStorage image (built from this repository's Dockerfile)
      defaultValue: juststorage:latest
    - id: $$cap_pg_password
      label: PostgreSQL password
      defaultValue: $$cap_gen_random_hex(32)
    - id: $$cap_jwt_secret
      label: JWT_SECRET (HS256 signing secret)
      defaultValue: $$cap_gen_random_hex(32)
    - id: $$cap_api_keys
      label: API_KEYS (optional bootstrap keys, key:tenants:scopes)
      defaultValue: ""
  instructions:
    start: JustStorage object store with PostgreSQL. Data lives in three persistent directories.
    end: JustStorage is deployed. Its health check is /ready; metrics are at /metrics.
  displayName: JustStorage
  isOfficial: false
  description: Content-addressed internal object storage.
  documentation: See docs/deployment.md in the JustStorage repository.
"""


def files(options: DeployOptions) -> dict[str, str]:
    definition = {"schemaVersion": 2, "dockerfilePath": "./Dockerfile"}
    return {
        "captain-definition": json.dumps(definition, indent=2) + "\n",
        "caprover-one-click-app.yml": _ONE_CLICK.replace("__APP__", options.app_name),
    }
