"""/v1/uploads handlers: resumable multipart upload sessions (SPEC §8.2).

Every call needs `objects:write`. By id, the caller may name its tenant with
`X-Tenant` (then a tenant the credential does not hold is 403, as for an upload);
without it, the session's own tenant is used. Either way a session of a tenant other
than the one named, or of one the credential does not hold, is 404: existence does
not leak. No handler catches domain errors (`api.errors` maps them).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response

from juststorage.api import parsing
from juststorage.api.middleware import label_namespace
from juststorage.api.objects import _admit, _counted, _refuse_body
from juststorage.api.rendering import JsonResponse
from juststorage.api.state import api_state
from juststorage.application.session_records import SessionPart, UploadSession
from juststorage.application.sessions import SessionRequest
from juststorage.application.summaries import summarize
from juststorage.bootstrap import Services
from juststorage.domain.auth import Principal, Scope
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import BadRequest, NotFound, PayloadTooLarge, TooManyRequests
from juststorage.domain.model import Namespace, TenantId
from juststorage.domain.timestamps import utc_text

_NO_SESSION = "no such upload session"
_MAX_COMPLETE_BODY = 1024 * 1024  # 10000 part numbers fit many times over
_MAX_PART_DIGITS = 5
_MAX_PAGE = 1000


def part_json(part: SessionPart) -> dict[str, Any]:
    return {"part": part.number, "size_bytes": part.size_bytes, "sha256": part.sha256.hex}


def session_json(session: UploadSession) -> dict[str, Any]:
    return {
        "upload_id": str(session.id),
        "tenant_id": str(session.tenant_id),
        "namespace": str(session.namespace),
        "key": str(session.key),
        "storage_class": session.storage_class.value,
        "content_type": session.content_type,
        "state": session.state.value,
        "created_at": utc_text(session.created_at),
        "expires_at": utc_text(session.expires_at),
        "parts": [part_json(p) for p in session.parts],
    }


def _session_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["upload_id"])
    except ValueError:
        raise NotFound(_NO_SESSION) from None


def _part_number(request: Request) -> int:
    raw: str = request.path_params["n"]
    problem = "the part number must be an integer from 1 to 10000"
    if not raw.isascii() or not raw.isdigit() or len(raw.lstrip("0")) > _MAX_PART_DIGITS:
        raise BadRequest(problem)
    number = int(raw)
    if not 1 <= number <= 10000:
        raise BadRequest(problem)
    return number


async def _session_tenant(
    request: Request, principal: Principal, session_id: UUID
) -> tuple[Services, TenantId]:
    """The tenant the call acts for, authorised, and the services (rate-limited)."""
    services: Services = request.app.state.services
    if request.headers.get("x-tenant") is not None:
        tenant = parsing.tenant_header(request)
        principal.authorize(Scope.OBJECTS_WRITE, tenant)
    else:
        principal.require_scope(Scope.OBJECTS_WRITE)
        async with services.metadata.snapshot() as view:
            session = await view.sessions.session(session_id, with_parts=False)
        if session is None or not principal.holds_tenant(session.tenant_id):
            raise NotFound(_NO_SESSION)
        tenant = session.tenant_id
    return await _admit(request, tenant), tenant


async def create(request: Request, principal: Principal) -> Response:
    tenant = parsing.tenant_header(request)
    namespace = Namespace(parsing.required_header(request, "x-namespace"))
    key = parsing.key_header(request)
    principal.authorize(Scope.OBJECTS_WRITE, tenant)
    services = await _admit(request, tenant, namespace)
    await _refuse_body(request, "POST /v1/uploads takes no body: parts go to PUT …/parts/{n}")
    session = await services.sessions.create(
        SessionRequest(
            tenant_id=tenant,
            namespace=namespace,
            key=key,
            storage_class=parsing.storage_class_header(request),
            content_type=parsing.content_type_header(request),
            expected_hash=parsing.checksum_header(request),
            precondition=WritePrecondition.from_headers(
                request.headers.get("if-none-match"), request.headers.get("if-match")
            ),
        )
    )
    label_namespace(request.scope, namespace)
    return JsonResponse(
        session_json(session),
        status_code=201,
        headers={"Location": f"/v1/uploads/{session.id}"},
    )


async def put_part(request: Request, principal: Principal) -> Response:
    session_id = _session_id(request)
    number = _part_number(request)
    services, tenant = await _session_tenant(request, principal, session_id)
    declared = parsing.content_length_header(request)
    expected = parsing.checksum_header(request)
    try:
        admitted = await api_state(request).throttle.admit_upload(tenant, declared)
    except TooManyRequests:
        services.metrics.throttled.labels(tenant).inc()
        raise
    try:
        part = await services.sessions.put_part(
            tenant,
            session_id,
            number,
            _counted(request.stream(), admitted.count),
            declared_size=declared,
            expected_hash=expected,
        )
    finally:
        await admitted.done()
    services.metrics.uploaded_bytes.inc(part.size_bytes)
    return JsonResponse(part_json(part))


async def get(request: Request, principal: Principal) -> Response:
    session_id = _session_id(request)
    services, tenant = await _session_tenant(request, principal, session_id)
    return JsonResponse(session_json(await services.sessions.get(tenant, session_id)))


async def list_(request: Request, principal: Principal) -> Response:
    tenant = TenantId(parsing.required_query(request, "tenant"))
    namespace = Namespace(parsing.required_query(request, "namespace"))
    limit, cursor = _page_params(request)
    principal.authorize(Scope.OBJECTS_WRITE, tenant)
    services = await _admit(request, tenant, namespace)
    sessions, next_cursor = await services.sessions.list_open(tenant, namespace, limit, cursor)
    return JsonResponse({"items": [session_json(s) for s in sessions], "next_cursor": next_cursor})


def _page_params(request: Request) -> tuple[int, str | None]:
    """`limit` (1-1000, default 100) and `cursor`, as §2 List takes them."""
    params = request.query_params
    if len(params.getlist("limit")) > 1 or len(params.getlist("cursor")) > 1:
        raise BadRequest("limit and cursor may be given once each")
    raw = params.get("limit")
    limit = 100
    if raw is not None:
        problem = f"limit must be an integer from 1 to {_MAX_PAGE}"
        if not raw.isascii() or not raw.isdigit() or len(raw) > 4:
            raise BadRequest(problem)
        limit = int(raw)
        if not 1 <= limit <= _MAX_PAGE:
            raise BadRequest(problem)
    return limit, params.get("cursor") or None


async def complete(request: Request, principal: Principal) -> Response:
    session_id = _session_id(request)
    services, tenant = await _session_tenant(request, principal, session_id)
    numbers = await _complete_body(request)
    done = await services.sessions.complete(tenant, session_id, numbers)
    version = done.version
    label_namespace(request.scope, version.namespace)
    return JsonResponse(
        summarize(version),
        status_code=201 if done.created else 200,
        headers={"Location": f"/v1/objects/{version.id}", "ETag": version.content_hash.etag},
    )


async def abort(request: Request, principal: Principal) -> Response:
    session_id = _session_id(request)
    services, tenant = await _session_tenant(request, principal, session_id)
    await services.sessions.abort(tenant, session_id)
    return Response(status_code=204)


async def _complete_body(request: Request) -> list[int] | None:
    """`{"parts": [1, 2, …]}`, or None for an empty body (every received part)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_COMPLETE_BODY:
            raise PayloadTooLarge("the completion body is too large")
    if not body.strip():
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest('the completion body must be JSON: {"parts": [1, 2, ...]}') from None
    parts = value.get("parts") if isinstance(value, dict) else None
    if parts is None and isinstance(value, dict) and set(value) <= {"parts"}:
        return None
    if not isinstance(parts, list) or not all(
        type(n) is int
        for n in parts  # not bool, not float
    ):
        raise BadRequest('"parts" must be a list of part numbers')
    return list(parts)
