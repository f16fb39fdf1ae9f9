"""`POST /v1/presign` and the check of a presigned request (SPEC §8.5).

A presigned URL is the object's ordinary /v1 path (by key, or by id) with the query
parameters `js-expires` (Unix seconds), `js-credential` (the issuer's name),
`js-signature` and, by id, `js-tenant`. See `application.presign` for what is signed.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from urllib.parse import quote, urlencode
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response

from juststorage.api import parsing
from juststorage.api.rendering import JsonResponse
from juststorage.application.apikeys import parse_bootstrap_keys
from juststorage.application.presign import (
    METHODS,
    SCOPE_OF_METHOD,
    Presigner,
    Target,
    expires_in_of,
)
from juststorage.bootstrap import Services, s3_master_key
from juststorage.domain.auth import Principal
from juststorage.domain.errors import BadRequest, Forbidden, NotFound, Unauthorized
from juststorage.domain.model import Namespace, ObjectKey, TenantId
from juststorage.domain.timestamps import utc_text

EXPIRES = "js-expires"
CREDENTIAL = "js-credential"
SIGNATURE = "js-signature"
TENANT = "js-tenant"
_PRESIGNED_TENANT = "presigned_tenant"
_MAX_BODY = 8192


def presigner(services: Services) -> Presigner:
    """The process's presigner, made on first use (it reads or creates the master key)."""
    found: Presigner | None = getattr(services, "_presigner", None)
    if found is None:
        settings = services.settings
        found = Presigner(
            s3_master_key(settings),
            services.metadata,
            bootstrap_keys=parse_bootstrap_keys(settings.api_keys),
            auth_enabled=settings.auth == "required",
            jwt_keys=tuple(k for k in (settings.jwt_secret, settings.jwt_public_key) if k),
        )
        services._presigner = found  # type: ignore[attr-defined]
    return found


def is_presigned(request: Request) -> bool:
    """Whether the request carries a presigned URL's signature."""
    return SIGNATURE in request.query_params


def presigned_tenant(request: Request) -> TenantId | None:
    """The tenant a verified presigned URL names (by id: instead of `X-Tenant`)."""
    tenant: TenantId | None = request.scope.get("state", {}).get(_PRESIGNED_TENANT)
    return tenant


async def presigned_principal(request: Request) -> Principal:
    """The principal a presigned request stands for: one tenant, the signed method's
    scope.

    Raises:
        Forbidden: a tampered, expired or revoked URL, whatever part is wrong.
    """
    services: Services = request.app.state.services
    query = request.query_params
    try:
        expires = int(_one(request, EXPIRES))
        credential = _one(request, CREDENTIAL)
        signature = _one(request, SIGNATURE)
        target = _target_of(request)
    except (BadRequest, NotFound, ValueError):
        raise Forbidden("the presigned URL is invalid") from None
    if "object_id" in request.path_params and TENANT not in query:
        raise Forbidden("the presigned URL is invalid")
    now = services.clock.now().timestamp()
    principal = await presigner(services).verify(
        request.method, target, expires, credential, signature, now
    )
    request.scope["state"][_PRESIGNED_TENANT] = target.tenant
    return principal


def _one(request: Request, name: str) -> str:
    values = request.query_params.getlist(name)
    if len(values) != 1 or not values[0] or len(values[0]) > 512:
        raise BadRequest(f"{name} must be given once")
    return values[0]


def _target_of(request: Request) -> Target:
    if "object_id" in request.path_params:
        return Target(
            TenantId(_one(request, TENANT)), object_id=UUID(request.path_params["object_id"])
        )
    namespace, tenant, key = parsing.by_key_params(request)
    return Target(tenant, namespace=namespace, key=key)


async def create(request: Request, principal: Principal) -> Response:
    """`POST /v1/presign` → `200 {"url", "method", "expires_at"}`."""
    from juststorage.api.objects import _admit  # imports this module

    body = await _json_body(request)
    method = body.get("method")
    if method not in METHODS:
        raise BadRequest("method must be GET, HEAD or PUT")
    target = _requested_target(body, method)
    expires_in = expires_in_of(body.get("expires_in"))
    principal.authorize(SCOPE_OF_METHOD[method], target.tenant)
    services = await _admit(request, target.tenant, target.namespace)
    signer = presigner(services)
    issuer = signer.issuer_of(_bearer(request), principal, _jwt_exp(_bearer(request)))
    now = int(services.clock.now().timestamp())
    expires = now + expires_in
    if issuer.not_after is not None:
        expires = min(expires, issuer.not_after)  # never outlives the JWT
        if expires <= now:  # a JWT past its exp, still within the verifier's leeway
            raise Unauthorized("token expired")
    signature = signer.sign(method, target, expires, issuer)
    query = {EXPIRES: str(expires), CREDENTIAL: issuer.credential, SIGNATURE: signature}
    if target.object_id is not None:
        path = f"/v1/objects/{target.object_id}"
        query = {TENANT: target.tenant, **query}
    else:
        assert target.namespace is not None and target.key is not None
        path = (
            f"/v1/objects/by-key/{quote(target.namespace, safe='')}/"
            f"{quote(target.tenant, safe='')}/{quote(target.key, safe='')}"
        )
    url = f"{services.settings.public_url or ''}{path}?{urlencode(query, quote_via=quote)}"
    expires_at = utc_text(datetime.fromtimestamp(expires, UTC))
    return JsonResponse({"url": url, "method": method, "expires_at": expires_at})


async def _json_body(request: Request) -> dict[str, object]:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > _MAX_BODY:
            raise BadRequest(f"the body must be a JSON object of at most {_MAX_BODY} bytes")
    try:
        # orjson, as for every JSON body: it refuses nesting deeper than 1024, lone
        # surrogates and NaN with JSONDecodeError (json.loads would recurse into a 500).
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = set(body) - {"method", "tenant", "namespace", "key", "id", "expires_in"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    return body


def _text(body: dict[str, object], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{name} must be a non-empty string")
    return value


def _requested_target(body: dict[str, object], method: str) -> Target:
    tenant = TenantId(_text(body, "tenant"))
    if "id" in body:
        if "key" in body or "namespace" in body:
            raise BadRequest("give either id, or namespace and key")
        if method == "PUT":
            raise BadRequest("a PUT URL names a key, not an id")
        try:
            object_id = UUID(_text(body, "id"))
        except ValueError:
            raise BadRequest("id must be a UUID") from None
        return Target(tenant, object_id=object_id)
    return Target(
        tenant, namespace=Namespace(_text(body, "namespace")), key=ObjectKey(_text(body, "key"))
    )


def _bearer(request: Request) -> str | None:
    scheme, _, credential = (request.headers.get("authorization") or "").strip().partition(" ")
    return credential.strip() if scheme.lower() == "bearer" and credential.strip() else None


def _jwt_exp(credential: str | None) -> int | None:
    """The `exp` of a JWT the authenticator accepted (so its signature was checked)."""
    if credential is None or credential.count(".") != 2:
        return None
    payload = credential.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return int(claims["exp"])
    except (ValueError, KeyError, TypeError, binascii.Error):  # JSONDecodeError too
        return None
