"""nginx in front of a test server, configured by the repository's deploy/nginx/juststorage.conf.

The master runs in the foreground as our child and is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from juststorage.testing import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]
CONF_TEMPLATE = REPO / "deploy" / "nginx" / "juststorage.conf"
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Nginx:
    port: int
    error_log: Path
    access_log: Path  # a line per request: "<request uri> <uri served> <status> <bytes>"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def render_conf(*, listen: str, upstream: str, hot_root: Path, cold_root: Path) -> str:
    """deploy/nginx/juststorage.conf with its placeholders filled in."""
    text = CONF_TEMPLATE.read_text("utf-8")
    for name, value in (
        ("LISTEN", listen),
        ("UPSTREAM", upstream),
        ("HOT_ROOT", str(hot_root)),
        ("COLD_ROOT", str(cold_root)),
    ):
        text = text.replace(f"@{name}@", value)
    assert "@" not in text, "a placeholder was left unfilled"
    return text


@contextlib.contextmanager
def running_nginx(nginx: str, root: Path, *, upstream: str, data_dir: Path) -> Iterator[Nginx]:
    """nginx on a free 127.0.0.1 port proxying to `upstream`, whose storage roots are
    the default ones under `data_dir`, until the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    site = root / "juststorage.conf"
    site.write_text(
        render_conf(
            listen=f"127.0.0.1:{port}",
            upstream=upstream,
            hot_root=data_dir.absolute() / "hot",
            cold_root=data_dir.absolute() / "cold",
        ),
        "utf-8",
    )
    main = root / "nginx.conf"
    temp = {name: root / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # test data dirs are private to us
    main.write_text(
        f"{user}worker_processes 1;\ndaemon off;\npid {root / 'nginx.pid'};\n"
        f"error_log {root / 'error.log'} warn;\nevents {{ worker_connections 256; }}\n"
        "http {\n    log_format served '$request_uri $uri $status $body_bytes_sent';\n"
        f"    access_log {root / 'access.log'} served;\n"
        "    default_type application/octet-stream;\n"
        f"    client_body_temp_path {temp['body']};\n    proxy_temp_path {temp['proxy']};\n"
        f"    fastcgi_temp_path {temp['fastcgi']};\n    uwsgi_temp_path {temp['uwsgi']};\n"
        f"    scgi_temp_path {temp['scgi']};\n    include {site};\n}}\n",
        "utf-8",
    )
    with (root / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [nginx, "-p", str(root), "-c", str(main)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    proxy = Nginx(port, root / "error.log", root / "access.log")
    try:
        if not wait_until(lambda: _answers(proxy) or process.poll() is not None, START_TIMEOUT_S):
            raise RuntimeError("nginx did not start")
        if process.poll() is not None:
            raise RuntimeError((root / "stderr.log").read_text("utf-8", errors="replace"))
        yield proxy
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                process.wait(timeout=START_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _answers(proxy: Nginx) -> bool:
    try:
        httpx.get(proxy.url + "/health", timeout=1.0, trust_env=False)
    except httpx.HTTPError:
        return False
    return True
