"""`BlobResponse` streams a range in bounded messages, whatever the reader's chunks.

The server keeps several body messages of a response before the socket takes them,
so the size of a message bounds what each response in flight holds in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from juststorage.api import responses
from juststorage.api.responses import BlobResponse

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


class ReaderOfBigChunks:
    """A blob whose reads come in chunks of 1 MiB (the filesystem store's)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    @property
    def path(self) -> Path | None:
        return None

    async def chunks(self, first: int, length: int) -> AsyncIterator[bytes]:
        for start in range(first, first + length, MIB):
            yield self.data[start : min(start + MIB, first + length)]

    async def close(self) -> None:
        self.closed = True


async def test_a_range_goes_out_in_messages_of_at_most_the_bound() -> None:
    data = bytes(range(256)) * (3 * MIB // 256)
    reader = ReaderOfBigChunks(data)
    first, length = 1000, 2 * MIB + 12345
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        raise AssertionError("a response does not read the request")

    response = BlobResponse(206, [], reader, first=first, length=length)
    await response({"type": "http", "method": "GET", "extensions": {}}, receive, send)

    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert b"".join(bodies) == data[first : first + length]
    assert max(len(b) for b in bodies) <= responses._MESSAGE_MAX_BYTES < MIB
    assert reader.closed
