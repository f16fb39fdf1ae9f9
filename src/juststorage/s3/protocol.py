"""uvicorn's httptools protocol with the bounds the S3 listener needs before any
authentication: the size of a request head, the time a head may take, the idle
time of a connection, and the number of connections of one worker."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# The same bounds as the main listener's (cli/granian_main.py).
HEADER_BYTES_MAX = 8192 + 4096 * 100
HEADER_READ_SECONDS = 30.0
# Above the idle timeouts of the common clients' pools.
KEEP_ALIVE_SECONDS = 75
# Connections one worker serves at once; the next ones get 503 SlowDown and are
# closed. Each holds at most a head (HEADER_BYTES_MAX) and one signed chunk.
CONNECTIONS_MAX = 1000

_SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_SLOW_DOWN = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n" % len(_SLOW_DOWN_BODY)
) + _SLOW_DOWN_BODY
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n"
    b"connection: close\r\n\r\n"
)


@dataclass(frozen=True, slots=True)
class ListenerLimits:
    """The bounds of one worker's S3 listener."""

    header_bytes_max: int = HEADER_BYTES_MAX
    header_read_seconds: float = HEADER_READ_SECONDS
    keep_alive_seconds: int = KEEP_ALIVE_SECONDS
    connections_max: int = CONNECTIONS_MAX


def bounded_protocol(limits: ListenerLimits) -> type[HttpToolsProtocol]:
    """An HttpToolsProtocol class that enforces `limits` (for uvicorn's `http`)."""

    class _Bounded(BoundedHttpToolsProtocol):
        pass

    _Bounded.limits = limits
    return _Bounded


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """Counts the bytes of each request head and closes the connection (431) past
    `header_bytes_max`; closes a connection whose head has not ended within
    `header_read_seconds` of its first byte, or that sends nothing for
    `keep_alive_seconds` after it opened; answers 503 SlowDown past
    `connections_max` connections."""

    limits = ListenerLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_head = True
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.limits.connections_max:
            transport.write(_SLOW_DOWN)
            transport.close()
            return
        # uvicorn arms its keep-alive timer only after a response: a connection
        # that never sends a byte is idle from the start.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.limits.keep_alive_seconds, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        counting = self._in_head
        if counting:
            self._head_bytes += len(data)
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(
                    self.limits.header_read_seconds, self._head_timed_out
                )
        super().data_received(data)
        # Still in the same head after this data (on_headers_complete not called):
        # what the parser holds of it is bounded by the bytes counted.
        if counting and self._in_head and self._head_bytes > self.limits.header_bytes_max:
            self._cancel_head_timer()
            if not self.transport.is_closing():
                self.transport.write(_TOO_LARGE)
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # the next request's head (keep-alive or pipelined)
        self._head_bytes = 0

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()
