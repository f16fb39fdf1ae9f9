"""Fly.io: `fly.toml` with a volume for the blobs and SQLite, and a readiness check.

Secrets: `fly secrets set JWT_SECRET=... [DATABASE_URL=postgres://...] [API_KEYS=...]`.
"""

from __future__ import annotations

from juststorage.deploy.options import DeployOptions

_FLY_TOML = """\
# Fly.io: `fly launch --no-deploy --copy-config`, then
#   fly volumes create juststorage_data --region {region} --size 10
#   fly secrets set JWT_SECRET="$(openssl rand -hex 32)"
#   fly deploy
# Without DATABASE_URL the metadata is SQLite on the volume (one machine only);
# for several machines set DATABASE_URL to a PostgreSQL database (fly secrets set).
app = "{app}"
primary_region = "{region}"
kill_signal = "SIGTERM"
kill_timeout = "60s"

[build]
  dockerfile = "Dockerfile"

[env]
  JUSTSTORAGE_HOST = "0.0.0.0"
  JUSTSTORAGE_PORT = "8080"
  JUSTSTORAGE_DATA_DIR = "/data/meta"
  JUSTSTORAGE_HOT_ROOT = "/data/hot"
  JUSTSTORAGE_COLD_ROOT = "/data/cold"
  # /metrics only on Fly's private network, where Fly scrapes it (SPEC §2).
  JUSTSTORAGE_METRICS_ADDR = "0.0.0.0:9091"

[[mounts]]
  source = "juststorage_data"
  destination = "/data"

[http_service]
  internal_port = 8080
  force_https = true
  auto_stop_machines = "off"
  auto_start_machines = true
  min_machines_running = 1

  [[http_service.checks]]
    grace_period = "10s"
    interval = "15s"
    method = "GET"
    path = "/ready"
    timeout = "5s"

[metrics]
  port = 9091
  path = "/metrics"
"""


def files(options: DeployOptions) -> dict[str, str]:
    return {"fly.toml": _FLY_TOML.format(app=options.app_name, region=options.region or "iad")}
