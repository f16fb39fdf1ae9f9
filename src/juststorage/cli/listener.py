"""How `serve` listens: HTTP versions and their bounds, TLS, and the check that the
port is its own."""

from __future__ import annotations

import errno
import ipaddress
import socket
import ssl
from pathlib import Path
from typing import Any

from juststorage.cli.errors import BadUsage, CommandFailed
from juststorage.config import Settings

# The head of a request (HTTP/1: request line and headers, as read into one buffer;
# HTTP/2: the decoded header list, RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE) is at
# most this many bytes. HTTP/1's is granian's default, pinned here; HTTP/2's default
# would be 16 MiB, which HPACK lets a client reach with a few kB on the wire.
HEADER_BYTES_MAX = 8192 + 4096 * 100
# An HTTP/1 request head must arrive within this time.
HEADER_READ_TIMEOUT_MS = 30_000
# HTTP/2: at most this many requests at once on one connection (granian's default is
# 200), so a connection holds at most this many header lists of HEADER_BYTES_MAX.
HTTP2_STREAMS_MAX = 32
# HTTP/2: a connection the server pinged and that did not answer within the timeout is
# closed. A client in the middle of a header block cannot answer (any frame but
# CONTINUATION is then a protocol error), so an unfinished head lives for at most
# interval + timeout, like HTTP/1's HEADER_READ_TIMEOUT_MS.
HTTP2_PING_INTERVAL_MS = 10_000
HTTP2_PING_TIMEOUT_S = 20


def granian_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `Granian(...)` for HTTP versions, header bounds and TLS.

    Raises:
        BadUsage: the TLS certificate or key cannot be loaded.
    """
    from granian.constants import HTTPModes, SSLProtocols
    from granian.http import HTTP1Settings, HTTP2Settings

    options: dict[str, Any] = {
        # HTTP/1.1 only unless HTTP/2 is asked for; `auto` also speaks HTTP/1.1.
        "http": HTTPModes.auto if settings.http2 else HTTPModes.http1,
        "http1_settings": HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS, max_buffer_size=HEADER_BYTES_MAX
        ),
        "http2_settings": HTTP2Settings(
            max_headers_size=HEADER_BYTES_MAX,
            max_concurrent_streams=HTTP2_STREAMS_MAX,
            keep_alive_interval=HTTP2_PING_INTERVAL_MS,
            keep_alive_timeout=HTTP2_PING_TIMEOUT_S,
        ),
    }
    if settings.tls_cert is not None and settings.tls_key is not None:
        check_tls_files(settings.tls_cert, settings.tls_key)
        options.update(
            ssl_cert=settings.tls_cert,
            ssl_key=settings.tls_key,
            ssl_protocol_min=SSLProtocols.tls12,
        )
    return options


def check_tls_files(cert: Path, key: Path) -> None:
    """Raises BadUsage unless `cert` (PEM chain) and `key` (its PEM private key) load."""
    for path in (cert, key):
        if not path.is_file():
            raise BadUsage(f"TLS: no such file: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or getattr(exc, "reason", None) or str(exc)
        raise BadUsage(
            f"TLS: cannot load the certificate {cert} with the key {key}: {reason}"
        ) from None


def ensure_port_free(host: str, port: int) -> None:
    """Raises CommandFailed when another process listens on `host:port`.

    The server's own workers share their port (granian binds each with SO_REUSEPORT),
    which would also let a second server start on it and the kernel split connections
    between two stores. This probe binds without SO_REUSEPORT, so any listener there
    makes it fail; it is closed again before the workers bind.
    """
    if port == 0:
        return  # any free port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # Like the workers' sockets: connections of an earlier run in TIME_WAIT do not
        # hold the port; a listening socket does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandFailed(
                    f"cannot listen on {host}:{port}: another process holds the port"
                    " (stop it, or choose another with --port / JUSTSTORAGE_PORT)"
                ) from None
            raise CommandFailed(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def metrics_exposure_warning(host: str, metrics_addr: str | None) -> str | None:
    """A warning when `/metrics` (operator data: dedup hits, per-tenant counts) would be
    served to everyone who reaches a non-loopback listener; None when it is not."""
    if metrics_addr is not None or _is_loopback(host):
        return None
    return (
        f"/metrics is served on {host}, which is not a loopback address: anyone who"
        " reaches the port reads operator data (dedup hits, per-tenant counts); set"
        " JUSTSTORAGE_METRICS_ADDR to an internal address to move it there"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
