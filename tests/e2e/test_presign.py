"""Presigned URLs (SPEC §8.5): `POST /v1/presign` and the URLs it signs, used
without a credential on real servers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import jwt
import pytest

from juststorage.testing import Server, StartServer, start

from .support import assert_error, unique_name, upload

pytestmark = pytest.mark.e2e

JWT_SECRET = "p" * 40
PUBLIC_URL = "https://store.example.test"
ADMIN = "a" * 40  # a bootstrap key (API_KEYS): with JWT_SECRET set no admin.key is made


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(
        JWT_SECRET=JWT_SECRET,
        API_KEYS=f"{ADMIN}:*:admin",
        JUSTSTORAGE_AUTH_FAILURES_PER_MINUTE="0",
    )


def presign(server: Server, credential: str, **body: Any) -> httpx.Response:
    return server.client.post("/v1/presign", headers=bearer(credential), json=body)


def signed(server: Server, credential: str, **body: Any) -> str:
    response = presign(server, credential, **body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"url", "method", "expires_at"}
    assert answer["method"] == body["method"]
    url: str = answer["url"]
    return url


def anonymous(server: Server, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """`url` (a path and query) requested with no credential at all."""
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        return client.request(method, url, **kwargs)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


@pytest.fixture(scope="module")
def stored(server: Server) -> dict[str, Any]:
    tenant, namespace = unique_name(), unique_name("ns")
    response = upload(
        server.client,
        bearer(ADMIN),
        tenant,
        namespace,
        "docs/page.html",
        b"<script>alert(1)</script>",
        content_type="text/html",
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_get_and_head_urls_work_without_a_credential(
    server: Server, stored: dict[str, Any]
) -> None:
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    url = signed(server, ADMIN, method="GET", key=stored["key"], **names)
    got = anonymous(server, "GET", url)
    assert got.status_code == 200, got.text
    assert got.content == b"<script>alert(1)</script>"
    # Bytes never render as a page of the server's origin.
    assert got.headers["content-disposition"].startswith('attachment; filename="page.html"')
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    # Asking for inline through a presigned URL changes nothing.
    assert (
        anonymous(server, "GET", url + "&disposition=inline")
        .headers["content-disposition"]
        .startswith("attachment")
    )
    # Only the signed method: HEAD, PUT, DELETE with a GET URL are refused.
    assert anonymous(server, "HEAD", url).status_code == 403
    assert_error(anonymous(server, "PUT", url, content=b"x"), 403, "Forbidden")
    assert anonymous(server, "DELETE", url).status_code == 401
    head_url = signed(server, ADMIN, method="HEAD", key=stored["key"], **names)
    head = anonymous(server, "HEAD", head_url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(stored["size_bytes"])
    by_id = signed(server, ADMIN, method="GET", id=stored["id"], tenant=stored["tenant_id"])
    assert f"/v1/objects/{stored['id']}?" in by_id
    assert anonymous(server, "GET", by_id).content == b"<script>alert(1)</script>"


def test_a_url_by_key_reads_the_newest_version_at_use(server: Server) -> None:
    tenant, namespace = unique_name(), unique_name("ns")
    auth = bearer(ADMIN)
    assert upload(server.client, auth, tenant, namespace, "k", b"v1").status_code == 201
    url = signed(server, ADMIN, method="GET", tenant=tenant, namespace=namespace, key="k")
    assert anonymous(server, "GET", url).content == b"v1"
    assert upload(server.client, auth, tenant, namespace, "k", b"v2").status_code == 201
    assert anonymous(server, "GET", url).content == b"v2"


def test_presigned_answers_are_never_stored_by_a_cache(
    server: Server, stored: dict[str, Any]
) -> None:
    """A cached copy would outlive the URL's expiry and its issuer's revocation."""
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    get_url = signed(server, ADMIN, method="GET", key=stored["key"], **names)
    head_url = signed(server, ADMIN, method="HEAD", key=stored["key"], **names)
    by_id = signed(server, ADMIN, method="GET", tenant=stored["tenant_id"], id=stored["id"])
    etag = f'"{stored["content_hash"]}"'
    answers = [
        anonymous(server, "GET", get_url),
        anonymous(server, "HEAD", head_url),
        anonymous(server, "GET", get_url, headers={"Range": "bytes=0-3"}),
        anonymous(server, "GET", get_url, headers={"If-None-Match": etag}),
        anonymous(server, "GET", by_id),
    ]
    assert [a.status_code for a in answers] == [200, 200, 206, 304, 200]
    for answer in answers:
        assert answer.headers.get_list("cache-control") == ["private, no-store"], answer.request


def test_tampered_urls_are_403(server: Server, stored: dict[str, Any]) -> None:
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    url = signed(server, ADMIN, method="GET", key=stored["key"], **names)
    query = dict(parse_qsl(urlsplit(url).query))
    other_path = url.replace("/docs%2Fpage.html?", "/docs%2Fother.html?")
    assert other_path != url
    signature = query["js-signature"]
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    for tampered in (
        with_query(url, **{"js-expires": str(int(query["js-expires"]) + 60)}),
        with_query(url, **{"js-signature": flipped}),
        with_query(url, **{"js-signature": ""}),
        with_query(url, **{"js-credential": "key:0000000000000000"}),
        with_query(url, **{"js-credential": "jwt:someone"}),
        with_query(url, **{"js-expires": "soon"}),
        other_path,
    ):
        assert_error(anonymous(server, "GET", tampered), 403, "Forbidden")


def test_urls_stop_at_their_expiry(server: Server, stored: dict[str, Any]) -> None:
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    response = presign(server, ADMIN, method="GET", key=stored["key"], expires_in=2, **names)
    url = response.json()["url"]
    expires = int(dict(parse_qsl(urlsplit(url).query))["js-expires"])
    assert abs(expires - (time.time() + 2)) < 5
    assert anonymous(server, "GET", url).status_code == 200
    time.sleep(max(0.0, expires - time.time()) + 1.2)
    assert_error(anonymous(server, "GET", url), 403, "Forbidden")


def test_a_revoked_issuing_key_stops_its_urls(server: Server, stored: dict[str, Any]) -> None:
    key = server.create_key([stored["tenant_id"]], ["objects:read"])
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    url = signed(server, key["key"], method="GET", key=stored["key"], **names)
    assert anonymous(server, "GET", url).status_code == 200
    assert server.cli("keys", "revoke", key["id"]).returncode == 0
    assert_error(anonymous(server, "GET", url), 403, "Forbidden")


def test_a_jwt_issued_url_never_outlives_the_jwt(server: Server, stored: dict[str, Any]) -> None:
    exp = int(time.time()) + 3
    token = jwt.encode(
        {"sub": "svc", "exp": exp, "tenant": stored["tenant_id"], "scope": "objects:read"},
        JWT_SECRET,
        algorithm="HS256",
    )
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    response = presign(server, token, method="GET", key=stored["key"], expires_in=3600, **names)
    assert response.status_code == 200, response.text
    url = response.json()["url"]
    assert int(dict(parse_qsl(urlsplit(url).query))["js-expires"]) == exp
    assert response.json()["expires_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
    assert anonymous(server, "GET", url).status_code == 200
    time.sleep(max(0.0, exp - time.time()) + 1.2)
    assert_error(anonymous(server, "GET", url), 403, "Forbidden")


@pytest.mark.parametrize("subject", ["svc", "s" * 600, "\ud800", "caf\u00e9 / ?&=#"])
def test_a_jwt_subject_of_any_length_or_text_names_the_url_by_a_digest(
    server: Server, stored: dict[str, Any], subject: str
) -> None:
    """`js-credential` of a JWT's URL has one length whatever its `sub` (a long one
    could not pass the 512-character check at use; a lone surrogate cannot be encoded
    into a URL at all)."""
    claims = {"sub": subject, "exp": int(time.time()) + 600, "scope": "objects:read"}
    token = jwt.encode({**claims, "tenant": stored["tenant_id"]}, JWT_SECRET, algorithm="HS256")
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    response = presign(server, token, method="GET", key=stored["key"], **names)
    assert response.status_code == 200, response.text
    url = response.json()["url"]
    credential = dict(parse_qsl(urlsplit(url).query))["js-credential"]
    assert re.fullmatch(r"jwt:[A-Za-z0-9_-]{22}", credential), credential
    assert anonymous(server, "GET", url).status_code == 200
    other = jwt.encode(
        {**claims, "sub": subject + "x", "tenant": stored["tenant_id"]},
        JWT_SECRET,
        algorithm="HS256",
    )
    by_other = presign(server, other, method="GET", key=stored["key"], **names).json()["url"]
    assert dict(parse_qsl(urlsplit(by_other).query))["js-credential"] != credential


def test_a_jwt_just_past_its_exp_cannot_presign(server: Server, stored: dict[str, Any]) -> None:
    """Within the verifier's leeway the token still authenticates, but a URL it signed
    would already be dead: 401, not a 200 with an expired URL."""
    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"]}
    for past in (10, 0):
        claims = {"sub": "svc", "exp": int(time.time()) - past, "scope": "objects:read"}
        token = jwt.encode({**claims, "tenant": stored["tenant_id"]}, JWT_SECRET, algorithm="HS256")
        response = presign(server, token, method="GET", key=stored["key"], **names)
        assert_error(response, 401, "Unauthorized")
        assert "expired" in response.json()["error"]["message"]
    # The same token is still accepted elsewhere within the leeway (a read works).
    path = f"/v1/objects/by-key/{stored['namespace']}/{stored['tenant_id']}/docs%2Fpage.html"
    assert server.client.get(path, headers=bearer(token)).status_code == 200


def test_presigning_needs_the_scope_and_the_tenant(server: Server) -> None:
    tenant, namespace = unique_name(), unique_name("ns")
    reader = server.create_key([tenant], ["objects:read"])["key"]
    names = {"tenant": tenant, "namespace": namespace, "key": "k"}
    assert_error(presign(server, reader, method="PUT", **names), 403, "Forbidden")
    assert presign(server, reader, method="GET", **names).status_code == 200
    other = {**names, "tenant": unique_name()}
    assert_error(presign(server, reader, method="GET", **other), 403, "Forbidden")
    assert_error(
        server.client.post("/v1/presign", json={"method": "GET", **names}), 401, "Unauthorized"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"method": "DELETE", "tenant": "a", "namespace": "n", "key": "k"},
        {"method": "GET", "tenant": "A!", "namespace": "n", "key": "k"},
        {"method": "GET", "tenant": "a", "namespace": "n"},
        {"method": "GET", "tenant": "a", "namespace": "n", "key": "k\u0001"},
        {"method": "GET", "tenant": "a", "id": "not-a-uuid"},
        {"method": "PUT", "tenant": "a", "id": "550e8400-e29b-41d4-a716-446655440000"},
        {"method": "GET", "tenant": "a", "namespace": "n", "key": "k", "expires_in": 0},
        {"method": "GET", "tenant": "a", "namespace": "n", "key": "k", "expires_in": 604801},
        {"method": "GET", "tenant": "a", "namespace": "n", "key": "k", "expires_in": "60"},
        {"method": "GET", "tenant": "a", "namespace": "n", "key": "k", "expires_in": True},
        {"method": "GET", "tenant": "a", "namespace": "n", "key": "k", "extra": 1},
        ["GET"],
    ],
)
def test_bad_presign_requests_are_400(server: Server, body: Any) -> None:
    response = server.client.post("/v1/presign", headers=bearer(ADMIN), json=body)
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 5000,
        b'{"method": ' + b"[" * 3000 + b"]" * 3000 + b"}",
        b'{"method": "GET", "tenant": "a", "namespace": "n", "key": "\\ud800"}',
        b'{"method": "GET", "tenant": "a", "namespace": "n", "key": "k", "expires_in": NaN}',
        b"\xff",
        b"",
    ],
)
def test_a_presign_body_that_is_not_plain_json_is_400(server: Server, raw: bytes) -> None:
    """Nesting too deep to parse, lone surrogates, NaN, bytes that are not UTF-8."""
    response = server.client.post("/v1/presign", headers=bearer(ADMIN), content=raw)
    assert_error(response, 400, "BadRequest")


def test_the_default_and_the_longest_expiry(server: Server) -> None:
    names = {"method": "GET", "tenant": "a", "namespace": "n", "key": "k"}
    for expires_in, expected in ((None, 3600), (604800, 604800)):
        body = dict(names) if expires_in is None else {**names, "expires_in": expires_in}
        before = time.time()
        url = signed(server, ADMIN, **body)
        expires = int(dict(parse_qsl(urlsplit(url).query))["js-expires"])
        assert before + expected - 2 <= expires <= time.time() + expected + 1


def test_a_url_for_one_tenant_never_reaches_another(server: Server) -> None:
    """A's URL with B's names in the path: 403 whether or not B's object exists."""
    a, b, namespace = unique_name(), unique_name(), unique_name("ns")
    auth = bearer(ADMIN)
    assert upload(server.client, auth, a, namespace, "k", b"A").status_code == 201
    assert upload(server.client, auth, b, namespace, "k", b"B").status_code == 201
    holder_of_a = server.create_key([a], ["objects:read"])["key"]
    url = signed(server, holder_of_a, method="GET", tenant=a, namespace=namespace, key="k")
    answers = []
    for key in ("k", "missing"):
        crossed = url.replace(f"/{a}/k?", f"/{b}/{key}?")
        response = anonymous(server, "GET", crossed)
        assert_error(response, 403, "Forbidden")
        answers.append((response.status_code, response.json()["error"]["message"]))
    assert answers[0] == answers[1]
    b_object = upload(server.client, auth, b, namespace, "k2", b"B").json()
    by_id = signed(server, holder_of_a, method="GET", tenant=a, id=b_object["id"])
    # The id's tenant is A's: B's object is not found, as for any id of another tenant.
    assert_error(anonymous(server, "GET", by_id), 404, "NotFound")
    missing = signed(
        server, holder_of_a, method="GET", tenant=a, id="550e8400-e29b-41d4-a716-446655440000"
    )
    assert_error(anonymous(server, "GET", missing), 404, "NotFound")
    for moved in (with_query(by_id, **{"js-tenant": b}), with_query(missing, **{"js-tenant": b})):
        assert_error(anonymous(server, "GET", moved), 403, "Forbidden")


