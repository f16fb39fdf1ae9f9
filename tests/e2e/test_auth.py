"""Authentication and authorisation against the real server (SPEC §3)."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from juststorage.testing import Server, StartServer

from .support import assert_error, by_key_path, unique_name, upload

pytestmark = pytest.mark.e2e

JWT_SECRET = "e2e-secret-" + "x" * 32
AUDIENCE = "juststorage-e2e"
BOOT_KEY = "boot-" + "k" * 40
BOOT_READ_KEY = "bootread-" + "r" * 40


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _assert_401(response: httpx.Response) -> None:
    assert_error(response, 401, "Unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


# This module sends bad credentials on purpose, far more than the per-address limit
# on failed authentications allows (security/test_limits.py tests that limit).
UNLIMITED_FAILURES = {"JUSTSTORAGE_AUTH_FAILURES_PER_MINUTE": "0"}

# --- a server with its first-start admin key and CLI-created keys -----------------


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(**UNLIMITED_FAILURES)


@pytest.fixture(scope="module")
def other_object(server: Server) -> dict[str, Any]:
    """An object of tenant `other`, uploaded by the admin."""
    response = upload(server.client, server.admin_headers(), "other", "n", "secret", b"theirs")
    assert response.status_code == 201
    return dict(response.json())


@pytest.fixture(scope="module")
def acme_object(server: Server) -> dict[str, Any]:
    response = upload(server.client, server.admin_headers(), "acme", "n", "mine", b"ours")
    assert response.status_code == 201
    return dict(response.json())


@pytest.fixture(scope="module")
def acme_reader(server: Server) -> str:
    key: str = server.create_key(["acme"], ["objects:read"])["key"]
    return key


@pytest.fixture(scope="module")
def acme_all(server: Server) -> str:
    created = server.create_key(
        ["acme"], ["objects:read", "objects:write", "objects:delete", "usage:read"]
    )
    key: str = created["key"]
    return key


def test_admin_key_file_is_written_with_mode_0600(server: Server) -> None:
    path = server.data_dir / "admin.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert server.admin_key not in server.log()  # never into logs


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer garbage", "Basic dXNlcjpwYXNz", "Token abc", "jsk_x_y"],
)
def test_bad_or_missing_credential_is_401_with_www_authenticate(
    server: Server, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    for response in (
        server.client.get(
            "/v1/objects", params={"tenant": "acme", "namespace": "n"}, headers=headers
        ),
        server.client.get("/v1/usage", params={"tenant": "acme"}, headers=headers),
        upload(server.client, headers, "acme", "n", "k"),
        server.client.delete(by_key_path("n", "acme", "k"), headers=headers),
    ):
        _assert_401(response)


def test_head_without_credential_is_401_without_body(server: Server) -> None:
    response = server.client.head(by_key_path("n", "acme", "k"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_forged_key_with_a_real_id_is_401(server: Server, acme_reader: str) -> None:
    forged = acme_reader[:-4] + ("AAAA" if not acme_reader.endswith("AAAA") else "BBBB")
    _assert_401(server.client.get(by_key_path("n", "acme", "mine"), headers=bearer(forged)))


def test_cli_key_reads_its_tenant(
    server: Server, acme_reader: str, acme_object: dict[str, Any]
) -> None:
    auth = bearer(acme_reader)
    assert server.client.get(by_key_path("n", "acme", "mine"), headers=auth).content == b"ours"
    by_id = server.client.get(
        f"/v1/objects/{acme_object['id']}", headers={**auth, "X-Tenant": "acme"}
    )
    assert by_id.content == b"ours"
    listed = server.client.get(
        "/v1/objects", params={"tenant": "acme", "namespace": "n"}, headers=auth
    )
    assert listed.status_code == 200


def test_missing_scope_is_403(
    server: Server, acme_reader: str, acme_object: dict[str, Any]
) -> None:
    auth = bearer(acme_reader)
    assert_error(upload(server.client, auth, "acme", "n", "k"), 403, "Forbidden")
    assert_error(
        server.client.delete(by_key_path("n", "acme", "mine"), headers=auth), 403, "Forbidden"
    )
    assert_error(
        server.client.delete(
            f"/v1/objects/{acme_object['id']}", headers={**auth, "X-Tenant": "acme"}
        ),
        403,
        "Forbidden",
    )
    assert_error(
        server.client.get("/v1/usage", params={"tenant": "acme"}, headers=auth), 403, "Forbidden"
    )
    writer = server.create_key(["acme"], ["objects:write"])["key"]
    assert_error(
        server.client.get(by_key_path("n", "acme", "mine"), headers=bearer(writer)),
        403,
        "Forbidden",
    )
    assert server.client.get(by_key_path("n", "acme", "mine"), headers=auth).status_code == 200


def test_other_tenant_reads_are_404_and_writes_lists_usage_are_403(
    server: Server, acme_all: str, other_object: dict[str, Any]
) -> None:
    auth = bearer(acme_all)
    existing = by_key_path("n", "other", "secret")
    missing = by_key_path("n", "other", "no-such-key")
    for path in (existing, missing):  # existence does not leak
        assert_error(server.client.get(path, headers=auth), 404, "NotFound")
        head = server.client.head(path, headers=auth)
        assert head.status_code == 404 and head.content == b""
    by_id_other = {**auth, "X-Tenant": "other"}
    assert_error(
        server.client.get(f"/v1/objects/{other_object['id']}", headers=by_id_other), 404, "NotFound"
    )
    assert (
        server.client.head(f"/v1/objects/{other_object['id']}", headers=by_id_other).status_code
        == 404
    )
    assert_error(upload(server.client, auth, "other", "n", "k"), 403, "Forbidden")
    assert_error(server.client.delete(existing, headers=auth), 403, "Forbidden")
    assert_error(
        server.client.delete(f"/v1/objects/{other_object['id']}", headers=by_id_other),
        403,
        "Forbidden",
    )
    assert_error(
        server.client.get(
            "/v1/objects", params={"tenant": "other", "namespace": "n"}, headers=auth
        ),
        403,
        "Forbidden",
    )
    assert_error(
        server.client.get("/v1/usage", params={"tenant": "other"}, headers=auth), 403, "Forbidden"
    )
    admin = server.admin_headers()
    assert server.client.get(existing, headers=admin).content == b"theirs"


def test_object_id_of_another_tenant_is_404_for_every_call(
    server: Server, acme_all: str, other_object: dict[str, Any]
) -> None:
    headers = {**bearer(acme_all), "X-Tenant": "acme"}  # names a tenant the key holds
    path = f"/v1/objects/{other_object['id']}"
    assert_error(server.client.get(path, headers=headers), 404, "NotFound")
    assert server.client.head(path, headers=headers).status_code == 404
    assert_error(server.client.delete(path, headers=headers), 404, "NotFound")
    admin = {**server.admin_headers(), "X-Tenant": "other"}
    assert server.client.get(path, headers=admin).content == b"theirs"


def test_key_with_write_delete_usage_scopes_works_in_its_tenant(
    server: Server, acme_all: str
) -> None:
    auth = bearer(acme_all)
    created = upload(server.client, auth, "acme", "scoped", "k", b"data")
    assert created.status_code == 201
    assert (
        server.client.get("/v1/usage", params={"tenant": "acme"}, headers=auth).status_code == 200
    )
    deleted = server.client.delete(by_key_path("scoped", "acme", "k"), headers=auth)
    assert deleted.status_code == 204


def test_revoked_key_is_401_on_the_next_request(
    server: Server, acme_object: dict[str, Any]
) -> None:
    created = server.create_key(["acme"], ["objects:read"])
    auth = bearer(created["key"])
    path = by_key_path("n", "acme", "mine")
    assert server.client.get(path, headers=auth).status_code == 200
    revoked = server.cli("keys", "revoke", created["id"])
    assert revoked.returncode == 0, revoked.stderr
    _assert_401(server.client.get(path, headers=auth))
    listed = json.loads(server.cli("keys", "list", "--json").stdout)
    record = next(r for r in listed if r["id"] == created["id"])
    assert record["revoked_at"] is not None
    again = server.cli("keys", "revoke", created["id"])
    assert again.returncode != 0
    assert "Traceback" not in again.stderr


def test_key_for_all_tenants(server: Server, other_object: dict[str, Any]) -> None:
    key = server.create_key(["*"], ["objects:read"])["key"]
    response = server.client.get(by_key_path("n", "other", "secret"), headers=bearer(key))
    assert response.content == b"theirs"


def test_keys_create_prints_the_key_alone_on_the_last_line(server: Server) -> None:
    result = server.cli("keys", "create", "--tenant", "acme", "--scope", "objects:read")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert " " not in key
    assert (
        server.client.get(
            "/v1/objects", params={"tenant": "acme", "namespace": "n"}, headers=bearer(key)
        ).status_code
        == 200
    )


# --- bootstrap keys and HS256 JWTs -------------------------------------------------


@pytest.fixture(scope="module")
def jwt_server(start_server: StartServer) -> Server:
    return start_server(
        API_KEYS=(
            f"{BOOT_KEY}:acme|beta:objects:read objects:write usage:read,"
            f"{BOOT_READ_KEY}:*:objects:read"
        ),
        JWT_SECRET=JWT_SECRET,
        JUSTSTORAGE_JWT_AUDIENCE=AUDIENCE,
        **UNLIMITED_FAILURES,
    )


def _hs_token(claims: dict[str, Any], secret: str = JWT_SECRET, **headers: Any) -> str:
    base = {"sub": "svc", "exp": int(time.time()) + 600, "aud": AUDIENCE}
    return jwt.encode({**base, **claims}, secret, algorithm="HS256", headers=headers or None)


def test_bootstrap_keys_from_api_keys(jwt_server: Server) -> None:
    assert not (jwt_server.data_dir / "admin.key").exists()
    auth = bearer(BOOT_KEY)
    for tenant in ("acme", "beta"):
        assert upload(jwt_server.client, auth, tenant, "n", "k", b"boot").status_code == 201
    assert_error(upload(jwt_server.client, auth, "gamma", "n", "k"), 403, "Forbidden")
    assert_error(
        jwt_server.client.delete(by_key_path("n", "acme", "k"), headers=auth), 403, "Forbidden"
    )
    reader = bearer(BOOT_READ_KEY)
    assert jwt_server.client.get(by_key_path("n", "beta", "k"), headers=reader).content == b"boot"
    assert_error(upload(jwt_server.client, reader, "acme", "n", "k"), 403, "Forbidden")
    _assert_401(
        jwt_server.client.get(by_key_path("n", "beta", "k"), headers=bearer(BOOT_KEY + "x"))
    )


def test_cli_issued_hs256_token(jwt_server: Server) -> None:
    result = jwt_server.cli(
        "token", "issue", "--sub", "ci", "--tenant", "acme", "--scope", "objects:write",
        "--scope", "objects:read", "--ttl", "120",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert "\n" not in token and token.count(".") == 2
    claims = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == "ci" and claims["aud"] == AUDIENCE
    auth = bearer(token)
    assert upload(jwt_server.client, auth, "acme", "jwt", "k", b"via jwt").status_code == 201
    assert (
        jwt_server.client.get(by_key_path("jwt", "acme", "k"), headers=auth).content == b"via jwt"
    )
    assert_error(upload(jwt_server.client, auth, "beta", "jwt", "k"), 403, "Forbidden")
    assert_error(
        jwt_server.client.get("/v1/usage", params={"tenant": "acme"}, headers=auth),
        403,
        "Forbidden",
    )


def test_single_tenant_claim_and_wildcard_tenants(jwt_server: Server) -> None:
    single = bearer(_hs_token({"tenant": "acme", "scope": "objects:write"}))
    assert upload(jwt_server.client, single, "acme", "n", "single").status_code == 201
    assert_error(upload(jwt_server.client, single, "beta", "n", "single"), 403, "Forbidden")
    everyone = bearer(_hs_token({"tenants": ["*"], "scope": "admin"}))
    tenant = unique_name()
    assert upload(jwt_server.client, everyone, tenant, "n", "k", b"any").status_code == 201
    assert jwt_server.client.get(by_key_path("n", tenant, "k"), headers=everyone).content == b"any"
    assert (
        jwt_server.client.get("/v1/usage", params={"tenant": tenant}, headers=everyone).json()[
            "objects"
        ]
        == 1
    )


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    "token_kind",
    [
        "alg-none",
        "expired",
        "wrong-audience",
        "no-audience",
        "wrong-secret",
        "no-exp",
        "no-sub",
        "no-tenant",
        "bad-scope",
        "tampered",
        "tenant-star",
        "tenant-invalid",
        "lifetime-over-24h",
        "lifetime-over-24h-no-iat",
    ],
)
def test_invalid_jwts_are_401(jwt_server: Server, token_kind: str) -> None:
    good = {"tenants": ["acme"], "scope": "objects:read"}
    now = int(time.time())
    tokens = {
        "alg-none": lambda: _unsigned({**good, "sub": "x", "exp": now + 600, "aud": AUDIENCE}),
        "expired": lambda: _hs_token({**good, "exp": now - 300}),
        "wrong-audience": lambda: _hs_token({**good, "aud": "someone-else"}),
        "no-audience": lambda: jwt.encode(
            {**good, "sub": "x", "exp": now + 600}, JWT_SECRET, algorithm="HS256"
        ),
        "wrong-secret": lambda: _hs_token(good, secret="not-the-secret-" + "y" * 32),
        "no-exp": lambda: jwt.encode(
            {**good, "sub": "x", "aud": AUDIENCE}, JWT_SECRET, algorithm="HS256"
        ),
        "no-sub": lambda: jwt.encode(
            {**good, "exp": now + 600, "aud": AUDIENCE}, JWT_SECRET, algorithm="HS256"
        ),
        "no-tenant": lambda: _hs_token({"scope": "objects:read"}),
        "bad-scope": lambda: _hs_token({**good, "scope": "objects:everything"}),
        "tampered": lambda: _tamper(_hs_token({**good, "scope": "objects:read"})),
        # `tenant` names one tenant: "*" there is not every tenant (SPEC §3).
        "tenant-star": lambda: _hs_token({"tenant": "*", "scope": "objects:read"}),
        "tenant-invalid": lambda: _hs_token({"tenant": "Acme", "scope": "objects:read"}),
        "lifetime-over-24h": lambda: _hs_token({**good, "iat": now, "exp": now + 86401}),
        "lifetime-over-24h-no-iat": lambda: _hs_token({**good, "exp": now + 2 * 86400}),
    }
    token = tokens[token_kind]()
    response = jwt_server.client.get(
        "/v1/objects", params={"tenant": "acme", "namespace": "n"}, headers=bearer(token)
    )
    _assert_401(response)


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_valid_hs256_token_with_audience_is_accepted(jwt_server: Server) -> None:
    token = _hs_token({"tenants": ["acme"], "scope": "objects:read"})
    response = jwt_server.client.get(
        "/v1/objects", params={"tenant": "acme", "namespace": "n"}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text


# --- RS256 and ES256 with a configured public key ---------------------------------


@pytest.fixture(scope="module")
def rsa_private_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _public_pem(private_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_pem, password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


@pytest.fixture(scope="module")
def rs_server(start_server: StartServer, rsa_private_pem: bytes) -> Server:
    return start_server(
        JUSTSTORAGE_JWT_PUBLIC_KEY=_public_pem(rsa_private_pem), **UNLIMITED_FAILURES
    )


@pytest.fixture(scope="module")
def ec_private_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def es_server(
    start_server: StartServer, ec_private_pem: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Server:
    path = tmp_path_factory.mktemp("keys") / "ec-public.pem"
    path.write_text(_public_pem(ec_private_pem), "ascii")
    # A path to the PEM works too.
    return start_server(JUSTSTORAGE_JWT_PUBLIC_KEY=str(path), **UNLIMITED_FAILURES)


def _claims() -> dict[str, Any]:
    return {
        "sub": "svc",
        "exp": int(time.time()) + 600,
        "tenants": ["acme"],
        "scope": "objects:read objects:write",
    }


def test_rs256_token_from_the_cli_private_key(
    rs_server: Server, rsa_private_pem: bytes, tmp_path: Path
) -> None:
    assert not (rs_server.data_dir / "admin.key").exists()
    key_file = tmp_path / "rsa.pem"
    key_file.write_bytes(rsa_private_pem)
    result = rs_server.cli(
        "token", "issue", "--sub", "svc", "--tenant", "acme", "--scope", "objects:write",
        "--private-key", str(key_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    assert upload(rs_server.client, bearer(token), "acme", "n", "k").status_code == 201


def test_rs256_server_refuses_hs256_none_and_foreign_keys(
    rs_server: Server, rsa_private_pem: bytes
) -> None:
    public_pem = _public_pem(rsa_private_pem)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad_tokens = [
        jwt.encode(_claims(), "some-hs-secret-" + "z" * 32, algorithm="HS256"),
        _hmac_with_public_key(_claims(), public_pem),  # algorithm confusion
        _unsigned(_claims()),
        jwt.encode(_claims(), other, algorithm="RS256"),
        jwt.encode(
            {**_claims(), "exp": int(time.time()) - 300}, rsa_private_pem, algorithm="RS256"
        ),
    ]
    for token in bad_tokens:
        _assert_401(upload(rs_server.client, bearer(token), "acme", "n", "k"))
    good = jwt.encode(_claims(), rsa_private_pem, algorithm="RS256")
    assert upload(rs_server.client, bearer(good), "acme", "n", "k").status_code == 201


def _hmac_with_public_key(claims: dict[str, Any], public_pem: str) -> str:
    import hashlib
    import hmac

    def part(value: dict[str, Any]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(claims)
    signature = hmac.new(public_pem.encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def test_es256_token_is_accepted_and_rs256_refused(
    es_server: Server, ec_private_pem: bytes, rsa_private_pem: bytes
) -> None:
    good = jwt.encode(_claims(), ec_private_pem, algorithm="ES256")
    assert upload(es_server.client, bearer(good), "acme", "n", "k", b"es").status_code == 201
    assert (
        es_server.client.get(by_key_path("n", "acme", "k"), headers=bearer(good)).content == b"es"
    )
    other = ec.generate_private_key(ec.SECP256R1())
    for token in (
        jwt.encode(_claims(), rsa_private_pem, algorithm="RS256"),
        jwt.encode(_claims(), other, algorithm="ES256"),
        jwt.encode(_claims(), "hs-secret-" + "q" * 32, algorithm="HS256"),
    ):
        _assert_401(upload(es_server.client, bearer(token), "acme", "n", "k"))


# --- authentication disabled -------------------------------------------------------


def test_auth_disabled_needs_no_header_and_warns(start_server: StartServer) -> None:
    server = start_server(JUSTSTORAGE_AUTH="disabled")
    assert not (server.data_dir / "admin.key").exists()
    response = upload(server.client, {}, "acme", "n", "k", b"open")
    assert response.status_code == 201, response.text
    assert server.client.get(by_key_path("n", "acme", "k")).content == b"open"
    assert server.client.get("/v1/usage", params={"tenant": "zeta"}).status_code == 200
    assert "disabled" in server.log().lower()


def test_random_bytes_are_not_a_credential(server: Server) -> None:
    token = base64.urlsafe_b64encode(os.urandom(48)).decode()
    _assert_401(server.client.get(by_key_path("n", "acme", "k"), headers=bearer(token)))
    _assert_401(server.client.get(by_key_path("n", "acme", "k"), headers=bearer("a.b.c")))
