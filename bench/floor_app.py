"""HTTP ceiling for small objects: the service's URL shapes as raw ASGI, objects kept in a
dict in memory (no hashing, no disk, no database, no auth). Served by granian, 1 worker,
uvloop, exactly as the service is, and loaded by the same client."""

from __future__ import annotations

import json
import uuid
from typing import Any

_store: dict[str, bytes] = {}
_LIMIT = 200_000  # bounded memory whatever the client does


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    if method == "POST" and path == "/v1/objects":
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        object_id = str(uuid.uuid4())
        if len(_store) < _LIMIT:
            _store[object_id] = b"".join(chunks)
        body = json.dumps({"id": object_id}).encode()
        await _reply(send, 201, body, b"application/json")
    elif method == "GET" and path.startswith("/v1/objects/") and path[12:] in _store:
        await _reply(send, 200, _store[path[12:]], b"application/octet-stream")
    elif method == "GET" and path == "/health":
        await _reply(send, 200, b'{"status": "ok"}', b"application/json")
    else:
        await _reply(send, 404, b"{}", b"application/json")


async def _reply(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
