"""What "stored data is unchanged" means, and raw-socket requests for hostile bytes."""

from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from e2e.support import temp_files
from juststorage.testing import Server, wait_until
from support.db_query import query

_OBJECTS_SQL = (
    "SELECT id, tenant_id, namespace, key, content_hash, size_bytes, storage_class, state"
    " FROM objects ORDER BY id"
)


@dataclass(frozen=True)
class StoreState:
    """Every object row and every blob file (path, sha256 of its bytes)."""

    objects: list[tuple[object, ...]]
    blobs: list[tuple[str, str]]


def store_state(server: Server) -> StoreState:
    """The store at rest: waits (bounded) for in-flight uploads to be undone first."""
    roots = [server.data_dir / "hot", server.data_dir / "cold"]
    assert wait_until(lambda: not any(temp_files(r) for r in roots), timeout=10)
    rows = query(server.database_url, _OBJECTS_SQL)
    blobs = []
    for root in roots:
        for path in sorted((root / "sha256").rglob("*")):
            if path.is_file():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                blobs.append((str(path.relative_to(server.data_dir)), digest))
    return StoreState([tuple(str(v) for v in row) for row in rows], blobs)


def assert_unchanged(server: Server, before: StoreState) -> None:
    after = store_state(server)
    assert after.objects == before.objects
    assert after.blobs == before.blobs
    for path, digest in after.blobs:  # every blob file still holds the bytes its name says
        assert Path(path).name == digest


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, half-close, return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may refuse (and close) before reading everything
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionError):
                break
            if not chunk:
                break
            received += chunk
        return received


def status_of(response: bytes) -> int | None:
    """The status code of the first response in `response`, None if there is none."""
    if not response.startswith(b"HTTP/1.1 "):
        return None
    return int(response[9:12])
