"""A tiny HTTP proxy on 127.0.0.1: `CONNECT` tunnels and absolute-form requests.

Whatever host a client names, the proxy connects to 127.0.0.1 on the port it
named: it never dials another address. `targets` records each request's target
(`juststorage.test:443` for a tunnel), so a test sees that the proxy was used.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from urllib.parse import urlsplit

_HEAD_MAX = 64 * 1024
_IO_TIMEOUT_S = 60.0


class ConnectProxy:
    """Start with `with ConnectProxy() as proxy:`; `proxy.url` is its address."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets: list[str] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closed.set()
        self._listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(_IO_TIMEOUT_S)
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < _HEAD_MAX:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            method, target = head.split(b" ", 2)[:2]
            with self._lock:
                self.targets.append(target.decode("ascii", "replace"))
            if method == b"CONNECT":
                port = int(target.rsplit(b":", 1)[1])
                rest = head.split(b"\r\n\r\n", 1)[1]
            else:  # absolute-form: the server reads `GET http://host:port/path` itself
                port = urlsplit(target.decode("ascii")).port or 80
                rest = head
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=_IO_TIMEOUT_S)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            stack.enter_context(upstream)
            if method == b"CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
            pump.start()
            _pump(client, upstream)
            pump.join(timeout=_IO_TIMEOUT_S)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until either side closes, then half-close the other."""
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
