"""The HTTP ceiling of bench/floor_app.py on granian's RSGI interface instead of ASGI:
the same URL shapes and in-memory dict, no per-request scope dict or message dicts.
What a server written to RSGI could gain at most, served and loaded as floor_app is."""

from __future__ import annotations

import json
import uuid
from typing import Any

_store: dict[str, bytes] = {}
_LIMIT = 200_000  # bounded memory whatever the client does
_JSON = [("content-type", "application/json")]
_OCTETS = "application/octet-stream"


async def app(scope: Any, proto: Any) -> None:
    path, method = scope.path, scope.method
    if method == "POST" and path == "/v1/objects":
        body = await proto()
        object_id = str(uuid.uuid4())
        if len(_store) < _LIMIT:
            _store[object_id] = bytes(body)
        proto.response_bytes(201, _JSON, json.dumps({"id": object_id}).encode())
    elif method == "GET" and path.startswith("/v1/objects/") and path[12:] in _store:
        proto.response_bytes(200, [("content-type", _OCTETS)], _store[path[12:]])
    elif method == "GET" and path == "/health":
        proto.response_bytes(200, _JSON, b'{"status": "ok"}')
    else:
        proto.response_bytes(404, _JSON, b"{}")
