"""A stand-in for the multipart session API (SPEC §8.2) in front of a real server.

The client tests need sessions before the server has them. This HTTP server on
127.0.0.1 keeps sessions and parts itself (parts in files, durable once
acknowledged), and on completion sends the concatenated parts to the real
server's `POST /v1/objects` with the session's headers, so the object that
results is a real one. Every other request is forwarded unchanged. It counts
the part bytes it received, which is what the resume tests bound.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

_SESSION_HEADERS = (
    "authorization",
    "x-tenant",
    "x-namespace",
    "x-key",
    "x-key-encoding",
    "x-storage-class",
    "content-type",
    "x-content-sha256",
    "if-none-match",
    "if-match",
)


@dataclass
class _Session:
    upload_id: str
    headers: dict[str, str]
    parts: dict[int, tuple[int, str]] = field(default_factory=dict)  # n -> (size, sha256)
    state: str = "open"
    result: bytes | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "tenant_id": self.headers.get("x-tenant"),
            "namespace": self.headers.get("x-namespace"),
            "key": self.headers.get("x-key"),
            "storage_class": self.headers.get("x-storage-class", "hot"),
            "content_type": self.headers.get("content-type", "application/octet-stream"),
            "state": self.state,
            "created_at": "2026-01-01T00:00:00Z",
            "expires_at": "2026-01-08T00:00:00Z",
            "parts": [
                {"part": n, "size_bytes": size, "sha256": digest}
                for n, (size, digest) in sorted(self.parts.items())
            ],
        }


class FakeSessionServer:
    """`url` serves the session API; everything else goes to `upstream`."""

    def __init__(
        self,
        upstream: str,
        directory: Path,
        part_min_bytes: int = 5 * 2**20,
        bytes_per_s: float | None = None,
    ) -> None:
        self.upstream = upstream
        self.directory = directory
        self.part_min_bytes = part_min_bytes
        self.bytes_per_s = bytes_per_s  # the pace each part is read at, when set
        self.sessions: dict[str, _Session] = {}
        self.part_bytes_received = 0
        self.part_requests = 0
        self.parts_in_flight = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> FakeSessionServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def settle(self, timeout_s: float = 10.0) -> None:
        """Wait until no part is being received (a cut client's last bytes included)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if self.parts_in_flight == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError("a part is still being received")

    def part_path(self, upload_id: str, number: int) -> Path:
        return self.directory / upload_id / f"{number:05d}"


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeSessionServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass

    # -- plumbing ---------------------------------------------------------------

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, code: str, message: str) -> None:
        body = {"error": {"code": code, "message": message, "request_id": "fake"}}
        self._json(status, body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _session(self, upload_id: str) -> _Session | None:
        with self.server_fake.lock:
            return self.server_fake.sessions.get(upload_id)

    # -- routes -------------------------------------------------------------------

    def _route(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if parts[:2] != ["v1", "uploads"]:
            return self._forward()
        if len(parts) == 2 and self.command == "POST":
            return self._create()
        session = self._session(parts[2]) if len(parts) > 2 else None
        if session is None:
            self._body()
            return self._error(404, "NotFound", "no such upload")
        if len(parts) == 3 and self.command == "GET":
            return self._json(200, session.to_json())
        if len(parts) == 3 and self.command == "DELETE":
            if session.state == "completed":  # its object stays, and its record
                return self._error(409, "Conflict", "the upload session is completed")
            with self.server_fake.lock:
                self.server_fake.sessions.pop(session.upload_id, None)
            return self._send(204, b"")
        if len(parts) == 5 and parts[3] == "parts" and self.command == "PUT":
            return self._put_part(session, int(parts[4]))
        if len(parts) == 4 and parts[3] == "complete" and self.command == "POST":
            return self._complete(session)
        self._body()
        self._error(405, "MethodNotAllowed", "not here")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _route

    def _create(self) -> None:
        self._body()
        headers = {k: v for k in _SESSION_HEADERS if (v := self.headers.get(k)) is not None}
        session = _Session(uuid.uuid4().hex, headers)
        with self.server_fake.lock:
            self.server_fake.sessions[session.upload_id] = session
        self._json(201, session.to_json())

    def _put_part(self, session: _Session, number: int) -> None:
        with self.server_fake.lock:
            self.server_fake.parts_in_flight += 1
        try:
            self._receive_part(session, number)
        finally:
            with self.server_fake.lock:
                self.server_fake.parts_in_flight -= 1

    def _receive_part(self, session: _Session, number: int) -> None:
        if not 1 <= number <= 10000:
            self._body()
            return self._error(400, "BadRequest", "part numbers are 1-10000")
        length = int(self.headers.get("Content-Length") or 0)
        path = self.server_fake.part_path(session.upload_id, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        digest = hashlib.sha256()
        left = length
        with temp.open("wb") as handle:
            while left > 0:
                chunk = self.rfile.read(min(left, 1 << 16))
                if not chunk:
                    temp.unlink()
                    return  # the client went away: nothing acknowledged
                left -= len(chunk)
                digest.update(chunk)
                handle.write(chunk)
                with self.server_fake.lock:
                    self.server_fake.part_bytes_received += len(chunk)
                if self.server_fake.bytes_per_s:
                    time.sleep(len(chunk) / self.server_fake.bytes_per_s)
        expected = self.headers.get("X-Content-SHA256")
        if expected is not None and expected != digest.hexdigest():
            temp.unlink()
            return self._error(400, "ChecksumMismatch", "the part's digest differs")
        temp.replace(path)
        with self.server_fake.lock:
            session.parts[number] = (length, digest.hexdigest())
            self.server_fake.part_requests += 1
        self._json(200, {"part": number, "size_bytes": length, "sha256": digest.hexdigest()})

    def _complete(self, session: _Session) -> None:
        raw = self._body()
        if session.state == "completed" and session.result is not None:
            return self._send(200, session.result, {"Content-Type": "application/json"})
        wanted = json.loads(raw or b"{}").get("parts") or sorted(session.parts)
        if wanted != list(range(1, len(wanted) + 1)) or any(n not in session.parts for n in wanted):
            return self._error(400, "BadRequest", "parts must be 1..N without gaps")
        for n in wanted[:-1]:
            if session.parts[n][0] < self.server_fake.part_min_bytes:
                return self._error(400, "BadRequest", f"part {n} is under the minimum")
        fake = self.server_fake

        def body() -> Iterator[bytes]:
            for n in wanted:
                with fake.part_path(session.upload_id, n).open("rb") as handle:
                    while chunk := handle.read(1 << 20):
                        yield chunk

        headers = dict(session.headers)
        headers["Content-Length"] = str(sum(session.parts[n][0] for n in wanted))
        with httpx.Client(base_url=fake.upstream, timeout=120) as upstream:
            answer = upstream.post("/v1/objects", headers=headers, content=body())
        if answer.status_code == 201:
            with fake.lock:
                session.state = "completed"
                session.result = answer.content
        self._send(answer.status_code, answer.content, {"Content-Type": "application/json"})

    def _forward(self) -> None:
        body = self._body() if self.command in ("POST", "PUT") else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host",)}
        with httpx.Client(base_url=self.server_fake.upstream, timeout=120) as upstream:
            answer = upstream.request(self.command, self.path, headers=headers, content=body)
        out = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        }
        self._send(answer.status_code, answer.content, out)
