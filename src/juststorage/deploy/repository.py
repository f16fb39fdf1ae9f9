"""The generated files this repository keeps a copy of, and the command that
rewrites them.

docker-compose.yml, .env.example, deploy/prometheus, deploy/grafana and
deploy/kubernetes are the output of `juststorage deploy generate` with the
default options: the platform modules are the source, the copies are there so
that a checkout runs `docker compose up` or `kubectl apply -k` as it is.
`make deploy-files` (`python -m juststorage.deploy.repository`) rewrites them,
and tests/deploy/test_repo_files.py fails while a copy differs.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from juststorage.deploy.generate import generate, write_files
from juststorage.deploy.options import DeployOptions

# platform -> the directory, from the repository's root, that holds its files
COPIES: Mapping[str, str] = {"compose": ".", "kubernetes": "deploy/kubernetes"}


def repository_files() -> dict[str, str]:
    """Every generated file the repository keeps, by its path from the root."""
    files: dict[str, str] = {}
    for platform, where in COPIES.items():
        for relative, text in generate(platform, DeployOptions()).items():
            files[str(PurePosixPath(where) / relative)] = text
    return files


def main(argv: list[str]) -> int:
    """Rewrite the copies under the repository root `argv[0]` (default: the current
    directory), which must be a JustStorage checkout."""
    root = Path(argv[0]) if argv else Path.cwd()
    if not (root / "src" / "juststorage" / "deploy").is_dir():
        print(f"{root} is not a JustStorage checkout", file=sys.stderr)
        return 2
    for path in write_files(repository_files(), root, force=True):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
