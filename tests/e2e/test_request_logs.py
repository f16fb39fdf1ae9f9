"""One structured JSON log line per request, and no secret in any log."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest

from juststorage.testing import Server, StartServer, wait_until

from .support import by_key_path, unique_name, upload

pytestmark = pytest.mark.e2e

JWT_SECRET = "jwt-secret-that-must-never-be-logged-4f1d"
API_KEY = "apikey-that-must-never-be-logged-9c2e7a"
PRIVATE_KEY_NAME = "private/report-2025-q3.pdf"


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(
        JWT_SECRET=JWT_SECRET,
        API_KEYS=f"{API_KEY}:*:admin",
        JUSTSTORAGE_LOG_LEVEL="debug",
    )


def _access_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)  # every JSON-looking line parses
            if record["logger"] == "juststorage.access":
                lines.append(record)
    return lines


def test_each_request_is_one_json_line_and_no_secret_is_logged(server: Server) -> None:
    token = server.cli(
        "token", "issue", "--sub", "svc", "--tenant", "*", "--scope", "admin"
    ).stdout.strip()
    assert token.count(".") == 2
    created = server.create_key(["*"], ["admin"])
    # A subject that tries to start a log line of its own.
    claims = {"sub": "evil\nINFO forged", "exp": int(time.time()) + 60, "tenants": ["*"]}
    forged = jwt.encode({**claims, "scope": "admin"}, JWT_SECRET, algorithm="HS256")
    tenant = unique_name()
    sent: list[httpx.Response] = []
    for credential in (token, API_KEY, created["key"]):
        auth = {"Authorization": f"Bearer {credential}"}
        sent.append(upload(server.client, auth, tenant, "logs", PRIVATE_KEY_NAME, b"0123456789"))
        sent.append(server.client.get(by_key_path("logs", tenant, PRIVATE_KEY_NAME), headers=auth))
    sent.append(
        server.client.get(
            "/v1/objects",
            params={"tenant": tenant, "namespace": "logs", "prefix": PRIVATE_KEY_NAME},
            headers={"Authorization": f"Bearer {API_KEY}", "X-Request-ID": "caller-chosen-id-1"},
        )
    )
    sent.append(server.client.get("/v1/usage", params={"tenant": tenant}, headers={}))  # 401
    sent.append(
        server.client.get(
            "/v1/usage", params={"tenant": tenant}, headers={"Authorization": f"Bearer {token}x"}
        )
    )
    sent.append(
        server.client.get(
            "/v1/usage", params={"tenant": tenant}, headers={"Authorization": f"Bearer {forged}"}
        )
    )
    statuses = [r.status_code for r in sent]
    assert statuses == [201, 200, 201, 200, 201, 200, 200, 401, 401, 200], statuses

    # A line is written once the response is sent: the client may read the log first.
    wanted = {r.headers["x-request-id"] for r in sent}
    assert wait_until(
        lambda: wanted <= {line["request_id"] for line in _access_lines(server)}, timeout=10
    )
    by_id = {line["request_id"]: line for line in _access_lines(server)}
    for response in sent:
        line = by_id[response.headers["x-request-id"]]
        assert line["status"] == response.status_code
        assert line["method"] == response.request.method
        assert line["level"] == "info" and isinstance(line["duration_ms"], float)
        assert line["bytes_out"] == len(response.content)
        assert line["bytes_in"] == len(response.request.content)
        assert line["client"] == "127.0.0.1"
    # Who called: the JWT's sub, the key's id or the bootstrap entry, never the credential.
    principals = [by_id[r.headers["x-request-id"]]["principal"] for r in sent]
    assert principals == [
        *["svc"] * 2,
        *["bootstrap-key-1"] * 2,
        *[f"key:{created['id']}"] * 2,
        "bootstrap-key-1",
        "",  # never authenticated
        "",
        "evil?INFO forged",
    ], principals
    assert by_id["caller-chosen-id-1"]["route"] == "/v1/objects"
    assert by_id["caller-chosen-id-1"]["tenant"] == tenant
    upload_line = by_id[sent[0].headers["x-request-id"]]
    assert upload_line["route"] == "/v1/objects"
    assert (upload_line["tenant"], upload_line["namespace"]) == (tenant, "logs")
    assert upload_line["bytes_in"] == 10
    read_line = by_id[sent[1].headers["x-request-id"]]
    assert read_line["route"] == "/v1/objects/by-key/{rest:anypath}"
    assert read_line["bytes_out"] == 10
    assert by_id[sent[7].headers["x-request-id"]]["tenant"] == ""  # never authenticated

    log = server.log()
    for line in log.splitlines():  # the server's own lines too: a collector can parse all
        json.loads(line)
    for secret in (JWT_SECRET, API_KEY, token, created["key"], server_admin_key(server)):
        if secret:
            assert secret not in log
    assert PRIVATE_KEY_NAME not in log and "report-2025" not in log  # object keys are data


def server_admin_key(server: Server) -> str:
    path = server.data_dir / "admin.key"
    return path.read_text("ascii").strip() if path.exists() else ""
