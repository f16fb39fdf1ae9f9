"""The database going away: PostgreSQL behind a proxy the test cuts.

While it is gone `/ready` and writes answer 503 Unavailable (never 500, never a
hang); once it is back the service recovers by itself, with no restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from tcp_cut import CuttableProxy, cuttable_proxy

from juststorage.testing import Server, start

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

KEY = "outage-test-key-0123456789abcdefgh"
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Tenant": "t", "X-Namespace": "n"}


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, f"{user}127.0.0.1:{port}", parts.path, parts.query, ""))


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[CuttableProxy]:
    parts = urlsplit(postgres_url)
    with cuttable_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as running:
        yield running


@pytest.fixture
def server(tmp_path: Path, postgres_url: str, proxy: CuttableProxy) -> Iterator[Server]:
    started = start(
        tmp_path,
        {
            "DATABASE_URL": _through(postgres_url, proxy.port),
            "API_KEYS": f"{KEY}:*:admin",
            "JUSTSTORAGE_GC_INTERVAL_S": "0",
        },
    )
    yield started
    started.stop()


def _upload(server: Server, key: str) -> int:
    response = server.client.post(
        "/v1/objects", headers={**HEADERS, "X-Key": key}, content=b"payload", timeout=60
    )
    if response.status_code >= 400:
        assert response.json()["error"]["code"] in ("Unavailable",), response.text
    return response.status_code


def test_database_outage_gives_503_then_recovers(server: Server, proxy: CuttableProxy) -> None:
    assert server.client.get("/ready").status_code == 200
    assert _upload(server, "before") == 201

    proxy.cut()
    ready = server.client.get("/ready", timeout=60)
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] != "ok"
    assert _upload(server, "during") == 503
    read = server.client.get("/v1/objects/by-key/n/t/before", headers=HEADERS, timeout=60)
    assert read.status_code == 503, read.text

    proxy.restore()
    deadline = time.monotonic() + 30
    while server.client.get("/ready", timeout=60).status_code != 200:
        assert time.monotonic() < deadline, "did not recover within 30 s"
        time.sleep(0.2)
    assert _upload(server, "after") == 201
    read = server.client.get("/v1/objects/by-key/n/t/before", headers=HEADERS)
    assert read.status_code == 200 and read.content == b"payload"
    assert "Traceback" not in server.client.get("/ready").text
