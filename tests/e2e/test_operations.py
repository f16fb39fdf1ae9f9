"""/health, /ready, /metrics and aborted uploads against the real server (SPEC §2, §5)."""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from juststorage.testing import Server, StartServer, free_port, wait_until

from .support import (
    assert_error,
    blob_file,
    by_key_path,
    sha256_hex,
    temp_files,
    unique_name,
    upload,
)

pytestmark = pytest.mark.e2e

OBJECTS_GAUGE = "just_storage_objects_total"
SPEC_METRICS = [
    "just_storage_requests_total",
    "just_storage_request_duration_seconds",
    OBJECTS_GAUGE,
    "just_storage_storage_bytes",
    "just_storage_gc_runs_total",
    "just_storage_gc_deleted_blobs_total",
]


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server()


@pytest.fixture(scope="module")
def files_server(start_server: StartServer) -> Server:
    """The same settings with inlining off (threshold 0): for the tests that look at
    blob files and temp files (the default `server` keeps small blobs inline)."""
    return start_server(JUSTSTORAGE_INLINE_MAX_BYTES="0")


@pytest.fixture
def files_auth(files_server: Server) -> dict[str, str]:
    return files_server.admin_headers()


def test_health_needs_no_credentials(server: Server) -> None:
    response = server.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


@pytest.mark.filesystem_layout
def test_ready_reports_every_check(server: Server) -> None:
    response = server.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "hot": "ok", "cold": "ok"},
    }
    assert temp_files(server.data_dir / "hot") == []
    assert list((server.data_dir / "hot" / "tmp").iterdir()) == []  # the probe is removed


@pytest.fixture
def broken_cold_root(server: Server) -> Iterator[Path]:
    """<cold root>/tmp replaced by a regular file (chmod is no obstacle to root)."""
    tmp = server.data_dir / "cold" / "tmp"
    shutil.rmtree(tmp)
    tmp.write_bytes(b"not a directory")
    try:
        yield tmp
    finally:
        tmp.unlink()
        tmp.mkdir()


@pytest.mark.filesystem_layout
def test_ready_is_503_when_a_storage_root_is_not_writable(
    server: Server, broken_cold_root: Path
) -> None:
    response = server.client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["hot"] == "ok"
    assert body["checks"]["cold"] != "ok" and isinstance(body["checks"]["cold"], str)
    assert server.client.get("/health").status_code == 200  # liveness is unaffected
    auth = server.admin_headers()
    tenant = unique_name()
    assert upload(server.client, auth, tenant, "n", "hot-still-works", b"x").status_code == 201
    # Over the default inline threshold: it needs the cold root (a small one would not).
    body = b"x" * (64 * 1024 + 1)
    cold = upload(server.client, auth, tenant, "n", "cold", body, X_Storage_Class="cold")
    assert cold.status_code >= 500
    assert cold.headers["content-type"].startswith("application/json")
    assert "Traceback" not in cold.text
    assert server.client.get(by_key_path("n", tenant, "cold"), headers=auth).status_code == 404


def test_ready_recovers_when_the_root_is_restored(server: Server) -> None:
    assert server.client.get("/ready").status_code == 200


def _sample_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def test_metrics_has_the_spec_names(server: Server) -> None:
    auth = server.admin_headers()
    tenant = unique_name()
    upload(server.client, auth, tenant, "metricsns", "k", b"counted")
    server.client.get(by_key_path("metricsns", tenant, "k"), headers=auth)
    response = server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    samples = _sample_names(text)
    for name in SPEC_METRICS:
        if name != OBJECTS_GAUGE:  # see test_objects_gauge_has_the_spec_name
            assert name in samples or f"{name}_bucket" in samples, f"{name} missing"
    assert re.search(
        r'^just_storage_requests_total\{(?=[^}]*method="GET")(?=[^}]*status="200")'
        r'(?=[^}]*namespace="metricsns")[^}]*\} [1-9]',
        text,
        flags=re.MULTILINE,
    ), "request counter lacks method/status/namespace labels"
    assert re.search(
        r'^just_storage_request_duration_seconds_bucket\{(?=[^}]*method="POST")'
        r'(?=[^}]*namespace="metricsns")',
        text,
        flags=re.MULTILINE,
    )
    assert re.search(
        rf'^just_storage_objects(?:_total)?\{{(?=[^}}]*tenant="{tenant}")'
        r'(?=[^}]*namespace="metricsns")'
        r'(?=[^}]*status="COMMITTED")[^}]*\} 1(\.0)?$',
        text,
        flags=re.MULTILINE,
    ), "objects gauge lacks namespace/tenant/status"
    assert re.search(r'^just_storage_storage_bytes\{[^}]*storage_class="hot"', text, re.MULTILINE)
    # A labelled counter appears with its first sample: throttled requests are
    # checked in tests/e2e/test_metrics_multiprocess.py, which causes some.
    for extra in ("uploaded_bytes", "downloaded_bytes", "dedup_hits"):
        assert f"just_storage_{extra}" in text


