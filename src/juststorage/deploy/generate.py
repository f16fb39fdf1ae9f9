"""The platform table and the one writer every platform's files go through.

Each platform module has `files(options) -> {relative path: text}`. Secrets are
never in that text: a file names the secret (an environment variable the
platform fills from its secret store, or a value the platform generates) and
docs/deployment.md says where to set it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from juststorage.deploy import (
    caprover,
    compose,
    digitalocean,
    flyio,
    heroku,
    kubernetes,
    railway,
    render,
)
from juststorage.deploy.options import DeployError, DeployOptions


def _no_setup(options: DeployOptions) -> list[str]:
    return []


@dataclass(frozen=True, slots=True)
class Platform:
    files: Callable[[DeployOptions], dict[str, str]]
    # the commands (or where to run them) that print the first admin API key
    first_credential: Callable[[DeployOptions], list[str]]
    # the regions `--region` may name; empty: the platform's files take none
    regions: tuple[str, ...] = ()
    # steps the files cannot hold, printed before the first credential
    setup: Callable[[DeployOptions], list[str]] = _no_setup

    @property
    def uses_region(self) -> bool:
        return bool(self.regions)


PLATFORMS: Mapping[str, Platform] = {
    "caprover": Platform(caprover.files, caprover.first_credential),
    "heroku": Platform(heroku.files, heroku.first_credential, heroku.REGIONS, heroku.setup),
    "flyio": Platform(flyio.files, flyio.first_credential, flyio.REGIONS),
    "railway": Platform(railway.files, railway.first_credential),
    "render": Platform(render.files, render.first_credential, render.REGIONS),
    "digitalocean": Platform(
        digitalocean.files, digitalocean.first_credential, digitalocean.REGIONS
    ),
    "compose": Platform(compose.files, compose.first_credential),
    "kubernetes": Platform(kubernetes.files, kubernetes.first_credential),
}


def _entry(platform: str, options: DeployOptions) -> Platform:
    entry = PLATFORMS.get(platform)
    if entry is None:
        known = ", ".join(PLATFORMS)
        raise DeployError(f"unknown platform {platform!r}; known platforms: {known}")
    if options.region is not None and entry.regions and options.region not in entry.regions:
        raise DeployError(
            f"unknown {platform} region {options.region!r}; valid regions: "
            + ", ".join(entry.regions)
        )
    return entry


def generate(platform: str, options: DeployOptions) -> dict[str, str]:
    """The files of `platform`, by path relative to the output directory.

    Raises:
        DeployError: the platform is unknown (the message lists the known ones), or
            the region is not one of the platform's (the message lists them).
    """
    return _entry(platform, options).files(options)


def next_steps(platform: str, options: DeployOptions) -> list[str]:
    """What to do after writing the files, ending with how to get the first credential.

    Raises:
        DeployError: as `generate`.
    """
    entry = _entry(platform, options)
    steps = [f"next: {line}" for line in entry.setup(options)]
    steps.append("first credential (an admin API key, printed once) once the service is up:")
    steps += [f"  {line}" for line in entry.first_credential(options)]
    return steps


def write_files(files: Mapping[str, str], output: Path, *, force: bool = False) -> list[Path]:
    """Write every file under `output`; with an existing file and no `force`, write none.

    Raises:
        DeployError: files exist (all are named) or cannot be written.
    """
    targets = {output / relative: text for relative, text in files.items()}
    existing = sorted(str(path) for path in targets if path.exists())
    if existing and not force:
        raise DeployError("not overwriting existing files (use --force): " + ", ".join(existing))
    written = []
    for path, text in targets.items():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = path.with_name(f".{path.name}.tmp")
            temp.write_text(text, encoding="utf-8")
            os.replace(temp, path)
        except OSError as exc:
            raise DeployError(f"cannot write {path}: {exc.strerror}") from None
        written.append(path)
    return written
