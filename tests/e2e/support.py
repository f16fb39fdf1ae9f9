"""Assertions, names and raw-socket HTTP shared by the end-to-end tests."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .prometheus_text import parse_samples, value


def unique_name(prefix: str = "t") -> str:
    """A fresh tenant or namespace name, so tests on one server do not see each other."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def by_key_path(namespace: str, tenant: str, key: str, *, safe: str = "/") -> str:
    return f"/v1/objects/by-key/{namespace}/{tenant}/{quote(key, safe=safe)}"


def blob_file(root: Path, digest_hex: str) -> Path:
    """SPEC §5: `<class root>/sha256/<hh>/<hh>/<64 hex>`."""
    return root / "sha256" / digest_hex[:2] / digest_hex[2:4] / digest_hex


def temp_files(root: Path) -> list[Path]:
    """Upload temp files left in `<root>/tmp` (readiness probes excluded)."""
    return [p for p in (root / "tmp").iterdir() if not p.name.startswith(".probe-")]


def upload(
    client: httpx.Client,
    auth: Mapping[str, str],
    tenant: str,
    namespace: str,
    key: str | bytes,
    data: bytes = b"hello",
    **headers: str,
) -> httpx.Response:
    """POST /v1/objects; `key` as str is sent as raw UTF-8 header bytes."""
    raw_key = key.encode("utf-8") if isinstance(key, str) else key
    all_headers: dict[str, str | bytes] = {
        **auth,
        "X-Tenant": tenant,
        "X-Namespace": namespace,
        "X-Key": raw_key,
    }
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.post("/v1/objects", headers=all_headers, content=data)


def checksum_mismatches(client: httpx.Client) -> dict[str, float]:
    """{source: count} of `just_storage_checksum_mismatches_total` in a scrape of
    /metrics (served by the test servers on their own port)."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = parse_samples(response.text)
    name = "just_storage_checksum_mismatches_total"
    return {source: value(samples, name, source=source) for source in ("upload", "stored")}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """SPEC §2 Errors: JSON body with code/message/request_id equal to X-Request-Id."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "request_id"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] and error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return dict(error)


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read one HTTP/1.1 response (status, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_response(sock, timeout)


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response from `sock` (status, lower-cased headers, body)."""
    buffer = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buffer:
        if time.monotonic() > deadline:
            raise TimeoutError("no response head")
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    head, _, body = buffer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        if time.monotonic() > deadline:
            raise TimeoutError("short response body")
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body[:length]