def test_a_put_url_uploads_that_key_only(start_server: StartServer) -> None:
    server = start_server(JUSTSTORAGE_QUOTA_BYTES="10")
    tenant, namespace = unique_name(), unique_name("ns")
    writer = server.create_key([tenant], ["objects:write"])["key"]
    url = signed(server, writer, method="PUT", tenant=tenant, namespace=namespace, key="up/a b")
    put = anonymous(server, "PUT", url, content=b"12345", headers={"Content-Type": "text/plain"})
    assert put.status_code == 201, put.text
    assert put.json()["key"] == "up/a b"
    assert put.json()["content_type"] == "text/plain"
    # The quota still applies: 5 + 6 bytes is over 10.
    assert_error(anonymous(server, "PUT", url, content=b"123456"), 413, "PayloadTooLarge")
    # Another key with the same signature is refused, and nothing is stored there.
    other = url.replace("/up%2Fa%20b?", "/up%2Fother?")
    assert other != url
    assert_error(anonymous(server, "PUT", other, content=b"x"), 403, "Forbidden")
    # A PUT URL does not read.
    assert_error(anonymous(server, "GET", url), 403, "Forbidden")
    listed = server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": namespace, "versions": "true"},
        headers=server.admin_headers(),
    ).json()["items"]
    assert [(i["key"], i["size_bytes"]) for i in listed] == [("up/a b", 5)]


