"""`GET /v1/namespaces?tenant=…`: the namespaces of a tenant that hold objects.

What a browser (the web console) or a script needs to start browsing a tenant it
holds without knowing its namespace names. Needs `objects:read` and the tenant,
like a listing; the counts come from counters, so the answer costs the same however
many objects the namespaces hold.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from juststorage.api import parsing
from juststorage.api.objects import _admit
from juststorage.application.usage import tenant_namespaces
from juststorage.domain.auth import Principal, Scope
from juststorage.domain.model import TenantId


async def list_namespaces(request: Request, principal: Principal) -> Response:
    tenant = TenantId(parsing.required_query(request, "tenant"))
    principal.authorize(Scope.OBJECTS_READ, tenant)
    services = await _admit(request, tenant)
    rows = await tenant_namespaces(services.metadata, tenant)
    return JSONResponse(
        {
            "tenant_id": str(tenant),
            "namespaces": [
                {"namespace": r.namespace, "objects": r.objects, "bytes": r.size_bytes}
                for r in rows
            ],
        }
    )
