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
from juststorage.cli.granian_main import HEADER_BYTES_MAX as HEADER_BYTES_MAX
from juststorage.cli.granian_main import HTTP2_STREAMS_MAX as HTTP2_STREAMS_MAX
from juststorage.cli.granian_main import Listening, listening_options
from juststorage.config import Settings


def listening_of(settings: Settings) -> Listening:
    """How `settings` say to listen, with the TLS files checked.

    Raises:
        BadUsage: the TLS certificate or key cannot be loaded.
    """
    if settings.tls_cert is not None and settings.tls_key is not None:
        check_tls_files(settings.tls_cert, settings.tls_key)
        return {
            "http2": settings.http2,
            "tls_cert": str(settings.tls_cert),
            "tls_key": str(settings.tls_key),
        }
    return {"http2": settings.http2, "tls_cert": None, "tls_key": None}


def granian_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments of `Granian(...)` for HTTP versions, header bounds and TLS.

    Raises:
        BadUsage: the TLS certificate or key cannot be loaded.
    """
    return listening_options(listening_of(settings))


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


def ensure_port_free(host: str, port: int, hint: str = "--port / JUSTSTORAGE_PORT") -> None:
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
                    f" (stop it, or choose another with {hint})"
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
