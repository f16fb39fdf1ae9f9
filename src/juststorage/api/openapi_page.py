"""`/docs`: the OpenAPI document as one HTML page, rendered here, no JavaScript.

The page is built once from `openapi.openapi_document()`, so it cannot drift from
`/openapi.json`. Its only asset is a style sheet shipped in the package
(`api/static/docs.css`, served under `/docs/assets/`): nothing is loaded from
another host, and the Content-Security-Policy forbids it. Like `/openapi.json`
it needs no credential: it describes the public API and holds no data.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from juststorage.api.openapi import openapi_document

ASSETS_PATH = "/docs/assets"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_CODE = re.compile(r"`([^`]+)`")
_METHODS = ("get", "head", "post", "put", "patch", "delete")


def assets() -> StaticFiles:
    """The page's static files, from the installed package."""
    return StaticFiles(packages=[("juststorage.api", "static")])


async def api_page(request: Request) -> Response:
    return HTMLResponse(render_page(), headers=_HEADERS)


def _text(value: object) -> str:
    """Escaped text, with `backticks` shown as code."""
    return _CODE.sub(r"<code>\1</code>", html.escape(str(value)))


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9]+", "-", part).strip("-") for part in parts)


def _schema(schema: dict[str, Any]) -> str:
    """One schema as a short line: a link to a named schema, or its type and bounds."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#{_anchor("schema", name)}">{html.escape(name)}</a>'
    if schema.get("type") == "array":
        return "array of " + _schema(schema.get("items", {}))
    words = [html.escape(str(schema.get("type", "any")))]
    if "format" in schema:
        words.append(f"({html.escape(schema['format'])})")
    if "enum" in schema:
        words.append(
            "one of " + ", ".join(f"<code>{html.escape(str(v))}</code>" for v in schema["enum"])
        )
    if "pattern" in schema:
        words.append(f"matching <code>{html.escape(schema['pattern'])}</code>")
    if "minimum" in schema and "maximum" in schema:
        words.append(f"from {schema['minimum']} to {schema['maximum']}")
    elif "minimum" in schema:
        words.append(f"≥ {schema['minimum']}")
    if "minLength" in schema:
        words.append(f"of length ≥ {schema['minLength']}")
    if schema.get("nullable"):
        words.append("or null")
    return " ".join(words)


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    if not rows:
        return ""
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _parameters(operation: dict[str, Any]) -> str:
    rows = [
        (
            f"<code>{html.escape(p['name'])}</code>",
            html.escape(p["in"]),
            "yes" if p.get("required") else "",
            _schema(p.get("schema", {}))
            + (" — " + _text(p["description"]) if "description" in p else ""),
        )
        for p in operation.get("parameters", [])
    ]
    table = _table(("parameter", "in", "required", "value"), rows)
    return f"<h4>Parameters</h4>{table}" if table else ""


def _request_body(operation: dict[str, Any]) -> str:
    body = operation.get("requestBody")
    if body is None:
        return ""
    kinds = ", ".join(f"<code>{html.escape(kind)}</code>" for kind in body.get("content", {}))
    required = "required" if body.get("required") else "optional"
    return f"<h4>Request body</h4><p>{required}: {kinds}</p>"


def _responses(operation: dict[str, Any]) -> str:
    rows = []
    for status, response in operation["responses"].items():
        content = response.get("content", {})
        bodies = ", ".join(
            f"<code>{html.escape(kind)}</code> {_schema(media.get('schema', {}))}"
            for kind, media in content.items()
        )
        headers = ", ".join(f"<code>{html.escape(h)}</code>" for h in response.get("headers", {}))
        rows.append(
            (f"<b>{html.escape(status)}</b>", _text(response["description"]), bodies, headers)
        )
    return "<h4>Responses</h4>" + _table(("status", "meaning", "body", "headers"), rows)


def _operation(path: str, method: str, operation: dict[str, Any], public: bool) -> str:
    anchor = _anchor(operation["operationId"])
    credential = "no credential" if public else "<code>Authorization: Bearer</code>"
    return (
        f'<section class="operation" id="{anchor}">'
        f'<h3><span class="method {method}">{method.upper()}</span> '
        f"<code>{html.escape(path)}</code></h3>"
        f"<p>{_text(operation['summary'])}. <small>operationId "
        f"<code>{html.escape(operation['operationId'])}</code>; {credential}</small></p>"
        f"{_parameters(operation)}{_request_body(operation)}{_responses(operation)}</section>"
    )


def _operations_by_tag(document: dict[str, Any]) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {tag["name"]: [] for tag in document.get("tags", [])}
    for path, item in document["paths"].items():
        for method in _METHODS:
            if method in item:
                operation = item[method]
                public = operation.get("security", document.get("security")) == []
                tag = operation["tags"][0]
                sections.setdefault(tag, []).append(_operation(path, method, operation, public))
    return sections


def _fields(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, str, str]]:
    """One row per property; the properties of a nested object follow it, dotted."""
    required = set(schema.get("required", []))
    rows = []
    for field, sub in schema.get("properties", {}).items():
        name = prefix + field
        rows.append(
            (f"<code>{html.escape(name)}</code>", "yes" if field in required else "", _schema(sub))
        )
        rows.extend(_fields(sub, name + "."))
    return rows


def _schemas(document: dict[str, Any]) -> str:
    return "".join(
        f'<section id="{_anchor("schema", name)}"><h3>{html.escape(name)}</h3>'
        f"{_table(('field', 'required', 'value'), _fields(schema))}</section>"
        for name, schema in document["components"]["schemas"].items()
    )


@functools.cache
def render_page() -> str:
    """The whole page (the document is static, so it is rendered once)."""
    document = openapi_document()
    info = document["info"]
    descriptions = {tag["name"]: tag["description"] for tag in document.get("tags", [])}
    sections = _operations_by_tag(document)
    toc = "".join(
        f'<li><a href="#{_anchor("tag", tag)}">{html.escape(tag)}</a></li>' for tag in sections
    )
    body = "".join(
        f'<h2 id="{_anchor("tag", tag)}">{html.escape(tag)}</h2>'
        f"<p>{_text(descriptions.get(tag, ''))}</p>{''.join(operations)}"
        for tag, operations in sections.items()
    )
    schemes = "".join(
        f"<li><code>{html.escape(name)}</code>: {_text(scheme.get('description', ''))}</li>"
        for name, scheme in document["components"]["securitySchemes"].items()
    )
    title = html.escape(f"{info['title']} API {info['version']}")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title>"
        f'<link rel="stylesheet" href="{ASSETS_PATH.lstrip("/")}/docs.css"></head><body>'
        f"<header><h1>{title}</h1><p>{_text(info['description'])}</p>"
        '<p>Machine-readable: <a href="openapi.json">openapi.json</a> (OpenAPI '
        f"{html.escape(document['openapi'])}).</p>"
        f'<nav><ul>{toc}<li><a href="#schemas">schemas</a></li></ul></nav></header>'
        f"<main><h2>Credentials</h2><p>Every operation needs "
        f"<code>Authorization: Bearer &lt;credential&gt;</code> unless it says otherwise.</p>"
        f"<ul>{schemes}</ul>{body}"
        f'<h2 id="schemas">Schemas</h2>{_schemas(document)}</main></body></html>'
    )
