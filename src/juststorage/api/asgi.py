"""The ASGI entry point for servers: `juststorage.api.asgi:app_from_environment` (a factory)."""

from __future__ import annotations

from starlette.applications import Starlette

from juststorage.api.app import create_app
from juststorage.bootstrap import build
from juststorage.config import load_settings
from juststorage.logs import configure_logging


def app_from_environment() -> Starlette:
    """Build the app from the environment (and `JUSTSTORAGE_CONFIG`), in each worker."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(build(settings))
