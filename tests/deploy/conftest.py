"""Fixtures for the deployment files: the repository root, `promtool`, and programs
another user can run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.debian_tools import debian_tool
from support.users import as_nobody

REPO = Path(__file__).resolve().parents[2]
_SCRIPTS = {
    "juststorage": "juststorage.cli.main",
    "juststorage-entrypoint": "juststorage.deploy.entrypoint",
}


@pytest.fixture(scope="session")
def promtool() -> str:
    """The path of promtool, from Debian's prometheus (skips locally without it; fails in CI)."""
    return debian_tool("promtool", "prometheus")


@pytest.fixture
def repo() -> Path:
    return REPO


def _unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def _runs_as_nobody(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import juststorage.cli.main"],
            preexec_fn=as_nobody,
            capture_output=True,
            timeout=60,
        )
    except PermissionError:  # the interpreter itself cannot be reached
        return False
    return done.returncode == 0


@pytest.fixture(scope="session")
def nobody_bin() -> Iterator[Path]:
    """A directory with `juststorage` and `juststorage-entrypoint` that uid `nobody` can
    run, as the image's /opt/juststorage/bin is for uid 10001 (needs root).

    This virtualenv's own Python may sit where other users cannot read (a pyenv
    under /root, mode 0700); then the scripts run Debian's python3 of the same
    version over this virtualenv's packages.
    """
    if os.geteuid() != 0:
        _unavailable("dropping to another user needs root")
    if _runs_as_nobody(sys.executable):
        yield Path(sys.executable).parent
        return
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(version, path="/usr/bin")
    if system_python is None:
        _unavailable(f"this Python is unreadable by other users and /usr/bin has no {version}")
    parent = Path(tempfile.mkdtemp(prefix="js-nobody-venv-"))
    try:
        venv = parent / "venv"
        subprocess.run([system_python, "-m", "venv", "--without-pip", str(venv)], check=True)
        site_packages = Path(sysconfig.get_paths()["purelib"])
        (venv / "lib" / version / "site-packages" / "juststorage-tests.pth").write_text(
            f"import site; site.addsitedir({str(site_packages)!r})\n"
        )
        for name, module in _SCRIPTS.items():
            script = venv / "bin" / name
            script.write_text(
                f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom {module} import main\n"
                "sys.exit(main())\n"
            )
            script.chmod(0o755)
        subprocess.run(["chmod", "-R", "a+rX", str(parent)], check=True)
        if not _runs_as_nobody(str(venv / "bin" / "python")):
            _unavailable(f"{system_python} cannot import this virtualenv's packages as nobody")
        yield venv / "bin"
    finally:
        shutil.rmtree(parent)


@pytest.fixture
def shared_tmp(nobody_bin: Path) -> Iterator[Path]:
    """A root-owned temporary directory every user may traverse (pytest's own are
    root's only)."""
    parent = Path(tempfile.mkdtemp(prefix="js-deploy-"))
    parent.chmod(0o755)
    try:
        yield parent
    finally:
        shutil.rmtree(parent)
