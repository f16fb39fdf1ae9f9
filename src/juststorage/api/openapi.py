"""The OpenAPI 3 description of the HTTP API, served at `/openapi.json`.

One static document: the tests fuzz the real server against it (schemathesis), so
a handler that answers something not described here fails CI, and they check
that docs/api.md names the same operations and statuses. Every operation has an
`operationId` and one tag (`openapi_schemas.TAGS`).
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from juststorage import __version__
from juststorage.api.openapi_schemas import (
    BINARY,
    NAME,
    SCHEMAS,
    SECURITY_SCHEMES,
    STORAGE_CLASS,
    TAGS,
    ref,
)
from juststorage.api.openapi_uploads import UPLOAD_SCHEMAS, UPLOADS_TAG, upload_paths

_ERROR_OF_STATUS = {
    "400": "Bad request (malformed header, name, key, query or body framing).",
    "401": "Missing, malformed, unknown, revoked or expired credential.",
    "403": "The credential lacks the scope, or does not hold the tenant.",
    "404": "No such object (or one of another tenant: existence never leaks).",
    "409": (
        "The upload session's state refuses it: completed (not aborted), or a part"
        " replaced or added while it was being completed (complete it again)."
    ),
    "412": "If-None-Match / If-Match did not hold.",
    "413": "Over the maximum object size or the tenant's storage quota.",
    "416": "The range does not overlap the object, or several ranges were asked.",
    "429": (
        "Over a rate, bandwidth or concurrency limit, or too many failed"
        " authentications from the client's address."
    ),
    "503": "The database, a storage root or an object store is unavailable (Retry-After).",
    "507": "A storage root is full.",
}
_RATE_HEADERS = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}},
}
_REQUIRED_STRING = {"required": True, "schema": {"type": "string"}}
_HEADERS_OF_ERROR: dict[str, dict[str, Any]] = {
    "401": {"WWW-Authenticate": _REQUIRED_STRING},
    "416": {"Content-Range": _REQUIRED_STRING},
    "429": {"Retry-After": {"required": True, "schema": {"type": "integer"}}, **_RATE_HEADERS},
    "503": {"Retry-After": {"required": True, "schema": {"type": "integer"}}},
}


def _errors(*statuses: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": _ERROR_OF_STATUS[status],
            "content": {"application/json": {"schema": ref("Error")}},
        }
        if status in _HEADERS_OF_ERROR:
            response["headers"] = _HEADERS_OF_ERROR[status]
        responses[status] = response
    return responses


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _header(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _operation(operation_id: str, tag: str, summary: str, **fields: Any) -> dict[str, Any]:
    return {"operationId": operation_id, "tags": [tag], "summary": summary, **fields}


_TENANT_HEADER = _header("X-Tenant", NAME, required=True)
_OBJECT_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_BY_KEY = [
    {"name": "namespace", "in": "path", "required": True, "schema": NAME},
    {"name": "tenant", "in": "path", "required": True, "schema": NAME},
    {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "The rest of the path, percent-decoded; `/` and `%2F` mean the same.",
        "schema": {"type": "string", "minLength": 1},
    },
]
_READ_HEADERS = [
    _header("Range", {"type": "string"}),
    _header("If-None-Match", {"type": "string"}),
]
_DOWNLOAD_HEADERS = {
    "ETag": _REQUIRED_STRING,
    "Last-Modified": _REQUIRED_STRING,
    "X-Object-Id": {"required": True, "schema": {"type": "string", "format": "uuid"}},
    "X-Storage-Class": {"required": True, "schema": STORAGE_CLASS},
    "Accept-Ranges": {"required": True, "schema": {"type": "string", "enum": ["bytes"]}},
    "X-Content-Type-Options": {"required": True, "schema": {"type": "string", "enum": ["nosniff"]}},
    "Content-Security-Policy": {
        "required": True,
        "schema": {"type": "string", "enum": ["default-src 'none'; sandbox"]},
    },
    "Content-Disposition": {
        "required": True,
        "description": "`attachment` with the key's last part as file name; `inline` if asked.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "required": True,
        "description": "`private, no-store` through a presigned URL, else `private, no-cache`.",
        "schema": {"type": "string", "enum": ["private, no-cache", "private, no-store"]},
    },
}
# A presigned URL's query (SPEC §8.5): instead of Authorization, from POST /v1/presign.
_PRESIGNED = [
    _query("js-expires", {"type": "integer"}),
    _query("js-credential", {"type": "string"}),
    _query("js-signature", {"type": "string"}),
]
_DISPOSITION = _query("disposition", {"type": "string", "enum": ["attachment", "inline"]})
_ANY_BINARY = {"*/*": {"schema": BINARY}}


def _download(operation_id: str, summary: str, parameters: list[Any]) -> dict[str, Any]:
    return _operation(
        operation_id,
        "objects",
        summary,
        parameters=[*parameters, *_READ_HEADERS, _DISPOSITION, *_PRESIGNED],
        responses={
            "200": {
                "description": "The object.",
                "headers": _DOWNLOAD_HEADERS,
                "content": _ANY_BINARY,
            },
            "206": {
                "description": "One range of the object.",
                "headers": {**_DOWNLOAD_HEADERS, "Content-Range": _REQUIRED_STRING},
                "content": _ANY_BINARY,
            },
            "304": {"description": "If-None-Match matched the ETag."},
            **_errors("400", "401", "403", "404", "416", "429", "503"),
        },
    )


def _head(operation_id: str, get: dict[str, Any]) -> dict[str, Any]:
    head = copy.deepcopy(get)
    head["operationId"] = operation_id
    head["summary"] = get["summary"] + ": headers only"
    for response in head["responses"].values():
        response.pop("content", None)  # HEAD answers have no body
    return head


def _delete(operation_id: str, summary: str, parameters: list[Any]) -> dict[str, Any]:
    return _operation(
        operation_id,
        "objects",
        summary,
        parameters=parameters,
        responses={
            "204": {"description": "Deleted: invisible to every read from now on."},
            **_errors("400", "401", "403", "404", "429", "503"),
        },
    )


_UPLOAD = _operation(
    "uploadObject",
    "objects",
    "Upload an object version",
    parameters=[
        _TENANT_HEADER,
        _header("X-Namespace", NAME, required=True),
        _header("X-Key", {"type": "string", "minLength": 1}, required=True),
        _header("X-Key-Encoding", {"type": "string", "enum": ["percent"]}),
        _header("X-Storage-Class", STORAGE_CLASS),
        _header("X-Content-SHA256", {"type": "string", "pattern": "^[0-9a-f]{64}$"}),
        _header("If-None-Match", {"type": "string", "enum": ["*"]}),
        _header("If-Match", {"type": "string", "pattern": '^"sha256:[0-9a-f]{64}"$'}),
    ],
    requestBody={"required": True, "content": {"application/octet-stream": {"schema": BINARY}}},
    responses={
        "201": {
            **_json("Stored durably and committed.", ref("Object")),
            "headers": {"Location": _REQUIRED_STRING, "ETag": _REQUIRED_STRING},
        },
        **_errors("400", "401", "403", "412", "413", "429", "503", "507"),
    },
)
_PUT_BY_KEY = _operation(
    "putObjectByKey",
    "objects",
    "Upload an object version, names in the path",
    parameters=[
        *_BY_KEY,
        _header("X-Storage-Class", STORAGE_CLASS),
        _header("X-Content-SHA256", {"type": "string", "pattern": "^[0-9a-f]{64}$"}),
        _header("If-None-Match", {"type": "string", "enum": ["*"]}),
        _header("If-Match", {"type": "string", "pattern": '^"sha256:[0-9a-f]{64}"$'}),
        *_PRESIGNED,
    ],
    requestBody={"required": True, "content": {"application/octet-stream": {"schema": BINARY}}},
    responses=copy.deepcopy(_UPLOAD["responses"]),
)
_PRESIGN = _operation(
    "presignUrl",
    "objects",
    "A URL for one method on one object, usable without a credential until it expires",
    requestBody={"required": True, "content": {"application/json": {"schema": ref("Presign")}}},
    responses={
        "200": _json("The signed URL.", ref("PresignedUrl")),
        **_errors("400", "401", "403", "429", "503"),
    },
)
_UPLOAD_BY_HASH = _operation(
    "uploadObjectByHash",
    "objects",
    "Commit an object version from content the tenant already stores",
    parameters=[
        _TENANT_HEADER,
        _header("X-Namespace", NAME, required=True),
        _header("X-Key", {"type": "string", "minLength": 1}, required=True),
        _header("X-Key-Encoding", {"type": "string", "enum": ["percent"]}),
        _header("X-Storage-Class", STORAGE_CLASS),
        _header("X-Content-SHA256", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, required=True),
        _header("X-Content-Length", {"type": "integer", "minimum": 0}, required=True),
        _header("If-None-Match", {"type": "string", "enum": ["*"]}),
        _header("If-Match", {"type": "string", "pattern": '^"sha256:[0-9a-f]{64}"$'}),
    ],
    responses={
        "201": {
            **_json("Committed, referencing the tenant's stored blob.", ref("Object")),
            "headers": {"Location": _REQUIRED_STRING, "ETag": _REQUIRED_STRING},
        },
        **_errors("400", "401", "403", "404", "412", "413", "429", "503"),
    },
)
_LIST = _operation(
    "listObjects",
    "objects",
    "List objects of a namespace",
    parameters=[
        _query("namespace", NAME, required=True),
        _query("tenant", NAME, required=True),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("cursor", {"type": "string"}),
        _query("prefix", {"type": "string"}),
        _query("versions", {"type": "string", "enum": ["true", "false"]}),
        _query("storage_class", STORAGE_CLASS),
        _query("delimiter", {"type": "string", "minLength": 1, "maxLength": 16}),
    ],
    responses={
        "200": _json(
            "One page, ordered by key bytes then newest first; with a delimiter, keys"
            " holding it after the prefix are rolled up into common_prefixes.",
            ref("ObjectList"),
        ),
        **_errors("400", "401", "403", "429", "503"),
    },
)
_USAGE = _operation(
    "getUsage",
    "usage",
    "A tenant's usage and monthly cost",
    parameters=[_query("tenant", NAME, required=True)],
    responses={
        "200": _json("Usage of every committed version.", ref("Usage")),
        **_errors("400", "401", "403", "429", "503"),
    },
)
_NAMESPACES = _operation(
    "listNamespaces",
    "objects",
    "The namespaces of a tenant that hold objects, with their counts",
    parameters=[_query("tenant", NAME, required=True)],
    responses={
        "200": _json("Every namespace holding a committed version, by name.", ref("Namespaces")),
        **_errors("400", "401", "403", "429", "503"),
    },
)
_WHOAMI = _operation(
    "whoAmI",
    "credentials",
    "What the caller's credential holds: subject, tenants and scopes",
    responses={
        "200": _json("The caller's own grants (`*` in tenants: every tenant).", ref("WhoAmI")),
        **_errors("401", "429", "503"),
    },
)
_GET_BY_ID = _download(
    "getObject",
    "Download an object by id",
    [
        _OBJECT_ID,
        {**_header("X-Tenant", NAME), "description": "Required unless the URL is presigned."},
        _query("js-tenant", NAME),
    ],
)
_GET_BY_KEY = _download("getObjectByKey", "Download the newest version of a key", _BY_KEY)


def _public(operation_id: str, tag: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    """An operation that needs no credential."""
    return _operation(operation_id, tag, summary, security=[], responses=responses)


_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "JustStorage",
        "version": __version__,
        "description": "Content-addressed internal object storage (docs/api.md in the repository).",
    },
    "tags": [*TAGS, UPLOADS_TAG],
    "components": {
        "securitySchemes": SECURITY_SCHEMES,
        "schemas": {**SCHEMAS, **UPLOAD_SCHEMAS},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/objects": {"post": _UPLOAD, "get": _LIST},
        "/v1/objects/by-hash": {"post": _UPLOAD_BY_HASH},
        "/v1/objects/{id}": {
            "get": _GET_BY_ID,
            "head": _head("headObject", _GET_BY_ID),
            "delete": _delete(
                "deleteObject", "Delete one object version", [_OBJECT_ID, _TENANT_HEADER]
            ),
        },
        "/v1/objects/by-key/{namespace}/{tenant}/{key}": {
            "get": _GET_BY_KEY,
            "head": _head("headObjectByKey", _GET_BY_KEY),
            "put": _PUT_BY_KEY,
            "delete": _delete("deleteObjectByKey", "Delete every version of a key", _BY_KEY),
        },
        "/v1/presign": {"post": _PRESIGN},
        **upload_paths(_errors),
        "/v1/usage": {"get": _USAGE},
        "/v1/whoami": {"get": _WHOAMI},
        "/v1/namespaces": {"get": _NAMESPACES},
        "/health": {
            "get": _public(
                "getHealth",
                "operations",
                "Liveness",
                {"200": _json("The process serves.", ref("Health"))},
            )
        },
        "/ready": {
            "get": _public(
                "getReadiness",
                "operations",
                "Readiness: database and every storage root",
                {
                    "200": _json("Ready.", ref("Readiness")),
                    "503": _json("Not ready.", ref("Readiness")),
                },
            )
        },
        "/metrics": {
            "get": _public(
                "getMetrics",
                "operations",
                "Prometheus metrics",
                {
                    "200": {
                        "description": "Prometheus text format 0.0.4.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    "404": _json(
                        "Served on JUSTSTORAGE_METRICS_ADDR instead of this listener.",
                        ref("Error"),
                    ),
                },
            )
        },
        "/openapi.json": {
            "get": _public(
                "getOpenApiDocument",
                "documentation",
                "This document",
                {"200": _json("OpenAPI 3.0.", {"type": "object"})},
            )
        },
        "/docs": {
            "get": _public(
                "getApiPage",
                "documentation",
                "This document as a web page",
                {
                    "200": {
                        "description": "HTML; its style sheet is under /docs/assets/.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            )
        },
    },
}


def openapi_document() -> dict[str, Any]:
    """A copy of the document (callers may change theirs)."""
    return copy.deepcopy(_DOCUMENT)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(_DOCUMENT)
