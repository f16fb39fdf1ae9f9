"""The image's build stage, replayed outside a container (there is no container
runtime here): its COPY and RUN steps, in order, in a scratch directory holding
only what the COPY lines take from the repository, into a fresh virtual
environment. The result must have the object commands: the server's wheel names
juststorage-client, and pip takes it from the wheels the stage built."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

pytestmark = pytest.mark.e2e

_VENV = "/opt/juststorage"
_WHEELS = "/wheels"
_LEFT_OUT = shutil.ignore_patterns(
    "__pycache__", "*.egg-info", "build", "dist", ".mypy_cache", ".ruff_cache"
)


def _build_stage(repo: Path) -> list[dict[str, str]]:
    structure = DockerfileParser(path=str(repo / "Dockerfile")).structure
    froms = [i for i, ins in enumerate(structure) if ins["instruction"] == "FROM"]
    assert len(froms) == 2 and " AS build" in structure[froms[0]]["value"], "two stages"
    return list(structure[froms[0] + 1 : froms[1]])


def _replay(repo: Path, steps: list[dict[str, str]], root: Path) -> Path:
    """Run the stage's steps with its absolute paths moved under `root`."""
    work = root / "src"
    work.mkdir()
    venv = root / "venv"
    for step in steps:
        kind, value = step["instruction"], step["value"]
        if kind == "WORKDIR":
            assert value == "/src"
        elif kind == "COPY":
            *sources, dest = value.split()
            for source in sources:
                origin, target = repo / source, work / dest
                if origin.is_dir():
                    shutil.copytree(origin, target, ignore=_LEFT_OUT)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif kind == "RUN":
            command = value.replace(_VENV, str(venv)).replace(_WHEELS, str(root / "wheels"))
            # The image's `python` is the one this suite runs on; pip may use its cache here.
            command = command.replace("python -m venv", f"{sys.executable} -m venv")
            command = command.replace("--no-cache-dir ", "")
            result = subprocess.run(
                ["bash", "-ec", command], cwd=work, capture_output=True, text=True, timeout=900
            )
            assert result.returncode == 0, f"{command}\n{result.stderr[-4000:]}"
        else:
            assert kind in {"ARG", "LABEL", "ENV", "COMMENT"}, f"cannot replay a {kind} step"
    return venv


def test_build_stage_installs_the_server_with_the_client_it_depends_on(
    repo: Path, tmp_path: Path
) -> None:
    venv = _replay(repo, _build_stage(repo), tmp_path)

    server_wheel = next((tmp_path / "wheels").glob("juststorage-[0-9]*.whl"))
    with zipfile.ZipFile(server_wheel) as wheel:
        name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(wheel.read(name))
    assert any(r.startswith("juststorage-client") for r in metadata.get_all("Requires-Dist", [])), (
        metadata.get_all("Requires-Dist")
    )

    python = str(venv / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import juststorage_client as c; print(c.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(venv)), where.stdout  # installed, not the repository's
    help_text = subprocess.run(
        [str(venv / "bin" / "juststorage"), "put", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_text.returncode == 0 and "--ca-cert" in help_text.stdout, help_text.stderr
    # Without a server the object command fails as a transport error: the SDK is there.
    refused = subprocess.run(
        [str(venv / "bin" / "juststorage"), "usage", "acme", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "JUSTSTORAGE_TOKEN": "x", "HOME": str(tmp_path)},
    )
    assert refused.returncode == 14, refused.stderr
    assert "juststorage-client" not in refused.stderr
