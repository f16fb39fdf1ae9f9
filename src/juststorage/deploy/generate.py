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


@dataclass(frozen=True, slots=True)
class Platform:
    files: Callable[[DeployOptions], dict[str, str]]
    uses_region: bool


PLATFORMS: Mapping[str, Platform] = {
    "caprover": Platform(caprover.files, uses_region=False),
    "heroku": Platform(heroku.files, uses_region=False),
    "flyio": Platform(flyio.files, uses_region=True),
    "railway": Platform(railway.files, uses_region=False),
    "render": Platform(render.files, uses_region=True),
    "digitalocean": Platform(digitalocean.files, uses_region=True),
    "compose": Platform(compose.files, uses_region=False),
    "kubernetes": Platform(kubernetes.files, uses_region=False),
}


def generate(platform: str, options: DeployOptions) -> dict[str, str]:
    """The files of `platform`, by path relative to the output directory.

    Raises:
        DeployError: the platform is unknown (the message lists the known ones).
    """
    entry = PLATFORMS.get(platform)
    if entry is None:
        known = ", ".join(PLATFORMS)
        raise DeployError(f"unknown platform {platform!r}; known platforms: {known}")
    return entry.files(options)


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
