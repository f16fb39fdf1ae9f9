"""Who is calling, and the pure rules of what they may do (SPEC §3)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from juststorage.domain.errors import BadRequest, Forbidden, NotFound
from juststorage.domain.model import TenantId

ALL_TENANTS = "*"


class Scope(enum.StrEnum):
    OBJECTS_READ = "objects:read"
    OBJECTS_WRITE = "objects:write"
    OBJECTS_DELETE = "objects:delete"
    USAGE_READ = "usage:read"
    ADMIN = "admin"

    @classmethod
    def parse_many(cls, raw: Iterable[str]) -> frozenset[Scope]:
        scopes = set()
        for item in raw:
            try:
                scopes.add(cls(item))
            except ValueError:
                known = ", ".join(s.value for s in cls)
                raise BadRequest(f"unknown scope {item!r}; known: {known}") from None
        return frozenset(scopes)


def parse_tenants(raw: Iterable[str]) -> frozenset[str]:
    """Validate tenant names; `*` stands for every tenant."""
    tenants = set()
    for item in raw:
        tenants.add(ALL_TENANTS if item == ALL_TENANTS else str(TenantId(item)))
    if not tenants:
        raise BadRequest("a credential needs at least one tenant")
    return frozenset(tenants)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the tenants it holds and the scopes it has."""

    subject: str
    tenants: frozenset[str]
    scopes: frozenset[Scope]

    def holds_tenant(self, tenant: str) -> bool:
        return ALL_TENANTS in self.tenants or tenant in self.tenants

    def has_scope(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes

    def require_scope(self, scope: Scope) -> None:
        if not self.has_scope(scope):
            raise Forbidden(f"the credential lacks the scope {scope.value}")

    def authorize_read(self, tenant: str) -> None:
        """Reads of one object: a tenant not held is 404, so existence does not leak."""
        self.require_scope(Scope.OBJECTS_READ)
        if not self.holds_tenant(tenant):
            raise NotFound("no such object")

    def authorize(self, scope: Scope, tenant: str) -> None:
        """Uploads, deletes, lists and usage: a tenant not held is 403."""
        self.require_scope(scope)
        if not self.holds_tenant(tenant):
            raise Forbidden(f"the credential does not hold tenant {tenant!r}")


ANONYMOUS_ADMIN = Principal("auth-disabled", frozenset({ALL_TENANTS}), frozenset({Scope.ADMIN}))
