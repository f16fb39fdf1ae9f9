"""The same work without the service, measured in this process: the bounds of the ratios.

Also the one download reader used for both the bound and the service (http.client,
1 MiB `readinto`, bytes discarded), so a download ratio compares only the senders.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
from pathlib import Path

MIB = 1024 * 1024
CHUNK = MIB


def make_source(path: Path, size: int, seed: bytes) -> None:
    """`size` bytes: a 16 MiB random block repeated, each 16 MiB chunk with its own
    index in front (content addressing sees distinct content), fsynced so no
    dirty page of it competes with the measurements. Left in the page cache."""
    block = bytearray(os.urandom(16 * MIB))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        i = 0
        while written < size:
            block[:24] = seed[:8].ljust(8, b"\0") + i.to_bytes(16, "big")
            n = min(len(block), size - written)
            view = memoryview(block)[:n]
            while view:
                view = view[os.write(fd, view) :]
            written += n
            i += 1
        os.fsync(fd)
    finally:
        os.close(fd)


def set_tag(path: Path, tag: bytes) -> None:
    """Overwrite the first 8 bytes, so each repetition uploads content not stored yet."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, tag[:8].ljust(8, b"\0"), 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def raw_upload(src: Path, out: Path) -> tuple[str, float, float]:
    """The upload bound, its two parts measured apart: SHA-256 of `src` alone, then
    write + fsync of it into a new file `out` without hashing (one thread, 1 MiB chunks,
    `src` read from the page cache both times). Returns (hex digest, hash seconds,
    write + fsync seconds); the bound is the slower of the two. The file is left in
    place (deleting it now would make ext4 discard its blocks during the next
    measurement)."""
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    h = hashlib.sha256()
    t0 = time.perf_counter()
    with open(src, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(mv[:n])
    hash_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with open(src, "rb", buffering=0) as f:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            while n := f.readinto(buf):
                view = mv[:n]
                while view:
                    view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    return h.hexdigest(), hash_s, time.perf_counter() - t0


class _SendfileServer(threading.Thread):
    """Answers one GET on 127.0.0.1 with a minimal HTTP header and sendfile(2) of a file."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.size = path.stat().st_size
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(60)
                request = b""
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    part = conn.recv(65536)
                    if not part:
                        return
                    request += part
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: " + str(self.size).encode() + b"\r\n\r\n"
                )
                conn.settimeout(None)  # sendfile(2) needs a blocking socket
                conn.sendall(head)
                with open(self.path, "rb") as f:
                    offset = 0
                    while offset < self.size:
                        sent = os.sendfile(conn.fileno(), f.fileno(), offset, self.size - offset)
                        if sent == 0:
                            break
                        offset += sent
        except BaseException as exc:  # reported by the caller
            self.error = exc
        finally:
            self.sock.close()


def http_download(
    port: int, path: str, headers: dict[str, str], expect_size: int, expect_head: bytes
) -> float:
    """GET with http.client, reading into a 1 MiB buffer and discarding. Checks the
    status, the length and the first bytes. Returns seconds (request sent → last byte)."""
    buf = bytearray(CHUNK)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"GET {path} -> {resp.status} {resp.read(300)!r}")
        total = 0
        head = b""
        while n := resp.readinto(buf):
            if len(head) < len(expect_head):
                head += bytes(buf[: len(expect_head) - len(head)])
            total += n
        seconds = time.perf_counter() - t0
    finally:
        conn.close()
    if total != expect_size:
        raise RuntimeError(f"GET {path}: {total} bytes, expected {expect_size}")
    if head != expect_head:
        raise RuntimeError(f"GET {path}: content differs at the start")
    return seconds


def sendfile_download(path: Path, expect_head: bytes) -> float:
    """The download bound: sendfile(2) of `path` to the same reader over 127.0.0.1."""
    server = _SendfileServer(path)
    server.start()
    seconds = http_download(server.port, "/", {}, server.size, expect_head)
    server.join(timeout=30)
    if server.error is not None:
        raise RuntimeError(f"sendfile server: {server.error!r}")
    return seconds


def small_commit_bound(root: Path, n: int, size: int = 4096, time_limit_s: float = 20.0) -> float:
    """Durable 4 KiB commits the way the blob store does them, no HTTP, no database:
    temp file write + fsync, mkdir (+ parent fsync) of new shard dirs, link into
    `sha256/hh/hh/<hex>`, fsync of that dir, unlink of the temp name. Returns ops/s."""
    tmp = root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    bodies = [os.urandom(size) for _ in range(n)]
    done = 0
    t0 = time.perf_counter()
    for i, body in enumerate(bodies):
        if time.perf_counter() - t0 > time_limit_s:
            break
        hexd = hashlib.sha256(body).hexdigest()
        t = tmp / f"{i}.tmp"
        fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        d = root / "sha256" / hexd[:2] / hexd[2:4]
        for sub in (d.parent, d):
            if not sub.is_dir():
                os.makedirs(sub, exist_ok=True)
                _fsync_dir(sub.parent)
        os.link(t, d / hexd)
        _fsync_dir(d)
        os.unlink(t)
        done += 1
    return done / (time.perf_counter() - t0)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_seconds(src: Path) -> float:
    """SHA-256 of `src` alone (one thread, 1 MiB reads from the page cache): the most
    any re-hash of stored bytes (the scrub) can read per second is its size over this."""
    buf = bytearray(CHUNK)
    mv = memoryview(buf)
    h = hashlib.sha256()
    t0 = time.perf_counter()
    with open(src, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            h.update(mv[:n])
    return time.perf_counter() - t0
