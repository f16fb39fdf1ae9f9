"""juststorage-client on the oldest Python it supports (requires-python), for real.

The package is built and installed (not editable) into a fresh virtual environment
of that interpreter, which then runs the SDK against a live HTTPS server: both
clients, multipart uploads and ranged downloads in parallel, the CA-file option.
Locally the test skips when no such interpreter is installed; in CI it fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from juststorage.testing import Server
from support.private_ca import PrivateCA, make_private_ca, start_https

pytestmark = pytest.mark.e2e

SDK = Path(__file__).resolve().parents[2] / "sdks" / "python"

SCRIPT = r"""
import asyncio
import os
import sys

import juststorage_client as js

url, token, ca, work = sys.argv[1:5]
MiB = 1024 * 1024
big = os.path.join(work, "big.bin")
with open(big, "wb") as f:
    f.write(os.urandom(11 * MiB + 17))  # three parts: the server's least is 5 MiB
with open(big, "rb") as f:
    content = f.read()

with js.Client(url, token, ca_cert=ca) as c:
    info = c.upload(b"hello", tenant="acme", namespace="old", key="a.txt", if_none_match="*")
    assert c.download(tenant="acme", id=info.id) == b"hello"
    assert c.download(tenant="acme", namespace="old", key="a.txt", byte_range=(1, None)) == b"ello"
    c.upload_file(big, tenant="acme", namespace="old", key="big", multipart_threshold=MiB,
                  part_bytes=5 * MiB, parallel=3, state_dir=os.path.join(work, "state"))
    c.download_to_file(os.path.join(work, "sync.bin"), tenant="acme", namespace="old", key="big",
                       parallel_threshold=MiB, range_bytes=4 * MiB, parallel=3,
                       state_dir=os.path.join(work, "state"))
    assert open(os.path.join(work, "sync.bin"), "rb").read() == content
    assert sorted(o.key for o in c.list(tenant="acme", namespace="old")) == ["a.txt", "big"]
    try:
        c.head(tenant="acme", namespace="old", key="missing")
        raise AssertionError("no NotFound")
    except js.NotFound as e:
        assert e.status == 404


async def main():
    async with js.AsyncClient(url, token, ca_cert=ca) as c:
        await c.upload_file(big, tenant="acme", namespace="old", key="big-async",
                            multipart_threshold=MiB, part_bytes=5 * MiB, parallel=3,
                            state_dir=os.path.join(work, "state"))
        await c.download_to_file(os.path.join(work, "async.bin"), tenant="acme",
                                 namespace="old", key="big-async", parallel_threshold=MiB,
                                 range_bytes=4 * MiB, parallel=3,
                                 state_dir=os.path.join(work, "state"))
        keys = [o.key async for o in c.list(tenant="acme", namespace="old")]
        assert sorted(keys) == ["a.txt", "big", "big-async"], keys
        await c.delete(tenant="acme", namespace="old", key="a.txt")


asyncio.run(main())
assert open(os.path.join(work, "async.bin"), "rb").read() == content
print("ok", "%d.%d" % sys.version_info[:2])
"""


def _minimum() -> tuple[int, int]:
    spec = tomllib.loads((SDK / "pyproject.toml").read_text("utf-8"))["project"]
    text = spec["requires-python"].removeprefix(">=")
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def _dotted(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


def _interpreter(version: tuple[int, int]) -> str | None:
    """An installed python of exactly `version`: on PATH, or one pyenv built."""
    name = f"python{version[0]}.{version[1]}"
    found = shutil.which(name)
    candidates = [found] if found else []
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv}/versions/{version[0]}.{version[1]}.*/bin/{name}"))
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == _dotted(version):
            return candidate
    return None


@pytest.fixture(scope="module")
def oldest_python() -> str:
    version = _minimum()
    python = _interpreter(version)
    if python is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Python {_dotted(version)} to test juststorage-client on")
        pytest.skip(f"no Python {_dotted(version)} installed (pyenv install {_dotted(version)})")
    return python


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, PrivateCA]]:
    ca = make_private_ca(tmp_path_factory.mktemp("ca"))
    server = start_https(tmp_path_factory.mktemp("https"), ca)
    yield server, ca
    server.stop()


def test_the_sdk_installs_and_works_on_the_oldest_supported_python(
    oldest_python: str, server: tuple[Server, PrivateCA], tmp_path: Path
) -> None:
    https, ca = server
    venv = tmp_path / "venv"
    subprocess.run([oldest_python, "-m", "venv", str(venv)], check=True, timeout=120)
    # A copy: building in place would leave build/ and *.egg-info in the repository.
    source = shutil.copytree(
        SDK, tmp_path / "sdk", ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    install = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SSL_CERT", "PYTHON"))}
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", SCRIPT, https.url, https.admin_key]
        + [str(ca.ca_cert), str(work)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", _dotted(_minimum())], result.stdout
    assert sys.version_info[:2] > _minimum()  # this process is not the one being tested
