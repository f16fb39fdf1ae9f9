"""`deploy generate`: a platform's deployment files."""

from __future__ import annotations

from pathlib import Path

import click

from juststorage.deploy.generate import PLATFORMS, generate, next_steps, write_files
from juststorage.deploy.options import DeployOptions


@click.group()
def deploy() -> None:
    """Deployment configuration for containers, Kubernetes and PaaS platforms."""


@deploy.command("generate", epilog=f"PLATFORM is one of: {', '.join(PLATFORMS)}.")
@click.argument("platform", type=click.Choice(list(PLATFORMS)), metavar="PLATFORM")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory to write the files into.",
)
@click.option("--app-name", default="juststorage", show_default=True, help="Application name.")
@click.option(
    "--region",
    default=None,
    help="Platform region ("
    + ", ".join(name for name, entry in PLATFORMS.items() if entry.uses_region)
    + "); an unknown one is refused with the list.",
)
@click.option("--force", is_flag=True, help="Overwrite files that exist.")
def deploy_generate(
    platform: str, output: Path, app_name: str, region: str | None, force: bool
) -> None:
    """Write PLATFORM's configuration files; secrets are referenced, never written.

    Then print the remaining steps, the last one how to get the first credential.
    """
    options = DeployOptions(app_name=app_name, region=region)
    if region is not None and not PLATFORMS[platform].uses_region:
        click.echo(f"note: {platform} takes no region in its files; --region ignored", err=True)
    files = generate(platform, options)
    steps = next_steps(platform, options)
    written = write_files(files, output, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    for line in steps:  # the last step: how to get the first credential
        click.echo(line)
