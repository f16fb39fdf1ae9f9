"""The OpenAPI 3 description of the HTTP API (SPEC §2), served at `/openapi.json`.

One static document: the tests fuzz the real server against it (schemathesis), so
a handler that answers something not described here fails CI.
"""

from __future__ import annotations

import copy
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from juststorage import __version__

_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
_CODES = [
    "BadRequest",
    "ChecksumMismatch",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "MethodNotAllowed",
    "PreconditionFailed",
    "PayloadTooLarge",
    "RangeNotSatisfiable",
    "TooManyRequests",
    "Internal",
    "Unavailable",
    "InsufficientStorage",
]
_ERROR_OF_STATUS = {
    "400": "Bad request (malformed header, name, key, query or body framing).",
    "401": "Missing, malformed, unknown, revoked or expired credential.",
    "403": "The credential lacks the scope, or does not hold the tenant.",
    "404": "No such object (or one of another tenant: existence never leaks).",
    "412": "If-None-Match / If-Match did not hold.",
    "413": "Over the maximum object size or the tenant's storage quota.",
    "416": "The range does not overlap the object, or several ranges were asked.",
    "429": "Over a rate, bandwidth or concurrency limit.",
    "503": "The database or a storage root is unavailable.",
    "507": "A storage root is full.",
}
_RATE_HEADERS = {
    "X-RateLimit-Limit": {"schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"schema": {"type": "integer"}},
    "X-RateLimit-Reset": {"schema": {"type": "integer"}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _errors(*statuses: str) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {
            "description": _ERROR_OF_STATUS[status],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
        if status == "401":
            response["headers"] = {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
            }
        if status == "429":
            response["headers"] = {
                "Retry-After": {"required": True, "schema": {"type": "integer"}},
                **_RATE_HEADERS,
            }
        if status == "416":
            response["headers"] = {
                "Content-Range": {"required": True, "schema": {"type": "string"}}
            }
        responses[status] = response
    return responses


def _header(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


def _query(name: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


_TENANT_HEADER = _header("X-Tenant", _NAME, required=True)
_OBJECT_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
_BY_KEY = [
    {"name": "namespace", "in": "path", "required": True, "schema": _NAME},
    {"name": "tenant", "in": "path", "required": True, "schema": _NAME},
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
    "ETag": {"required": True, "schema": {"type": "string"}},
    "Last-Modified": {"required": True, "schema": {"type": "string"}},
    "X-Object-Id": {"required": True, "schema": {"type": "string", "format": "uuid"}},
    "X-Storage-Class": {"required": True, "schema": {"type": "string", "enum": ["hot", "cold"]}},
    "Accept-Ranges": {"required": True, "schema": {"type": "string", "enum": ["bytes"]}},
}
_BINARY = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def _download(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": [*parameters, *_READ_HEADERS],
        "responses": {
            "200": {"description": "The object.", "headers": _DOWNLOAD_HEADERS, "content": _BINARY},
            "206": {
                "description": "One range of the object.",
                "headers": {
                    **_DOWNLOAD_HEADERS,
                    "Content-Range": {"required": True, "schema": {"type": "string"}},
                },
                "content": _BINARY,
            },
            "304": {"description": "If-None-Match matched the ETag."},
            **_errors("400", "401", "403", "404", "416", "429", "503"),
        },
    }


def _head(get: dict[str, Any]) -> dict[str, Any]:
    head = copy.deepcopy(get)
    head["summary"] = "Headers of " + get["summary"][0].lower() + get["summary"][1:]
    for response in head["responses"].values():
        response.pop("content", None)  # HEAD answers have no body
    return head


def _delete(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "parameters": parameters,
        "responses": {
            "204": {"description": "Deleted: invisible to every read from now on."},
            **_errors("400", "401", "403", "404", "429", "503"),
        },
    }


_OBJECT = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "id",
        "namespace",
        "tenant_id",
        "key",
        "content_hash",
        "size_bytes",
        "storage_class",
        "content_type",
        "created_at",
    ],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "namespace": _NAME,
        "tenant_id": _NAME,
        "key": {"type": "string", "minLength": 1},
        "content_hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
        "size_bytes": {"type": "integer", "minimum": 0},
        "storage_class": {"type": "string", "enum": ["hot", "cold"]},
        "content_type": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
    },
}
_CLASS_USAGE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["objects", "bytes", "monthly_cost"],
    "properties": {
        "objects": {"type": "integer", "minimum": 0},
        "bytes": {"type": "integer", "minimum": 0},
        "monthly_cost": {"type": "number", "minimum": 0},
    },
}
_CHECKS = {
    "type": "object",
    "required": ["database", "hot", "cold"],
    "properties": {
        "database": {"type": "string"},
        "hot": {"type": "string"},
        "cold": {"type": "string"},
    },
}

_DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "JustStorage",
        "version": __version__,
        "description": "Content-addressed internal object storage (the SPEC, §2-§4).",
    },
    "components": {
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key or a JWT (HS256, RS256 or ES256 as configured).",
            }
        },
        "schemas": {
            "Object": _OBJECT,
            "ObjectList": {
                "type": "object",
                "additionalProperties": False,
                "required": ["items", "next_cursor"],
                "properties": {
                    "items": {"type": "array", "items": _ref("Object")},
                    "next_cursor": {"type": "string", "nullable": True},
                },
            },
            "Usage": {
                "type": "object",
                "additionalProperties": False,
                "required": [
                    "tenant_id",
                    "objects",
                    "logical_bytes",
                    "by_storage_class",
                    "monthly_cost",
                    "currency",
                ],
                "properties": {
                    "tenant_id": _NAME,
                    "objects": {"type": "integer", "minimum": 0},
                    "logical_bytes": {"type": "integer", "minimum": 0},
                    "by_storage_class": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["hot", "cold"],
                        "properties": {"hot": _CLASS_USAGE, "cold": _CLASS_USAGE},
                    },
                    "monthly_cost": {"type": "number", "minimum": 0},
                    "currency": {"type": "string"},
                },
            },
            "Error": {
                "type": "object",
                "additionalProperties": False,
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["code", "message", "request_id"],
                        "properties": {
                            "code": {"type": "string", "enum": _CODES},
                            "message": {"type": "string"},
                            "request_id": {"type": "string"},
                        },
                    }
                },
            },
            "Readiness": {
                "type": "object",
                "required": ["status", "checks"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "unavailable"]},
                    "checks": _CHECKS,
                },
            },
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/objects": {
            "post": {
                "summary": "Upload an object version",
                "parameters": [
                    _TENANT_HEADER,
                    _header("X-Namespace", _NAME, required=True),
                    _header("X-Key", {"type": "string", "minLength": 1}, required=True),
                    _header("X-Key-Encoding", {"type": "string", "enum": ["percent"]}),
                    _header("X-Storage-Class", {"type": "string", "enum": ["hot", "cold"]}),
                    _header("X-Content-SHA256", {"type": "string", "pattern": "^[0-9a-f]{64}$"}),
                    _header("If-None-Match", {"type": "string", "enum": ["*"]}),
                    _header("If-Match", {"type": "string", "pattern": '^"sha256:[0-9a-f]{64}"$'}),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/octet-stream": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                "responses": {
                    "201": {
                        "description": "Stored durably and committed.",
                        "headers": {
                            "Location": {"required": True, "schema": {"type": "string"}},
                            "ETag": {"required": True, "schema": {"type": "string"}},
                        },
                        "content": {"application/json": {"schema": _ref("Object")}},
                    },
                    **_errors("400", "401", "403", "412", "413", "429", "503", "507"),
                },
            },
            "get": {
                "summary": "List objects of a namespace",
                "parameters": [
                    _query("namespace", _NAME, required=True),
                    _query("tenant", _NAME, required=True),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("cursor", {"type": "string"}),
                    _query("prefix", {"type": "string"}),
                    _query("versions", {"type": "string", "enum": ["true", "false"]}),
                    _query("storage_class", {"type": "string", "enum": ["hot", "cold"]}),
                ],
                "responses": {
                    "200": {
                        "description": "One page, ordered by key bytes then newest first.",
                        "content": {"application/json": {"schema": _ref("ObjectList")}},
                    },
                    **_errors("400", "401", "403", "429", "503"),
                },
            },
        },
        "/v1/objects/{id}": {
            "get": _download("Download an object by id", [_OBJECT_ID, _TENANT_HEADER]),
            "delete": _delete("Delete one object version", [_OBJECT_ID, _TENANT_HEADER]),
        },
        "/v1/objects/by-key/{namespace}/{tenant}/{key}": {
            "get": _download("Download the newest version of a key", _BY_KEY),
            "delete": _delete("Delete every version of a key", _BY_KEY),
        },
        "/v1/usage": {
            "get": {
                "summary": "A tenant's usage and monthly cost",
                "parameters": [_query("tenant", _NAME, required=True)],
                "responses": {
                    "200": {
                        "description": "Usage of every committed version.",
                        "content": {"application/json": {"schema": _ref("Usage")}},
                    },
                    **_errors("400", "401", "403", "429", "503"),
                },
            }
        },
        "/health": {
            "get": {
                "summary": "Liveness",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The process serves.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status"],
                                    "properties": {"status": {"type": "string", "enum": ["ok"]}},
                                }
                            }
                        },
                    }
                },
            }
        },
        "/ready": {
            "get": {
                "summary": "Readiness: database and every storage root",
                "security": [],
                "responses": {
                    status: {
                        "description": description,
                        "content": {"application/json": {"schema": _ref("Readiness")}},
                    }
                    for status, description in (("200", "Ready."), ("503", "Not ready."))
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.0.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    },
}
for _item in _DOCUMENT["paths"].values():
    if "get" in _item and _item["get"]["summary"].startswith("Download"):
        _item["head"] = _head(_item["get"])


def openapi_document() -> dict[str, Any]:
    """A copy of the document (callers may change theirs)."""
    return copy.deepcopy(_DOCUMENT)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(_DOCUMENT)
