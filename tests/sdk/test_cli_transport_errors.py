"""Transport failures in words (`cli.transport_errors`), from what the real SDK
raises against real sockets on 127.0.0.1: refused, silent, not TLS, untrusted TLS."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import juststorage_client as js
import pytest
from juststorage_client._retry import RetryPolicy

from juststorage.cli.transport_errors import describe_transport_error
from support.private_ca import self_signed


def _failure(url: str, timeout: float = 5.0) -> str:
    client = js.Client(url, "token", retry=RetryPolicy(max_attempts=1), timeout=timeout)
    with client, pytest.raises(js.TransportError) as raised:
        client.usage(tenant="acme")
    return describe_transport_error(raised.value)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def _serve(sock: socket.socket, handle: Callable[[socket.socket], object]) -> None:
    def loop() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError, ssl.SSLError):
                handle(conn)

    threading.Thread(target=loop, daemon=True).start()


def test_a_refused_connection_names_the_server() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    message = _failure(f"http://127.0.0.1:{port}")
    assert message == f"cannot connect to http://127.0.0.1:{port}: connection refused"


def test_a_silent_server_is_a_read_timeout(listener: socket.socket) -> None:
    port = listener.getsockname()[1]  # accepts (the backlog) and never answers
    message = _failure(f"http://127.0.0.1:{port}", timeout=0.3)
    assert message == f"http://127.0.0.1:{port} did not answer within the read timeout"


def test_https_to_a_plain_http_port_says_it_does_not_speak_tls(listener: socket.socket) -> None:
    _serve(listener, lambda conn: (conn.recv(1024), conn.sendall(b"HTTP/1.1 400 No\r\n\r\n")))
    port = listener.getsockname()[1]
    message = _failure(f"https://127.0.0.1:{port}")
    assert message.startswith(f"cannot connect to https://127.0.0.1:{port}: TLS handshake failed")
    assert "does not speak TLS" in message


def test_an_untrusted_certificate_says_verification_failed(
    listener: socket.socket, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def handshake(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1024)

    _serve(listener, handshake)
    port = listener.getsockname()[1]
    message = _failure(f"https://127.0.0.1:{port}")
    assert message == (
        f"cannot connect to https://127.0.0.1:{port}:"
        " TLS certificate verification failed: self-signed certificate"
    )


def test_an_error_without_a_cause_keeps_its_words() -> None:
    assert describe_transport_error(js.TransportError("gone")) == "cannot reach the server: gone"
