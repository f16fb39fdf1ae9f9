"""The image's entry command and HEALTHCHECK, run outside a container (there is no
container runtime here), as root as the image starts: the Dockerfile's ENV,
ENTRYPOINT and CMD start a server (as the service user)
that answers the HEALTHCHECK's own command, and serves /metrics (operator data,
SPEC §2) on the exposed metrics port, never on the public one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from juststorage.testing import clean_env, free_port, wait_until
from support.users import NOBODY

pytestmark = pytest.mark.e2e


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:  # not listening (yet)
        return 0


def test_entry_command_serves_metrics_apart_and_passes_the_healthcheck(
    repo: Path, shared_tmp: Path, nobody_bin: Path
) -> None:
    tmp_path = shared_tmp
    parser = DockerfileParser(path=str(repo / "Dockerfile"))
    final = parser.structure[
        max(i for i, ins in enumerate(parser.structure) if ins["instruction"] == "FROM") :
    ]

    def value(kind: str) -> str:
        return str(next(i["value"] for i in final if i["instruction"] == kind))

    image_env = {k: v.replace("/data", str(tmp_path / "data")) for k, v in parser.envs.items()}
    image_env.pop("PATH", None)
    # The image's public address takes no /metrics: a separate listener on an exposed port.
    metrics_host, _, image_metrics_port = image_env.get("JUSTSTORAGE_METRICS_ADDR", "").rpartition(
        ":"
    )
    exposed = value("EXPOSE").split()
    assert metrics_host == "0.0.0.0" and image_metrics_port in exposed, (metrics_host, exposed)
    assert image_env["JUSTSTORAGE_PORT"] in exposed
    port, metrics_port = str(free_port()), free_port()
    # Same settings as in the image; only the addresses stay on 127.0.0.1 for the test.
    env = clean_env(
        tmp_path / "data",
        {
            **image_env,
            "JUSTSTORAGE_HOST": "127.0.0.1",
            "JUSTSTORAGE_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
            # The entry point's service user: one that exists here (the image's is 10001).
            "JUSTSTORAGE_RUN_AS": f"{NOBODY}:{NOBODY}",
        },
    )
    env["JUSTSTORAGE_PORT"] = port
    env["PATH"] = f"{nobody_bin}{os.pathsep}{env.get('PATH', '')}"
    command = json.loads(value("ENTRYPOINT")) + json.loads(value("CMD"))
    healthcheck = value("HEALTHCHECK")
    probe = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert probe[0] == "python"
    probe[0] = sys.executable
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def healthy() -> bool:
            return subprocess.run(probe, env=env, capture_output=True, timeout=10).returncode == 0

        assert wait_until(healthy, timeout=20), (tmp_path / "server.log").read_text()
        for root in ("hot", "cold", "meta"):
            # the image's volumes are used, by the service user
            assert (tmp_path / "data" / root).stat().st_uid == NOBODY
        assert _status(f"http://127.0.0.1:{port}/metrics") == 404
        assert wait_until(
            lambda: _status(f"http://127.0.0.1:{metrics_port}/metrics") == 200, timeout=10
        )
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
    assert shlex.join(command) == "juststorage-entrypoint serve"
