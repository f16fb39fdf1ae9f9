"""The OpenAPI description of the multipart upload sessions (SPEC §8.2): their
paths, schemas and tag, which `openapi.py` adds to the document."""

from __future__ import annotations

from typing import Any

from juststorage.api.openapi_schemas import BINARY, NAME, STORAGE_CLASS, ref

UPLOADS_TAG = {
    "name": "uploads",
    "description": "Resumable multipart uploads: sessions, parts, completion.",
}
_COUNT = {"type": "integer", "minimum": 0}
_HEX = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_PART = {
    "type": "object",
    "additionalProperties": False,
    "required": ["part", "size_bytes", "sha256"],
    "properties": {
        "part": {"type": "integer", "minimum": 1, "maximum": 10000},
        "size_bytes": _COUNT,
        "sha256": _HEX,
    },
}
_SESSION_FIELDS = {
    "upload_id": {"type": "string", "format": "uuid"},
    "tenant_id": NAME,
    "namespace": NAME,
    "key": {"type": "string", "minLength": 1},
    "storage_class": STORAGE_CLASS,
    "content_type": {"type": "string"},
    "state": {"type": "string", "enum": ["open", "completed"]},
    "created_at": {"type": "string", "format": "date-time"},
    "expires_at": {"type": "string", "format": "date-time"},
    "parts": {"type": "array", "items": ref("UploadPart")},
}
UPLOAD_SCHEMAS: dict[str, Any] = {
    "UploadPart": _PART,
    "UploadSession": {
        "type": "object",
        "additionalProperties": False,
        "required": list(_SESSION_FIELDS),
        "properties": _SESSION_FIELDS,
    },
    "UploadSessionList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": ref("UploadSession")},
            "next_cursor": {"type": "string", "nullable": True},
        },
    },
    "UploadCompletion": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "parts": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 10000},
            }
        },
    },
}
_STRING = {"type": "string"}
_REQUIRED_STRING = {"required": True, "schema": _STRING}


def _header(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def upload_paths(errors: Any) -> dict[str, Any]:
    """The `/v1/uploads` paths; `errors(*statuses)` gives the error responses."""
    session_id = {
        "name": "upload_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    tenant = _header("X-Tenant", NAME)  # optional by id: the session's own otherwise

    def operation(operation_id: str, summary: str, **fields: Any) -> dict[str, Any]:
        return {"operationId": operation_id, "tags": ["uploads"], "summary": summary, **fields}

    create = operation(
        "createUpload",
        "Open a multipart upload session",
        parameters=[
            _header("X-Tenant", NAME, required=True),
            _header("X-Namespace", NAME, required=True),
            _header("X-Key", {"type": "string", "minLength": 1}, required=True),
            _header("X-Key-Encoding", {"type": "string", "enum": ["percent"]}),
            _header("X-Storage-Class", STORAGE_CLASS),
            _header("X-Content-SHA256", _HEX),
            _header("If-None-Match", {"type": "string", "enum": ["*"]}),
            _header("If-Match", {"type": "string", "pattern": '^"sha256:[0-9a-f]{64}"$'}),
        ],
        responses={
            "201": {
                **_json("The session, open.", ref("UploadSession")),
                "headers": {"Location": _REQUIRED_STRING},
            },
            **errors("400", "401", "403", "412", "429", "503"),
        },
    )
    listing = operation(
        "listUploads",
        "List the open sessions of a namespace",
        parameters=[
            _query("namespace", NAME, required=True),
            _query("tenant", NAME, required=True),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
            _query("cursor", _STRING),
        ],
        responses={
            "200": _json("One page, ordered by key bytes then id.", ref("UploadSessionList")),
            **errors("400", "401", "403", "429", "503"),
        },
    )
    get = operation(
        "getUpload",
        "A session and its parts",
        parameters=[session_id, tenant],
        responses={
            "200": _json("The session, parts sorted by number.", ref("UploadSession")),
            **errors("400", "401", "403", "404", "429", "503"),
        },
    )
    abort = operation(
        "abortUpload",
        "Abort a session and remove its parts",
        parameters=[session_id, tenant],
        responses={
            "204": {"description": "Aborted."},
            **errors("400", "401", "403", "404", "409", "429", "503"),
        },
    )
    put_part = operation(
        "putUploadPart",
        "Store (or replace) part n",
        parameters=[
            session_id,
            {
                "name": "n",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
            },
            tenant,
            _header("X-Content-SHA256", _HEX),
        ],
        requestBody={
            "required": True,
            "content": {"application/octet-stream": {"schema": BINARY}},
        },
        responses={
            "200": _json("The part is durable.", ref("UploadPart")),
            **errors("400", "401", "403", "404", "413", "429", "503", "507"),
        },
    )
    complete = operation(
        "completeUpload",
        "Commit the object made of the parts",
        parameters=[session_id, tenant],
        requestBody={
            "required": False,
            "content": {"application/json": {"schema": ref("UploadCompletion")}},
        },
        responses={
            "201": {
                **_json("Committed.", ref("Object")),
                "headers": {"Location": _REQUIRED_STRING, "ETag": _REQUIRED_STRING},
            },
            "200": {
                **_json("Completed before: the same object.", ref("Object")),
                "headers": {"Location": _REQUIRED_STRING, "ETag": _REQUIRED_STRING},
            },
            **errors("400", "401", "403", "404", "409", "412", "413", "429", "503", "507"),
        },
    )
    return {
        "/v1/uploads": {"post": create, "get": listing},
        "/v1/uploads/{upload_id}": {"get": get, "delete": abort},
        "/v1/uploads/{upload_id}/parts/{n}": {"put": put_part},
        "/v1/uploads/{upload_id}/complete": {"post": complete},
    }