def test_urls_are_absolute_with_the_public_url(start_server: StartServer) -> None:
    server = start_server(JUSTSTORAGE_PUBLIC_URL=PUBLIC_URL + "/")
    url = signed(server, server.admin_key, method="GET", tenant="a", namespace="n", key="k")
    assert url.startswith(f"{PUBLIC_URL}/v1/objects/by-key/n/a/k?")


def _cross_process(first: Server, second: Server) -> None:
    tenant, namespace = unique_name(), unique_name("ns")
    key = first.create_key([tenant], ["objects:read", "objects:write"])
    auth = bearer(key["key"])
    assert upload(first.client, auth, tenant, namespace, "k", b"shared").status_code == 201
    url = signed(first, key["key"], method="GET", tenant=tenant, namespace=namespace, key="k")
    assert anonymous(second, "GET", url).content == b"shared"
    put = signed(second, key["key"], method="PUT", tenant=tenant, namespace=namespace, key="p")
    assert anonymous(first, "PUT", put, content=b"from 2").status_code == 201
    assert second.cli("keys", "revoke", key["id"]).returncode == 0
    assert_error(anonymous(first, "GET", url), 403, "Forbidden")


def test_a_url_issued_on_one_process_works_on_another_sqlite(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    data_dir.mkdir()
    first = start(tmp_path, data_dir=data_dir)
    try:
        first.admin_key  # noqa: B018  the first start has made the key and the store
        second = start(tmp_path, data_dir=data_dir)
        try:
            _cross_process(first, second)
        finally:
            second.stop()
    finally:
        first.stop()


@pytest.mark.postgres
def test_a_url_issued_on_one_process_works_on_another_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {"DATABASE_URL": postgres_url, "JUSTSTORAGE_S3_MASTER_KEY": "m" * 64}
    first = start(tmp_path, env)
    try:
        first.admin_key  # noqa: B018
        second = start(tmp_path, env)  # its own data directory: only the database is shared
        try:
            _cross_process(first, second)
        finally:
            second.stop()
    finally:
        first.stop()


def test_the_python_sdk_presigns(server: Server, stored: dict[str, Any]) -> None:
    from juststorage_client import AsyncClient, Client

    names = {"tenant": stored["tenant_id"], "namespace": stored["namespace"], "key": stored["key"]}
    with Client(server.url, ADMIN) as client:
        signed = client.presign("GET", expires_in=60, **names)
    assert signed.method == "GET"
    assert signed.url.startswith(f"{server.url}/v1/objects/by-key/")
    assert abs(signed.expires_at.timestamp() - (time.time() + 60)) < 5
    assert httpx.get(signed.url, trust_env=False).content == b"<script>alert(1)</script>"

    async def presign_async() -> str:
        async with AsyncClient(server.url, ADMIN) as client:
            put = await client.presign("PUT", expires_in=60, **{**names, "key": "sdk-put"})
            return put.url

    put_url = asyncio.run(presign_async())
    assert httpx.put(put_url, content=b"sdk", trust_env=False).status_code == 201


def test_the_cli_shares_a_key(server: Server, stored: dict[str, Any]) -> None:
    name = f"{stored['tenant_id']}/{stored['namespace']}/{stored['key']}"
    connection = ("--url", server.url, "--token", ADMIN)
    shared = server.cli("share", name, "--expires", "10m", *connection)
    assert shared.returncode == 0, shared.stderr
    url = shared.stdout.strip()
    assert url.startswith(f"{server.url}/v1/objects/by-key/")
    expires = int(dict(parse_qsl(urlsplit(url).query))["js-expires"])
    assert abs(expires - (time.time() + 600)) < 10
    assert httpx.get(url, trust_env=False).content == b"<script>alert(1)</script>"
    put_name = f"js://{stored['tenant_id']}/{stored['namespace']}/cli-put"
    as_json = server.cli("share", put_name, "--put", "--json", *connection)
    assert as_json.returncode == 0, as_json.stderr
    answer = json.loads(as_json.stdout)
    assert answer["method"] == "PUT" and set(answer) == {"url", "method", "expires_at"}
    assert httpx.put(answer["url"], content=b"cli", trust_env=False).status_code == 201
    for bad in (("--expires", "8d"), ("--expires", "0"), ("--expires", "soon")):
        refused = server.cli("share", name, *bad, *connection)
        assert refused.returncode != 0
        assert "--expires" in refused.stderr and "Traceback" not in refused.stderr


def test_every_download_is_an_attachment_unless_asked_inline(
    server: Server, stored: dict[str, Any]
) -> None:
    auth = bearer(ADMIN)
    path = f"/v1/objects/by-key/{stored['namespace']}/{stored['tenant_id']}/docs/page.html"
    by_id = (f"/v1/objects/{stored['id']}", {**auth, "X-Tenant": stored["tenant_id"]})
    etag = f'"{stored["content_hash"]}"'
    answers = [
        server.client.get(path, headers=auth),
        server.client.head(path, headers=auth),
        server.client.get(path, headers={**auth, "Range": "bytes=0-3"}),
        server.client.get(path, headers={**auth, "If-None-Match": etag}),
        server.client.get(by_id[0], headers=by_id[1]),
    ]
    assert [a.status_code for a in answers] == [200, 200, 206, 304, 200]
    for answer in answers:
        assert answer.headers["content-disposition"] == (
            "attachment; filename=\"page.html\"; filename*=UTF-8''page.html"
        )
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "default-src 'none'; sandbox"
        # No shared cache keeps it; the client revalidates it at every use.
        assert answer.headers["cache-control"] == "private, no-cache"
    inline = server.client.get(path, params={"disposition": "inline"}, headers=auth)
    assert inline.headers["content-disposition"].startswith("inline; ")
    assert inline.headers["content-security-policy"] == "default-src 'none'; sandbox"
    odd = upload(server.client, auth, stored["tenant_id"], stored["namespace"], 'a/"ü\\".txt')
    assert odd.status_code == 201
    quoted = server.client.get(
        f"/v1/objects/{odd.json()['id']}", headers={**auth, "X-Tenant": stored["tenant_id"]}
    )
    assert quoted.headers["content-disposition"] == (
        "attachment; filename=\"____.txt\"; filename*=UTF-8''%22%C3%BC%5C%22.txt"
    )
