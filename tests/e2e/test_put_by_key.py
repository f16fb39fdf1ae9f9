"""`PUT /v1/objects/by-key/{namespace}/{tenant}/{key}` (SPEC §8.5): the upload of
`POST /v1/objects` with the names from the path."""

from __future__ import annotations

import httpx
import pytest

from juststorage.testing import StartServer

from .support import assert_error, by_key_path, sha256_hex, unique_name

pytestmark = pytest.mark.e2e


def test_put_by_key_stores_a_version_readable_by_key_and_id(start_server: StartServer) -> None:
    server = start_server()
    tenant, namespace = unique_name(), unique_name("ns")
    key = "dir/naïve file?#%.txt"  # `/`, non-ASCII and characters a URL must escape
    body = b"<p>hello</p>" * 100
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        auth = server.admin_headers()
        put = client.put(
            by_key_path(namespace, tenant, key, safe=""),
            headers={
                **auth,
                "Content-Type": "text/html",
                "X-Storage-Class": "cold",
                "X-Content-SHA256": sha256_hex(body),
            },
            content=body,
        )
        assert put.status_code == 201, put.text
        created = put.json()
        assert created["key"] == key
        assert (created["tenant_id"], created["namespace"]) == (tenant, namespace)
        assert created["storage_class"] == "cold"
        assert created["content_type"] == "text/html"
        assert put.headers["location"] == f"/v1/objects/{created['id']}"
        assert put.headers["etag"] == f'"sha256:{sha256_hex(body)}"'
        got = client.get(by_key_path(namespace, tenant, key), headers=auth)
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["x-object-id"] == created["id"]
        by_id = client.get(f"/v1/objects/{created['id']}", headers={**auth, "X-Tenant": tenant})
        assert by_id.content == body


def test_put_by_key_honours_the_upload_headers(start_server: StartServer) -> None:
    server = start_server()
    tenant, namespace = unique_name(), unique_name("ns")
    path = by_key_path(namespace, tenant, "k")
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        auth = server.admin_headers()
        first = client.put(path, headers={**auth, "If-None-Match": "*"}, content=b"one")
        assert first.status_code == 201
        again = client.put(path, headers={**auth, "If-None-Match": "*"}, content=b"two")
        assert_error(again, 412, "PreconditionFailed")
        stale = client.put(
            path, headers={**auth, "If-Match": f'"sha256:{"0" * 64}"'}, content=b"two"
        )
        assert_error(stale, 412, "PreconditionFailed")
        matching = client.put(
            path, headers={**auth, "If-Match": first.headers["etag"]}, content=b"two"
        )
        assert matching.status_code == 201
        wrong_sum = client.put(
            path, headers={**auth, "X-Content-SHA256": "0" * 64}, content=b"three"
        )
        assert_error(wrong_sum, 400, "ChecksumMismatch")
        assert client.get(path, headers=auth).content == b"two"


def test_put_by_key_refuses_bad_names_and_tenants_not_held(start_server: StartServer) -> None:
    server = start_server()
    tenant, namespace = unique_name(), unique_name("ns")
    writer = server.create_key([tenant], ["objects:write", "objects:read"])
    auth = {"Authorization": f"Bearer {writer['key']}"}
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        other = unique_name()
        # Upload rule (SPEC §3): a tenant not held is 403, whether or not it has objects.
        assert_error(client.put(by_key_path(namespace, other, "k"), headers=auth), 403, "Forbidden")
        for bad in (
            f"/v1/objects/by-key/{namespace}/{tenant}/bad%zzkey",  # malformed escape
            f"/v1/objects/by-key/{namespace}/{tenant}/%FF%FE",  # not UTF-8
            f"/v1/objects/by-key/{namespace}/{tenant}/a%01b",  # control character
            f"/v1/objects/by-key/{namespace}/{tenant}/a%0Ab",  # a line break
            f"/v1/objects/by-key/Bad!/{tenant}/k",  # namespace syntax
            f"/v1/objects/by-key/{namespace}/{tenant}",  # no key
            f"/v1/objects/by-key/{namespace}/{tenant}/",  # empty key
        ):
            assert_error(client.put(bad, headers=auth, content=b"x"), 400, "BadRequest")
        assert_error(client.put(by_key_path(namespace, tenant, "k")), 401, "Unauthorized")
        listed = client.get(
            "/v1/objects", params={"tenant": tenant, "namespace": namespace}, headers=auth
        )
        assert listed.json()["items"] == []
