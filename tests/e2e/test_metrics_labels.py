"""/metrics labels stay bounded: a client naming namespaces that hold nothing (GETs
that 404, lists of empty namespaces, calls refused for their credential) adds no
label value and no series; a namespace is named once the caller reads, writes or
deletes a committed object in it (SPEC §2 Operations)."""

from __future__ import annotations

import secrets

import pytest

from juststorage.testing import Server, StartServer

from .prometheus_text import parse_samples
from .support import by_key_path, unique_name, upload

pytestmark = pytest.mark.e2e

NAMESPACE_PROBES = 300


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    # The probes without a credential must reach the router, not the 401 limit.
    return start_server(JUSTSTORAGE_AUTH_FAILURES_PER_MINUTE="0")


def _namespaces(text: str) -> set[str]:
    return {
        value
        for (name, labels) in parse_samples(text)
        if name.startswith("just_storage_request")
        for label, value in labels
        if label == "namespace"
    }


def test_requests_naming_random_namespaces_do_not_grow_the_scrape(server: Server) -> None:
    auth, client = server.admin_headers(), server.client
    tenant = unique_name()
    upload(client, auth, tenant, "real", "k", b"stored")
    # Every kind of answer is seen once, so its series exist before the count.
    client.get(by_key_path("warmup", tenant, "k"), headers=auth)
    client.get("/v1/objects", params={"namespace": "warmup", "tenant": tenant}, headers=auth)
    client.get(by_key_path("warmup", tenant, "k"))
    before = client.get("/metrics").text
    probes = [f"probe-{secrets.token_hex(6)}" for _ in range(NAMESPACE_PROBES)]
    for n, namespace in enumerate(probes):
        if n % 3 == 0:  # an existing tenant, a namespace with nothing in it: 404
            response = client.get(by_key_path(namespace, tenant, "k"), headers=auth)
            assert response.status_code == 404
        elif n % 3 == 1:  # a list of an empty namespace: 200, no items
            params = {"namespace": namespace, "tenant": tenant}
            response = client.get("/v1/objects", params=params, headers=auth)
            assert response.status_code == 200 and response.json()["items"] == []
        else:  # no credential: 401
            assert client.get(by_key_path(namespace, tenant, "k")).status_code == 401
    after = client.get("/metrics").text
    assert not _namespaces(after) & set(probes)
    assert "warmup" not in _namespaces(after)
    # Counts change, series do not: the same lines, a few bytes longer at most.
    assert len(after.splitlines()) == len(before.splitlines())
    assert len(after) - len(before) < 2_000


def test_a_namespace_is_named_once_it_holds_a_committed_object(server: Server) -> None:
    auth, client = server.admin_headers(), server.client
    tenant = unique_name()
    upload(client, auth, tenant, "labelled", "k", b"x")
    assert client.get(by_key_path("labelled", tenant, "k"), headers=auth).status_code == 200
    samples = parse_samples(client.get("/metrics").text)
    statuses = {
        (found["method"], found["status"])
        for (name, labels) in samples
        if name == "just_storage_requests_total"
        and (found := dict(labels)).get("namespace") == "labelled"
    }
    assert statuses == {("POST", "201"), ("GET", "200")}