def test_objects_gauge_has_the_spec_name(server: Server) -> None:
    upload(server.client, server.admin_headers(), unique_name(), "n", "k", b"x")
    assert OBJECTS_GAUGE in _sample_names(server.client.get("/metrics").text)


def test_metrics_needs_no_credentials_and_leaks_no_keys(server: Server) -> None:
    text = server.client.get("/metrics").text
    assert server.admin_key not in text


def test_metrics_addr_moves_metrics_off_the_main_listener(start_server: StartServer) -> None:
    metrics_port = free_port()
    server = start_server(JUSTSTORAGE_METRICS_ADDR=f"127.0.0.1:{metrics_port}")
    assert_error(server.client.get("/metrics"), 404, "NotFound")
    assert server.client.get("/health").status_code == 200
    with httpx.Client(timeout=5.0, trust_env=False) as client:

        def scrape() -> httpx.Response | None:
            try:
                return client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            except httpx.TransportError:
                return None

        assert wait_until(lambda: scrape() is not None, timeout=10), "no metrics listener"
        response = scrape()
        assert response is not None and response.status_code == 200
        assert "just_storage_requests_total" in response.text


@pytest.mark.filesystem_layout
def test_aborted_upload_leaves_nothing_behind(files_server: Server) -> None:
    tenant = unique_name()
    declared = 4 * 1024 * 1024  # half of it is over one write chunk: the temp file exists
    head = (
        "POST /v1/objects HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{files_server.port}\r\n"
        f"Authorization: Bearer {files_server.admin_key}\r\n"
        f"X-Tenant: {tenant}\r\nX-Namespace: n\r\nX-Key: aborted\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection(("127.0.0.1", files_server.port), timeout=60) as sock:
        sock.sendall(head)
        sock.sendall(b"a" * (declared // 2))
        # The files_server is staging the body in <root>/tmp when the client vanishes.
        assert wait_until(lambda: bool(temp_files(files_server.data_dir / "hot")), timeout=30)
        time.sleep(0.1)
    files_auth = files_server.admin_headers()
    assert wait_until(lambda: not temp_files(files_server.data_dir / "hot"), timeout=30), (
        temp_files(files_server.data_dir / "hot")
    )
    assert (
        files_server.client.get(by_key_path("n", tenant, "aborted"), headers=files_auth).status_code
        == 404
    )
    listed = files_server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": "n", "versions": "true"},
        headers=files_auth,
    )
    assert listed.json()["items"] == []
    usage = files_server.client.get(
        "/v1/usage", params={"tenant": tenant}, headers=files_auth
    ).json()
    assert usage["objects"] == 0
    half = b"a" * (declared // 2)
    assert not blob_file(files_server.data_dir / "hot", sha256_hex(half)).exists()
    # The files_server still serves afterwards.
    assert upload(files_server.client, files_auth, tenant, "n", "after", b"fine").status_code == 201


@pytest.mark.filesystem_layout
def test_short_body_with_content_length_is_not_stored(files_server: Server) -> None:
    """The client half-closes after too few bytes: nothing may become visible."""
    tenant = unique_name()
    head = (
        "POST /v1/objects HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{files_server.port}\r\n"
        f"Authorization: Bearer {files_server.admin_key}\r\n"
        f"X-Tenant: {tenant}\r\nX-Namespace: n\r\nX-Key: short\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection(("127.0.0.1", files_server.port), timeout=5) as sock:
        sock.sendall(head + b"x" * 10)
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            reply = sock.recv(65536)
        except (TimeoutError, ConnectionError):
            reply = b""
    assert not reply.startswith(b"HTTP/1.1 201"), reply
    files_auth = files_server.admin_headers()
    assert (
        files_server.client.get(by_key_path("n", tenant, "short"), headers=files_auth).status_code
        == 404
    )
    assert wait_until(lambda: not temp_files(files_server.data_dir / "hot"), timeout=10)
