"""A 127.0.0.1 TCP proxy that cuts one answer mid-body, to test resumed downloads."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from types import TracebackType

_POLL_S = 0.1
_MAX_POLLS = 3000  # 5 minutes of silence at most
# Each socket's own timeout, for sends and reads once data is waiting. Not the poll:
# a socket's timeout covers `sendall` too, and a short one would cut a connection
# whose reader is merely slow (a cut the test did not ask for).
_IO_TIMEOUT_S = 60.0


def _readable(sock: socket.socket) -> bool:
    """Whether `sock` has data (or EOF) within one poll interval."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(_POLL_S * 1000))


class CuttingProxy:
    """Forwards to `upstream_port`; the first connection that has sent `cut_after_bytes`
    downstream is closed at once (both ways). Later connections pass untouched
    (at `bytes_per_s` each when that is set, so that a test can stop a transfer
    mid-way).

    `requests` records the head of every request forwarded, so a test can see
    the `Range` a client sent when it resumed.
    """

    def __init__(
        self,
        upstream_port: int,
        cut_after_bytes: int,
        bytes_per_s: float | None = None,
        up_bytes_per_s: float | None = None,
    ) -> None:
        self.upstream_port = upstream_port
        self.cut_after_bytes = cut_after_bytes
        self.bytes_per_s = bytes_per_s  # each connection's pace downstream, when set
        self.up_bytes_per_s = up_bytes_per_s  # and upstream
        self.bytes_up = 0  # every byte forwarded to the server (requests, bodies)
        self.cuts = 0
        self.requests: list[str] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> CuttingProxy:
        self._accepting.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
            for sock in (client, upstream):
                sock.settimeout(_IO_TIMEOUT_S)
            closed = threading.Event()
            for target in (self._upstream_pump, self._downstream_pump):
                thread = threading.Thread(
                    target=target, args=(client, upstream, closed), daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _upstream_pump(
        self, client: socket.socket, upstream: socket.socket, closed: threading.Event
    ) -> None:
        with contextlib.suppress(OSError):
            for _ in range(_MAX_POLLS):  # bounded: a stuck client cannot keep us forever
                if self._stop.is_set() or closed.is_set():
                    break
                if not _readable(client):
                    continue
                data = client.recv(65536)
                if not data:
                    break
                head = data.split(b"\r\n\r\n", 1)[0]
                if head[:8].split(b" ", 1)[0] in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE"):
                    with self._lock:
                        self.requests.append(head.decode("latin-1"))
                upstream.sendall(data)
                with self._lock:
                    self.bytes_up += len(data)
                if self.up_bytes_per_s:
                    time.sleep(len(data) / self.up_bytes_per_s)
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _downstream_pump(
        self, client: socket.socket, upstream: socket.socket, closed: threading.Event
    ) -> None:
        sent = 0
        with contextlib.suppress(OSError):
            for _ in range(_MAX_POLLS):
                if self._stop.is_set() or closed.is_set():
                    break
                if not _readable(upstream):
                    continue
                data = upstream.recv(65536)
                if not data:
                    break
                with self._lock:
                    cut_now = self.cuts == 0 and sent + len(data) > self.cut_after_bytes
                    if cut_now:
                        self.cuts += 1
                if cut_now:
                    client.sendall(data[: max(0, self.cut_after_bytes - sent)])
                    # RST instead of FIN: the client sees a broken connection.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                client.sendall(data)
                sent += len(data)
                if self.bytes_per_s:
                    time.sleep(len(data) / self.bytes_per_s)
        closed.set()
        for sock in (client, upstream):
            with contextlib.suppress(OSError):
                sock.close()
