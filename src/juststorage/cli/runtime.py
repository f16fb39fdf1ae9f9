"""How a command that opens the store itself gets its Settings and Services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from juststorage.bootstrap import Services, build
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
    ctx: click.Context, work: Callable[[Services], Awaitable[T]], *, prepare: bool = True
) -> T:
    """Build Services, run one coroutine on them, close them.

    With `prepare` (the default) the schema is brought up to date and the storage
    roots made ready first, as the server does at start.
    """
    settings = settings_of(ctx)

    async def main() -> T:
        services = build(settings)
        try:
            if prepare:
                await services.metadata.migrate()
                await services.blobs.prepare()
            return await work(services)
        finally:
            await services.metadata.close()

    return asyncio.run(main())
