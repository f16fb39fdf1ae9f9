"""A transport failure in words: what was tried, and what went wrong.

The SDK raises `TransportError` with the `httpx` exception as its cause, whose own
causes end at the operating system's error (`ConnectionRefusedError`,
`socket.gaierror`, `ssl.SSLError`, `TimeoutError`). This module reads that chain
and says `cannot connect to http://host:port: connection refused` instead of a
Python repr. It knows nothing of how the client was built (TLS settings, proxies):
it only reads what was raised.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import httpx


def describe_transport_error(exc: BaseException) -> str:
    """One line for a failure to reach the server or to finish a transfer with it."""
    chain = list(_chain(exc))
    server = _server_of(chain)
    target = server or "the server"
    for error in chain:
        if isinstance(error, httpx.ConnectTimeout):
            return f"cannot connect to {target}: no answer within the connect timeout"
        if isinstance(error, httpx.ReadTimeout):
            return f"{target} did not answer within the read timeout"
        if isinstance(error, httpx.WriteTimeout):
            return f"cannot send to {target}: it stopped reading (write timeout)"
        if isinstance(error, httpx.PoolTimeout):
            return f"no free connection to {target} within the pool timeout"
    reason = _reason(chain)
    connecting = any(isinstance(error, httpx.ConnectError) for error in chain)
    if connecting:
        return f"cannot connect to {target}: {reason}"
    if any(isinstance(error, httpx.TransportError) for error in chain):
        return f"the connection to {target} broke: {reason}"
    return f"cannot reach {target}: {exc}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _server_of(chain: list[BaseException]) -> str | None:
    for error in chain:
        if isinstance(error, httpx.RequestError):
            try:
                url = error.request.url
            except RuntimeError:  # raised without a request
                continue
            return f"{url.scheme}://{url.netloc.decode('ascii')}"
    return None


def _reason(chain: list[BaseException]) -> str:
    """The operating system's or TLS library's reason, in words."""
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            detail = error.verify_message or error.reason or "verification failed"
            return f"TLS certificate verification failed: {detail}"
        if isinstance(error, ssl.SSLError):
            return f"TLS handshake failed: {_ssl_reason(error)}"
        if isinstance(error, socket.gaierror):
            return f"cannot resolve the host name ({error.strerror or error})"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, ConnectionResetError):
            return "connection reset by the server"
        if isinstance(error, TimeoutError):
            return "timed out"
        if isinstance(error, OSError) and error.strerror:
            return error.strerror[:1].lower() + error.strerror[1:]
    for error in chain:
        if isinstance(error, httpx.RemoteProtocolError):
            return f"the server broke the protocol ({error})"
    last = chain[-1]
    return str(last) or type(last).__name__


def _ssl_reason(error: ssl.SSLError) -> str:
    reason = (error.reason or "").replace("_", " ").lower()
    if reason == "wrong version number":
        return "the server does not speak TLS there (wrong version number)"
    return reason or str(error)
