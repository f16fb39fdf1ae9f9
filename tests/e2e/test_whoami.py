"""`GET /v1/whoami`: a credential's own subject, tenants and scopes, and nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from juststorage.testing import Server, start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start(tmp_path_factory.mktemp("whoami"), {"JWT_SECRET": "w" * 40})
    yield server
    server.stop()


def test_whoami_endpoint_answers_only_for_the_callers_own_credential(server: Server) -> None:
    acme = server.create_key(["acme"], ["objects:read"])
    beta = server.create_key(["beta", "gamma"], ["objects:write"])
    with httpx.Client(base_url=server.url, trust_env=False) as client:
        answers = {}
        for name, created in (("acme", acme), ("beta", beta)):
            response = client.get(
                "/v1/whoami", headers={"Authorization": f"Bearer {created['key']}"}
            )
            assert response.status_code == 200, response.text
            answers[name] = response.json()
        assert answers["acme"] == {
            "subject": f"key:{acme['id']}",
            "tenants": ["acme"],
            "scopes": ["objects:read"],
        }
        assert answers["beta"]["tenants"] == ["beta", "gamma"]
        assert "acme" not in json.dumps(answers["beta"])
        # Nothing in the request can point it at another credential or tenant.
        probing = client.get(
            "/v1/whoami?tenant=beta",
            headers={"Authorization": f"Bearer {acme['key']}", "X-Tenant": "beta"},
        )
        assert probing.json()["tenants"] == ["acme"]
        anonymous = client.get("/v1/whoami")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "Unauthorized"
    assert server.cli("keys", "revoke", acme["id"]).returncode == 0
    revoked = httpx.get(
        f"{server.url}/v1/whoami", headers={"Authorization": f"Bearer {acme['key']}"}
    )
    assert revoked.status_code == 401


def test_whoami_of_a_jwt_names_its_subject_and_claims(server: Server) -> None:
    issued = server.cli(
        "token",
        "issue",
        "--sub",
        "ci-bot",
        "--tenant",
        "acme",
        "--tenant",
        "beta",
        "--scope",
        "usage:read",
    )
    assert issued.returncode == 0, issued.stderr
    response = httpx.get(
        f"{server.url}/v1/whoami", headers={"Authorization": f"Bearer {issued.stdout.strip()}"}
    )
    assert response.json() == {
        "subject": "ci-bot",
        "tenants": ["acme", "beta"],
        "scopes": ["usage:read"],
    }
