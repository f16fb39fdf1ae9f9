"""/v1 handlers: parse the request, call one use case, render the answer.

No handler catches domain errors: `api.errors` maps them. Every handler gets the
authenticated Principal from `authenticated()` in `api.app`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from juststorage.api import parsing
from juststorage.api.accel import mapping_for
from juststorage.api.errors import rate_limit_headers
from juststorage.api.middleware import add_response_headers, label_namespace
from juststorage.api.presign import is_presigned, presigned_tenant
from juststorage.api.rendering import (
    STATUS_OF_ANSWER,
    JsonResponse,
    cache_control,
    content_disposition,
    download_headers,
    usage_json,
)
from juststorage.api.responses import BlobResponse
from juststorage.api.state import api_state
from juststorage.application import by_hash
from juststorage.application.deletes import delete_object, delete_versions
from juststorage.application.downloads import (
    DownloadAnswer,
    find_by_id,
    find_newest,
    open_blob,
    plan_download,
)
from juststorage.application.listing import list_objects
from juststorage.application.records import LocatedVersion
from juststorage.application.summaries import summarize
from juststorage.application.uploads import UploadRequest
from juststorage.application.usage import tenant_usage
from juststorage.bootstrap import Services
from juststorage.domain.auth import Principal, Scope
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import BadRequest, TooManyRequests
from juststorage.domain.model import Namespace, ObjectKey, ObjectVersion, TenantId

Reply = Response | BlobResponse


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _admit(request: Request, tenant: TenantId, namespace: str | None = None) -> Services:
    """Name the tenant and namespace in the request log, then apply the tenant's
    request-rate limit (metrics labels come later, from `label_namespace`).

    A tenant with a request rate gets `X-RateLimit-*` headers on every answer.
    """
    request.scope["state"]["tenant"] = tenant  # for the request log
    if namespace is not None:
        request.scope["state"]["namespace"] = namespace
    services = _services(request)
    try:
        status = await api_state(request).throttle.admit_request(tenant)
    except TooManyRequests:
        services.metrics.throttled.labels(tenant).inc()
        raise
    if status is not None:
        add_response_headers(request.scope, rate_limit_headers(status))
    return services


def _upload_request(
    request: Request, tenant: TenantId, namespace: Namespace, key: ObjectKey
) -> UploadRequest:
    return UploadRequest(
        tenant_id=tenant,
        namespace=namespace,
        key=key,
        storage_class=parsing.storage_class_header(request),
        content_type=parsing.content_type_header(request),
        declared_size=parsing.content_length_header(request),
        expected_hash=parsing.checksum_header(request),
        precondition=WritePrecondition.from_headers(
            request.headers.get("if-none-match"), request.headers.get("if-match")
        ),
    )


def _created(version: ObjectVersion) -> Response:
    return JsonResponse(
        summarize(version),
        status_code=201,
        headers={"Location": f"/v1/objects/{version.id}", "ETag": version.content_hash.etag},
    )


async def upload(request: Request, principal: Principal) -> Response:
    tenant = parsing.tenant_header(request)
    namespace = Namespace(parsing.required_header(request, "x-namespace"))
    key = parsing.key_header(request)
    return await _upload(request, principal, tenant, namespace, key)


async def put_by_key(request: Request, principal: Principal) -> Response:
    """SPEC §8.5: the upload of `POST /v1/objects` with the names from the path."""
    namespace, tenant, key = parsing.by_key_params(request)
    return await _upload(request, principal, tenant, namespace, key)


async def _upload(
    request: Request,
    principal: Principal,
    tenant: TenantId,
    namespace: Namespace,
    key: ObjectKey,
) -> Response:
    principal.authorize(Scope.OBJECTS_WRITE, tenant)
    services = await _admit(request, tenant, namespace)
    upload_request = _upload_request(request, tenant, namespace, key)
    try:
        admitted = await api_state(request).throttle.admit_upload(
            tenant, upload_request.declared_size
        )
    except TooManyRequests:
        services.metrics.throttled.labels(tenant).inc()
        raise
    try:
        result = await services.uploader.upload(
            upload_request, _counted(request.stream(), admitted.count)
        )
    finally:
        await admitted.done()
    version = result.version
    label_namespace(request.scope, version.namespace)
    services.metrics.uploaded_bytes.inc(version.size_bytes)
    if result.deduplicated:
        services.metrics.dedup_hits.inc()
        services.metrics.dedup_bytes_saved.inc(version.size_bytes)
    return _created(version)


async def upload_by_hash(request: Request, principal: Principal) -> Response:
    tenant = parsing.tenant_header(request)
    namespace = Namespace(parsing.required_header(request, "x-namespace"))
    key = parsing.key_header(request)
    principal.authorize(Scope.OBJECTS_WRITE, tenant)
    services = await _admit(request, tenant, namespace)
    upload_request = _upload_request(request, tenant, namespace, key)
    claimed = (parsing.required_checksum_header(request), parsing.content_length_claim(request))
    await _refuse_body(request)
    result = await by_hash.upload_by_hash(services.uploader, upload_request, *claimed)
    version = result.version
    label_namespace(request.scope, version.namespace)
    services.metrics.dedup_hits.inc()  # no bytes received: the whole object is a dedup hit
    services.metrics.dedup_bytes_saved.inc(version.size_bytes)
    return _created(version)


async def _refuse_body(
    request: Request, problem: str = "POST /v1/objects/by-hash takes no body"
) -> None:
    """A request that has no body (an upload by hash, a session's creation): one is a
    client that meant another route."""
    if parsing.content_length_header(request) or "transfer-encoding" in request.headers:
        async for chunk in request.stream():
            if chunk:
                raise BadRequest(problem)


async def _counted(
    body: AsyncIterator[bytes], count: Callable[[int], Awaitable[None]]
) -> AsyncIterator[bytes]:
    async for chunk in body:
        if chunk:
            await count(len(chunk))
            yield chunk


async def get_by_id(request: Request, principal: Principal) -> Reply:
    # A presigned URL by id carries its tenant (SPEC §8.5).
    tenant = presigned_tenant(request) or parsing.tenant_header(request)
    principal.authorize_read(tenant)
    services = await _admit(request, tenant)
    found = await find_by_id(
        services.metadata,
        tenant,
        parsing.object_id_param(request),
        with_bytes=request.method != "HEAD",  # a HEAD sends none: inline bytes not read
    )
    return await _download(request, services, found)


async def get_by_key(request: Request, principal: Principal) -> Reply:
    namespace, tenant, key = parsing.by_key_params(request)
    principal.authorize_read(tenant)
    services = await _admit(request, tenant, namespace)
    found = await find_newest(
        services.metadata, tenant, namespace, key, with_bytes=request.method != "HEAD"
    )
    return await _download(request, services, found)


async def _download(request: Request, services: Services, found: LocatedVersion) -> Reply:
    version = found.version
    request.scope["state"]["namespace"] = version.namespace
    label_namespace(request.scope, version.namespace)
    plan = plan_download(
        version,
        range_header=request.headers.get("range"),
        if_none_match=request.headers.get("if-none-match"),
    )
    headers = download_headers(plan)
    presigned = is_presigned(request)
    inline = not presigned and request.query_params.get("disposition") == "inline"
    headers.append(content_disposition(version.key, inline=inline))
    headers.append(cache_control(presigned=presigned))
    status = STATUS_OF_ANSWER[plan.answer]
    if plan.answer is DownloadAnswer.NOT_MODIFIED or request.method == "HEAD":
        return BlobResponse(status, headers, None)
    first = plan.byte_range.first if plan.byte_range else 0
    reader = await open_blob(services.blobs, found, first=first, length=plan.body_length)
    return BlobResponse(
        status,
        headers,
        reader,
        first=first,
        length=plan.body_length,
        whole=plan.byte_range is None,
        on_sent=services.metrics.downloaded_bytes.inc,
        accel=mapping_for(request.headers) if services.settings.accel_redirect else None,
    )


async def delete_by_id(request: Request, principal: Principal) -> Response:
    tenant = parsing.tenant_header(request)
    principal.authorize(Scope.OBJECTS_DELETE, tenant)
    services = await _admit(request, tenant)
    version = await delete_object(services.metadata, tenant, parsing.object_id_param(request))
    request.scope["state"]["namespace"] = version.namespace
    label_namespace(request.scope, version.namespace)
    return Response(status_code=204)


async def delete_by_key(request: Request, principal: Principal) -> Response:
    namespace, tenant, key = parsing.by_key_params(request)
    principal.authorize(Scope.OBJECTS_DELETE, tenant)
    services = await _admit(request, tenant, namespace)
    await delete_versions(services.metadata, tenant, namespace, key)  # NotFound if none
    label_namespace(request.scope, namespace)
    return Response(status_code=204)


async def list_(request: Request, principal: Principal) -> Response:
    query = parsing.list_query(request)
    principal.authorize(Scope.OBJECTS_READ, query.tenant_id)
    services = await _admit(request, query.tenant_id, query.namespace)
    page = await list_objects(services.metadata, query)
    if page.items:  # an empty page names a namespace that may hold nothing
        label_namespace(request.scope, query.namespace)
    body: dict[str, object] = {"items": page.items}
    if query.delimiter is not None:  # SPEC §8.4; §2's answer is unchanged without one
        body["common_prefixes"] = page.common_prefixes
    body["next_cursor"] = page.next_cursor
    return JsonResponse(body)


async def usage(request: Request, principal: Principal) -> Response:
    tenant = TenantId(parsing.required_query(request, "tenant"))
    principal.authorize(Scope.USAGE_READ, tenant)
    services = await _admit(request, tenant)
    result = await tenant_usage(
        services.metadata,
        tenant,
        prices_gb_month=services.prices_gb_month,
        currency=services.settings.currency,
    )
    return JSONResponse(usage_json(result))
