"""Streaming a blob to the client without reading it into memory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass

from starlette.types import Receive, Scope, Send

from juststorage.api.accel import AccelMapping
from juststorage.api.rendering import RawHeaders
from juststorage.application.blob_ports import BlobReader

_PATHSEND = "http.response.pathsend"
# Below this a body is one read and one message; pathsend's extra work (a file
# opened and sent by the server) costs more than it saves.
_PATHSEND_MIN_BYTES = 256 * 1024
# Up to this a body is read whole and sent as one message with the end of the body:
# one `send` instead of a chunk and an empty closing message.
_ONE_MESSAGE_MAX_BYTES = 64 * 1024
# A streamed body goes out in messages of at most this many bytes: the server keeps
# several messages of a response before the socket takes them, so their size, not
# the size of a read, sets what each response in flight holds.
_MESSAGE_MAX_BYTES = 256 * 1024


def _ignore(sent_bytes: int) -> None:
    pass


@dataclass
class BlobResponse:
    """Sends `length` bytes of an open blob from `first`; nothing for HEAD or 304.

    A whole-object GET is handed to the reverse proxy when `accel` maps its file
    (`api.accel`), else uses the server's `pathsend` extension when it offers one
    (granian does); otherwise bounded chunks are read in a thread.
    """

    status: int
    headers: RawHeaders  # as ASGI sends them (`rendering.download_headers`)
    reader: BlobReader | None
    _: KW_ONLY
    first: int = 0
    length: int = 0
    whole: bool = False
    on_sent: Callable[[int], None] = _ignore
    accel: AccelMapping | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            redirect = self._accel_redirect(scope)
            if redirect is not None:
                await self._send_redirect(redirect, send)
                return
            start = {"type": "http.response.start", "status": self.status, "headers": self.headers}
            if self.reader is None or scope["method"] == "HEAD" or self.length == 0:
                await send(start)
                await send({"type": "http.response.body", "body": b""})
                return
            if (
                self.whole
                and self.length >= _PATHSEND_MIN_BYTES
                and self.reader.path is not None
                and _PATHSEND in scope.get("extensions", {})
            ):
                await send(start)
                await send({"type": _PATHSEND, "path": str(self.reader.path)})
                self.on_sent(self.length)
                return
            # The first read comes before the head: a blob that cannot be read (an I/O
            # error) is answered with the error (500 Internal), not a 200 cut short.
            chunks = aiter(self.reader.chunks(self.first, self.length))
            if self.length <= _ONE_MESSAGE_MAX_BYTES:
                whole = b"".join([chunk async for chunk in chunks])
                await send(start)
                await send({"type": "http.response.body", "body": whole})
            else:
                first = await anext(chunks)
                await send(start)
                await self._send_chunk(first, send)
                async for chunk in chunks:
                    await self._send_chunk(chunk, send)
                await send({"type": "http.response.body", "body": b""})
            self.on_sent(self.length)
        finally:
            if self.reader is not None:
                await self.reader.close()

    @staticmethod
    async def _send_chunk(chunk: bytes, send: Send) -> None:
        for start in range(0, len(chunk), _MESSAGE_MAX_BYTES):
            body = chunk[start : start + _MESSAGE_MAX_BYTES]
            await send({"type": "http.response.body", "body": body, "more_body": True})

    def _accel_redirect(self, scope: Scope) -> str | None:
        """The proxy's internal URI for this body, when the proxy is to send it."""
        if (
            self.accel is None
            or self.reader is None
            or self.reader.path is None
            or not self.whole
            or self.length < _PATHSEND_MIN_BYTES
            or scope["method"] == "HEAD"
        ):
            return None
        path = os.path.abspath(self.reader.path)
        try:
            size = os.stat(path).st_size
        except OSError:
            return None
        if size != self.length:
            return None  # nginx would send a short file as whole; streaming it fails loudly
        return self.accel.uri_for(path)

    async def _send_redirect(self, uri: str, send: Send) -> None:
        # The proxy takes the length from the file and drops this empty body.
        headers = [(k, v) for k, v in self.headers if k != b"content-length"]
        headers += [(b"x-accel-redirect", uri.encode("latin-1")), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        self.on_sent(self.length)
