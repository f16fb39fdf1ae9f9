"""GET /v1/namespaces against the real server: a tenant's namespaces with objects."""

from __future__ import annotations

import pytest

from juststorage.testing import Server, StartServer

from .support import assert_error, by_key_path, unique_name, upload

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server()


def _namespaces(server: Server, tenant: str, key: str | None = None) -> list[dict[str, object]]:
    headers = {"Authorization": f"Bearer {key}"} if key else server.admin_headers()
    response = server.client.get("/v1/namespaces", params={"tenant": tenant}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant_id"] == tenant
    namespaces: list[dict[str, object]] = body["namespaces"]
    return namespaces


def test_namespaces_with_committed_versions_in_name_order(server: Server) -> None:
    tenant, other = unique_name(), unique_name()
    auth = server.admin_headers()
    for namespace, key, data in (
        ("models", "a.bin", b"12345"),
        ("models", "a.bin", b"1234567"),  # a second version counts
        ("files", "x", b"abc"),
        ("files-2", "y", b"z"),
        ("gone", "g", b"gg"),
    ):
        assert upload(server.client, auth, tenant, namespace, key, data).status_code == 201
    assert upload(server.client, auth, other, "secret", "s", b"s").status_code == 201
    deleted = server.client.delete(by_key_path("gone", tenant, "g"), headers=auth)
    assert deleted.status_code == 204

    assert _namespaces(server, tenant) == [
        {"namespace": "files", "objects": 1, "bytes": 3},
        {"namespace": "files-2", "objects": 1, "bytes": 1},
        {"namespace": "models", "objects": 2, "bytes": 12},
    ]
    assert _namespaces(server, other) == [{"namespace": "secret", "objects": 1, "bytes": 1}]
    assert _namespaces(server, unique_name()) == []


def test_namespaces_need_the_tenant_and_objects_read(server: Server) -> None:
    tenant = unique_name()
    auth = server.admin_headers()
    assert upload(server.client, auth, tenant, "ns", "k").status_code == 201
    reader = server.create_key([tenant], ["objects:read"])["key"]
    assert _namespaces(server, tenant, reader) == [{"namespace": "ns", "objects": 1, "bytes": 5}]

    def get(key: str, **params: str) -> object:
        headers = {"Authorization": f"Bearer {key}"}
        return server.client.get("/v1/namespaces", params=params, headers=headers)

    assert_error(get(reader, tenant=unique_name()), 403, "Forbidden")  # type: ignore[arg-type]
    usage_only = server.create_key([tenant], ["usage:read"])["key"]
    assert_error(get(usage_only, tenant=tenant), 403, "Forbidden")  # type: ignore[arg-type]
    assert_error(get(reader), 400, "BadRequest")  # type: ignore[arg-type]
    assert_error(get(reader, tenant="Not A Tenant"), 400, "BadRequest")  # type: ignore[arg-type]
    no_credential = server.client.get("/v1/namespaces", params={"tenant": tenant})
    assert_error(no_credential, 401, "Unauthorized")
