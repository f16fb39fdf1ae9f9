"""How a command that opens the store itself gets its Settings and Services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import click

from juststorage.bootstrap import Services, build
from juststorage.cli.errors import BadUsage
from juststorage.config import Settings, load_settings

T = TypeVar("T")


def settings_of(ctx: click.Context) -> Settings:
    """The settings: environment, over the `--config` file of the `juststorage` group.

    Raises:
        SettingsError: a value cannot be used (exit status 2).
    """
    config: Path | None = ctx.find_root().params.get("config")
    return load_settings(config_file=config)


def run_with_services(
    ctx: click.Context,
    work: Callable[[Services], Awaitable[T]],
    *,
    prepare: bool = True,
    create: bool = False,
) -> T:
    """Build Services, run one coroutine on them, close them.

    Unless `create` (only `migrate` creates a store, besides `serve`), the store must
    exist. With `prepare` (the default) the schema is brought up to date and the
    storage roots made ready first, as the server does at start.

    Raises:
        BadUsage: there is no store where the settings point.
    """
    settings = settings_of(ctx)

    async def main() -> T:
        services = build(settings, long_statements=True)
        try:
            if not create:
                await require_store(services)
            if prepare:
                await services.metadata.migrate()
                await services.blobs.prepare()
            return await work(services)
        finally:
            await services.metadata.close()

    return asyncio.run(main())


async def require_store(services: Services) -> None:
    """Raises BadUsage, naming the database looked for, unless the store exists.

    A command that opened a new, empty store where the settings point by mistake
    would print answers about it (no keys, nothing to collect) or keys the running
    server never sees.
    """
    if await services.metadata.has_schema():
        return
    raise BadUsage(
        f"no store in {describe_database(services.settings.effective_database_url)}:"
        " only `serve` and `migrate` create one; point at the server's store with"
        " --config FILE, JUSTSTORAGE_DATA_DIR or DATABASE_URL"
    )


def describe_database(url: str) -> str:
    """The database a URL names, without credentials."""
    if url.startswith("sqlite:///"):
        return f"the SQLite database {Path(url.removeprefix('sqlite:///')).resolve()}"
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "(the user's default)"
    return f"the PostgreSQL database {name} on {parts.hostname or 'localhost'}:{parts.port or 5432}"
