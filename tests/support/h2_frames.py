"""HTTP/2 frames by hand (RFC 9113), for tests that send what no client library would.

Only what the tests need: the connection preface, frames in and out, and HPACK
header blocks built from indexed fields and literals without Huffman coding.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, CONTINUATION = 0, 1, 3, 4, 6, 7, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6
# HPACK static table indexes (RFC 7541 Appendix A).
METHOD_GET, SCHEME_HTTP, PATH = 2, 6, 4
STATUS_200 = 8
FIRST_DYNAMIC_INDEX = 62


@dataclass(frozen=True)
class Frame:
    type: int
    flags: int
    stream: int
    payload: bytes


def encode_frame(type_: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    """One frame on the wire: 9-byte header, then the payload."""
    head = struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + struct.pack(">I", stream)
    return head + payload


def _integer(value: int, prefix_bits: int, first_byte: int) -> bytes:
    """HPACK integer (RFC 7541 §5.1) with `first_byte` holding the pattern bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: bytes) -> bytes:
    return _integer(len(value), 7, 0x00) + value  # no Huffman coding


def indexed(index: int) -> bytes:
    """A field from the static or dynamic table: one byte for indexes below 127."""
    return _integer(index, 7, 0x80)


def literal_indexed_name(index: int, value: bytes) -> bytes:
    """A literal value for a table name, not added to the dynamic table."""
    return _integer(index, 4, 0x00) + _string(value)


def literal_added(name: bytes, value: bytes) -> bytes:
    """A new name and value, added to the dynamic table (it becomes index 62)."""
    return b"\x40" + _string(name) + _string(value)


def request_head(path: bytes = b"/health") -> bytes:
    """:method GET, :scheme http, :path `path`."""
    return indexed(METHOD_GET) + indexed(SCHEME_HTTP) + literal_indexed_name(PATH, path)


class Connection:
    """A cleartext HTTP/2 connection with prior knowledge, on 127.0.0.1."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._buffer = b""

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def start(self) -> Frame:
        """Preface and empty SETTINGS; the server's SETTINGS frame, acknowledged."""
        self.sock.sendall(PREFACE + encode_frame(SETTINGS, 0, 0))
        first = self.read_frame()
        assert first is not None and first.type == SETTINGS, first
        self.sock.sendall(encode_frame(SETTINGS, ACK, 0))
        return first

    def send_headers(self, stream: int, block: bytes, *, max_frame: int = 16384) -> None:
        """A header block as HEADERS and CONTINUATION frames, ending the stream."""
        chunks = [block[i : i + max_frame] for i in range(0, len(block), max_frame)] or [b""]
        out = bytearray()
        for n, chunk in enumerate(chunks):
            last = END_HEADERS if n == len(chunks) - 1 else 0
            if n == 0:
                out += encode_frame(HEADERS, END_STREAM | last, stream, chunk)
            else:
                out += encode_frame(CONTINUATION, last, stream, chunk)
        self.sock.sendall(bytes(out))

    def read_frame(self) -> Frame | None:
        """The next frame, or None when the server closed the connection."""
        while len(self._buffer) < 9 or len(self._buffer) < 9 + _length(self._buffer):
            try:
                data = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                return None
            if not data:
                return None
            self._buffer += data
        length = _length(self._buffer)
        head, payload = self._buffer[:9], self._buffer[9 : 9 + length]
        self._buffer = self._buffer[9 + length :]
        stream = struct.unpack(">I", head[5:9])[0] & 0x7FFFFFFF
        return Frame(head[3], head[4], stream, payload)

    def frames_until(self, done: set[int], timeout: float) -> list[Frame]:
        """Frames until every stream in `done` got a response head, a reset, or the
        connection ended (GOAWAY or close); PINGs are answered."""
        frames: list[Frame] = []
        pending = set(done)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            got = self.read_frame()
            if got is None:
                break
            frames.append(got)
            if got.type == PING and not got.flags & ACK:
                self.sock.sendall(encode_frame(PING, ACK, 0, got.payload))
            if got.type in (HEADERS, RST_STREAM):
                pending.discard(got.stream)
            if got.type == GOAWAY:
                break
        return frames


def _length(buffer: bytes) -> int:
    return int.from_bytes(buffer[:3], "big")


def settings_of(settings_frame: Frame) -> dict[int, int]:
    """The parameters of a SETTINGS frame."""
    payload = settings_frame.payload
    return {
        struct.unpack(">H", payload[i : i + 2])[0]: struct.unpack(">I", payload[i + 2 : i + 6])[0]
        for i in range(0, len(payload), 6)
    }


def is_status_200(headers_frame: Frame) -> bool:
    """True if a response head starts with the indexed `:status 200`."""
    return headers_frame.type == HEADERS and headers_frame.payload[:1] == indexed(STATUS_200)
