"""Secrets never reach logs or the database in clear; slow clients do not block others;
credentials the e2e suite does not try (SPEC §3, §4).

Covered elsewhere: admin.key mode 0600 and absent from the log
(e2e/test_auth.py::test_admin_key_file_is_written_with_mode_0600); alg none, HS/RS
confusion, wrong audience, expired, tampered, wrong key (::test_invalid_jwts_are_401,
::test_rs256_server_refuses_hs256_none_and_foreign_keys); revoked and forged keys
(::test_revoked_key_is_401_on_the_next_request, ::test_forged_key_with_a_real_id_is_401);
another tenant's object id, list and usage
(::test_other_tenant_reads_are_404_and_writes_lists_usage_are_403,
::test_object_id_of_another_tenant_is_404_for_every_call).
"""

from __future__ import annotations

import base64
import json
import socket
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from e2e.support import assert_error, by_key_path, upload
from juststorage.testing import Server, StartServer
from support.db_query import query

from .support import assert_unchanged, store_state

pytestmark = pytest.mark.e2e

JWT_SECRET = "security-secret-" + "s" * 32
AUDIENCE = "juststorage-security"
BOOT_KEY = "bootsecret-" + "b" * 40


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(
        JWT_SECRET=JWT_SECRET,
        JUSTSTORAGE_JWT_AUDIENCE=AUDIENCE,
        API_KEYS=f"{BOOT_KEY}:*:admin",
        JUSTSTORAGE_LOG_LEVEL="debug",
    )


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


def _token(**claims: Any) -> str:
    base = {
        "sub": "svc",
        "exp": int(time.time()) + 600,
        "aud": AUDIENCE,
        "tenants": ["acme"],
        "scope": "objects:read objects:write objects:delete usage:read",
    }
    return jwt.encode({**base, **claims}, JWT_SECRET, algorithm="HS256")


def _hs512(claims: dict[str, Any]) -> str:
    """The right secret with an algorithm the server is not configured for."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT: the secret is short for SHA-512
        return jwt.encode(claims, JWT_SECRET, algorithm="HS512")


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "kind", ["not-yet-valid", "alg-None", "alg-HS512", "empty-signature", "tenants-string"]
)
def test_more_invalid_tokens_are_401_and_change_nothing(server: Server, kind: str) -> None:
    assert upload(server.client, bearer(BOOT_KEY), "acme", "n", "keep", b"kept").status_code == 201
    before = store_state(server)
    good = _token()
    header, payload, _ = good.split(".")
    tokens = {
        "not-yet-valid": lambda: _token(nbf=int(time.time()) + 600),
        "alg-None": lambda: f"{_segment({'alg': 'None', 'typ': 'JWT'})}.{payload}.",
        "alg-HS512": lambda: _hs512(jwt.decode(good, options={"verify_signature": False})),
        "empty-signature": lambda: f"{header}.{payload}.",
        "tenants-string": lambda: _token(tenants="acme"),
    }  # fmt: skip
    auth = bearer(tokens[kind]())
    for response in (
        upload(server.client, auth, "acme", "n", "keep", b"overwritten"),
        server.client.delete(by_key_path("n", "acme", "keep"), headers=auth),
        server.client.get(by_key_path("n", "acme", "keep"), headers=auth),
    ):
        assert_error(response, 401, "Unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert_unchanged(server, before)


def test_api_keys_are_stored_only_as_hashes(server: Server) -> None:
    created = server.create_key(["acme"], ["objects:read"])
    rows = query(server.database_url, "SELECT * FROM api_keys")
    text = repr(rows)
    assert created["id"] in text
    assert created["key"] not in text
    assert created["key"].split("_", 2)[2] not in text  # not even the random part


def test_no_secret_or_token_reaches_the_log(server: Server) -> None:
    """A run with valid, invalid, expired and revoked JWTs and API keys, at debug level."""
    valid_token = _token()
    expired = _token(exp=int(time.time()) - 600)
    wrong_secret = jwt.encode({"sub": "x", "exp": int(time.time()) + 60}, "guess-" + "g" * 32)
    writer = server.create_key(["acme"], ["objects:write", "objects:read"])
    revoked = server.create_key(["acme"], ["objects:read"])
    assert server.cli("keys", "revoke", revoked["id"]).returncode == 0
    unknown = "jsk_0123456789abcdef_" + "u" * 43
    calls = [
        (valid_token, 201),
        (expired, 401),
        (wrong_secret, 401),
        (writer["key"], 201),
        (revoked["key"], 401),
        (unknown, 401),
        (BOOT_KEY, 201),
        (BOOT_KEY + "x", 401),
    ]
    for credential, status in calls:
        response = upload(server.client, bearer(credential), "acme", "logs", "k", b"x")
        assert response.status_code == status, (credential[:8], response.text)
        server.client.get(by_key_path("logs", "acme", "k"), headers=bearer(credential))
    log = server.log()
    assert log.count("/v1/objects") >= len(calls)  # the run was logged, request by request
    secrets = [JWT_SECRET, BOOT_KEY, writer["key"], revoked["key"], unknown, admin_key(server)]
    for credential, _ in calls:
        secrets.append(credential)
        if credential.count(".") == 2:
            secrets.append(credential.rsplit(".", 1)[1])  # a JWT's signature alone
    for secret in secrets:
        assert secret not in log, f"a secret starting {secret[:6]!r} is in the server log"
    for key in (writer, revoked):
        assert key["key"].split("_", 2)[2] not in log


def admin_key(server: Server) -> str:
    path = server.data_dir / "admin.key"
    return path.read_text().strip() if path.exists() else "no-admin-key-on-this-server"


def _slow_head(server: Server) -> socket.socket:
    """A client that sends half a request head and then nothing (slowloris)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET /v1/objects?tenant=acme&namespace=n HTTP/1.1\r\nHost: x\r\nX-A: ")
    return sock


def _stalled_upload(server: Server, index: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(
        (
            "POST /v1/objects HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {BOOT_KEY}\r\n"
            f"X-Tenant: slow\r\nX-Namespace: n\r\nX-Key: stalled-{index}\r\n"
            "Content-Length: 1000000\r\n\r\n"
        ).encode("ascii")
        + b"s" * 100
    )
    return sock


BLOCKED_S = 10.0


def test_slow_clients_do_not_block_others(server: Server) -> None:
    auth = bearer(BOOT_KEY)
    assert upload(server.client, auth, "acme", "n", "fast", b"quick").status_code == 201
    sockets = [_slow_head(server) for _ in range(50)]
    sockets += [_stalled_upload(server, i) for i in range(8)]
    try:
        # Keep the slow ones trickling while others are served.
        for sock in sockets[:50]:
            sock.sendall(b"a")

        def fetch(_: int) -> tuple[int, float]:
            started = time.monotonic()
            response = server.client.get(by_key_path("n", "acme", "fast"), headers=auth)
            return response.status_code, time.monotonic() - started

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(fetch, range(40)))
        # Blocked would mean waiting for the slow clients, which never finish (the
        # client gives up at 30 s); the bound leaves room for a slow fsync on a busy disk.
        assert all(status == 200 for status, _ in results), results
        assert max(elapsed for _, elapsed in results) < BLOCKED_S, results
        started = time.monotonic()
        response = upload(server.client, auth, "acme", "n", "during", b"still works")
        assert response.status_code == 201 and time.monotonic() - started < BLOCKED_S
    finally:
        for sock in sockets:
            sock.close()
    listed = server.client.get(
        "/v1/objects", params={"tenant": "slow", "namespace": "n"}, headers=auth
    )
    assert listed.json()["items"] == []  # no stalled upload became visible
