"""The reusable parts of the OpenAPI document: schemas, the security scheme, tags.

`api.openapi` assembles the paths from these; docs/api.md describes the same
bodies in prose.
"""

from __future__ import annotations

from typing import Any

from juststorage.api.errors import STATUS_OF_CODE
from juststorage.domain.auth import Scope

NAME: dict[str, Any] = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
STORAGE_CLASS: dict[str, Any] = {"type": "string", "enum": ["hot", "cold"]}
BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


def ref(name: str) -> dict[str, str]:
    """A `$ref` to one of SCHEMAS."""
    return {"$ref": f"#/components/schemas/{name}"}


def _record(properties: dict[str, Any]) -> dict[str, Any]:
    """A closed JSON object whose every property is required."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(properties),
        "properties": properties,
    }


_COUNT = {"type": "integer", "minimum": 0}
_MONEY = {"type": "number", "minimum": 0}
_SCOPES = [scope.value for scope in Scope]
_CLASS_USAGE = _record({"objects": _COUNT, "bytes": _COUNT, "monthly_cost": _MONEY})

SCHEMAS: dict[str, Any] = {
    "Object": _record(
        {
            "id": {"type": "string", "format": "uuid"},
            "namespace": NAME,
            "tenant_id": NAME,
            "key": {"type": "string", "minLength": 1},
            "content_hash": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
            "size_bytes": _COUNT,
            "storage_class": STORAGE_CLASS,
            "content_type": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"},
        }
    ),
    "ObjectList": {
        **_record(
            {
                "items": {"type": "array", "items": ref("Object")},
                # Keys rolled up by `delimiter` (SPEC §8.4): present only with one.
                "common_prefixes": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "next_cursor": {"type": "string", "nullable": True},
            }
        ),
        "required": ["items", "next_cursor"],
    },
    "Usage": _record(
        {
            "tenant_id": NAME,
            "objects": _COUNT,
            "logical_bytes": _COUNT,
            "by_storage_class": _record({"hot": _CLASS_USAGE, "cold": _CLASS_USAGE}),
            "monthly_cost": _MONEY,
            "currency": {"type": "string"},
        }
    ),
    "Namespaces": _record(
        {
            "tenant_id": {"type": "string"},
            "namespaces": {
                "type": "array",
                "items": _record(
                    {
                        "namespace": {"type": "string"},
                        "objects": _COUNT,
                        "bytes": _COUNT,
                    }
                ),
            },
        }
    ),
    "Presign": {
        "type": "object",
        "additionalProperties": False,
        "required": ["method", "tenant"],
        "description": "Name the object by `namespace` and `key`, or by `id` (GET/HEAD only).",
        "properties": {
            "method": {"type": "string", "enum": ["GET", "HEAD", "PUT"]},
            "tenant": NAME,
            "namespace": NAME,
            "key": {"type": "string", "minLength": 1},
            "id": {"type": "string", "format": "uuid"},
            "expires_in": {"type": "integer", "minimum": 1, "maximum": 604800, "default": 3600},
        },
    },
    "PresignedUrl": _record(
        {
            "url": {"type": "string"},
            "method": {"type": "string", "enum": ["GET", "HEAD", "PUT"]},
            "expires_at": {"type": "string", "format": "date-time"},
        }
    ),
    "WhoAmI": _record(
        {
            "subject": {"type": "string"},
            "tenants": {"type": "array", "items": {"type": "string"}},
            "scopes": {"type": "array", "items": {"type": "string", "enum": _SCOPES}},
        }
    ),
    "Error": _record(
        {
            "error": _record(
                {
                    "code": {"type": "string", "enum": list(STATUS_OF_CODE)},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                }
            )
        }
    ),
    # Open objects: a check or a field may be added without breaking a client.
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unavailable"]},
            "checks": {
                "type": "object",
                "required": ["database", "hot", "cold"],
                "properties": {
                    "database": {"type": "string"},
                    "hot": {"type": "string"},
                    "cold": {"type": "string"},
                },
            },
        },
    },
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key or a JWT (HS256, RS256 or ES256 as configured).",
    }
}

# Every operation carries exactly one of these; docs/api.md has a section for each.
TAGS: list[dict[str, str]] = [
    {"name": "objects", "description": "Upload, download, list and delete objects."},
    {"name": "usage", "description": "A tenant's stored bytes and their monthly cost."},
    {"name": "credentials", "description": "What the caller's own credential holds."},
    {"name": "operations", "description": "Liveness, readiness and metrics; no credentials."},
    {"name": "documentation", "description": "This description, as JSON and as a page."},
]
