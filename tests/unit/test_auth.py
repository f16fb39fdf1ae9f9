from __future__ import annotations

import pytest

from juststorage.application.apikeys import hash_key, parse_bootstrap_keys
from juststorage.domain.auth import ALL_TENANTS, Principal, Scope, parse_tenants
from juststorage.domain.errors import BadRequest, Forbidden, NotFound

READ, WRITE, DELETE, USAGE, ADMIN = (
    Scope.OBJECTS_READ,
    Scope.OBJECTS_WRITE,
    Scope.OBJECTS_DELETE,
    Scope.USAGE_READ,
    Scope.ADMIN,
)


def principal(tenants: set[str], scopes: set[Scope]) -> Principal:
    return Principal("test", frozenset(tenants), frozenset(scopes))


def test_reads_of_a_tenant_not_held_are_404() -> None:
    reader = principal({"acme"}, {READ})
    reader.authorize_read("acme")
    with pytest.raises(NotFound):
        reader.authorize_read("other")


def test_reads_without_the_read_scope_are_403() -> None:
    writer = principal({"acme"}, {WRITE})
    with pytest.raises(Forbidden):
        writer.authorize_read("acme")


@pytest.mark.parametrize("scope", [WRITE, DELETE, READ, USAGE])
def test_writes_lists_and_usage_of_a_tenant_not_held_are_403(scope: Scope) -> None:
    holder = principal({"acme"}, {scope})
    holder.authorize(scope, "acme")
    with pytest.raises(Forbidden):
        holder.authorize(scope, "other")


@pytest.mark.parametrize("scope", [WRITE, DELETE, READ, USAGE])
def test_missing_scope_is_403_even_for_a_held_tenant(scope: Scope) -> None:
    others = set(Scope) - {scope, ADMIN}
    holder = principal({"acme"}, others)
    with pytest.raises(Forbidden, match=scope.value):
        holder.authorize(scope, "acme")


def test_admin_implies_every_scope() -> None:
    admin = principal({"acme"}, {ADMIN})
    for scope in Scope:
        assert admin.has_scope(scope)
        admin.authorize(scope, "acme")
    admin.authorize_read("acme")
    with pytest.raises(Forbidden):
        admin.authorize(WRITE, "other")  # admin of acme is not admin of every tenant


def test_star_holds_every_tenant() -> None:
    anyone = principal({ALL_TENANTS}, {READ})
    assert anyone.holds_tenant("acme") and anyone.holds_tenant("zeta")
    anyone.authorize_read("zeta")


def test_parse_tenants_and_scopes() -> None:
    assert parse_tenants(["acme", "*"]) == frozenset({"acme", "*"})
    with pytest.raises(BadRequest):
        parse_tenants([])
    with pytest.raises(BadRequest):
        parse_tenants(["Not Valid"])
    assert Scope.parse_many(["admin", "objects:read"]) == frozenset({ADMIN, READ})
    with pytest.raises(BadRequest, match="objects:list"):
        Scope.parse_many(["objects:list"])


# --- API_KEYS -------------------------------------------------------------------------


K1, K2 = "k1" + "1" * 30, "k2" + "2" * 30


def test_bootstrap_keys_split_at_the_first_two_colons() -> None:
    keys = parse_bootstrap_keys(f"{K1}:acme|beta:objects:read objects:write, {K2}:*:admin")
    assert [k.key_hash for k in keys] == [hash_key(K1), hash_key(K2)]
    assert keys[0].principal.tenants == frozenset({"acme", "beta"})
    assert keys[0].principal.scopes == frozenset({READ, WRITE})
    assert keys[1].principal.tenants == frozenset({ALL_TENANTS})
    assert keys[1].principal.scopes == frozenset({ADMIN})
    assert keys[0].principal.subject != keys[1].principal.subject


@pytest.mark.parametrize("raw", [None, "", " ", ",", " , ,"])
def test_no_bootstrap_keys(raw: str | None) -> None:
    assert parse_bootstrap_keys(raw) == []


SECRET = "s3cr3t-K3y-do-not-print-0123456789"


@pytest.mark.parametrize(
    "raw",
    [
        SECRET,
        f"{SECRET}:acme",
        f"{SECRET}::admin",
        f"{SECRET}:Bad Tenant:admin",
        f"{SECRET}:acme:objects:list",
        f"{SECRET}:acme:",
        f"{K1}:acme:admin,{SECRET}:acme",
        ":acme:admin",
        "s3cr3t-short:acme:admin",
        f"{K1}:acme:admin,{SECRET[:31]}:*:admin",
    ],
)
def test_bad_bootstrap_entries_fail_without_showing_the_key(raw: str) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_bootstrap_keys(raw)
    assert SECRET not in str(caught.value)
    assert SECRET not in caught.value.message
    assert "s3cr3t" not in repr(caught.value.args)


@pytest.mark.parametrize("length", [1, 16, 31])
def test_short_bootstrap_keys_are_refused_at_start(length: int) -> None:
    with pytest.raises(BadRequest, match="entry 2: the key must be at least 32 characters"):
        parse_bootstrap_keys(f"{K1}:acme:admin,{'x' * length}:acme:admin")
    assert parse_bootstrap_keys(f"{'x' * 32}:acme:admin")[0].principal.tenants == {"acme"}
