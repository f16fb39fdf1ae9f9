"""`GET /v1/whoami`: what the caller's own credential holds.

Any valid credential may ask, whatever its scopes: the answer names only what the
caller presented (its subject, tenants and scopes), never another credential or
another tenant, so it reveals nothing the caller could not read from its own key
or token.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from juststorage.domain.auth import Principal


async def whoami(request: Request, principal: Principal) -> Response:
    return JSONResponse(
        {
            "subject": principal.subject,
            "tenants": sorted(principal.tenants),
            "scopes": sorted(scope.value for scope in principal.scopes),
        }
    )
