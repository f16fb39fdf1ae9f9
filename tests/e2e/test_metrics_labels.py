"""/metrics labels stay bounded: a client naming namespaces that hold nothing (GETs
that 404, lists of empty namespaces, calls refused for their credential) adds no
label value and no series; a namespace is named once the caller reads, writes or
deletes a committed object in it (SPEC §2 Operations). What else a reader of the
metrics listener learns, as docs/security.md says: the namespaces of uploads in flight
and of namespaces whose objects are all deleted."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from juststorage.testing import Server, StartServer, wait_until

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
        if name.startswith(("just_storage_request", "just_storage_time_to_first_byte"))
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


def test_uploads_in_flight_and_emptied_namespaces_are_label_values(server: Server) -> None:
    """The limits of label hiding: a namespace that never held a committed object is
    named while an upload to it is in flight (the census's WRITING), and a namespace
    whose objects are all deleted stays named in the request counters."""
    auth, client = server.admin_headers(), server.client
    tenant, writing, emptied = unique_name(), unique_name("w"), unique_name("e")
    release = threading.Event()

    def body() -> Iterator[bytes]:  # no Content-Length: the upload registers first
        yield b"first"
        release.wait(10)
        yield b"last"

    def census(status: str) -> set[str]:
        return {
            found["namespace"]
            for (name, labels) in parse_samples(client.get("/metrics").text)
            if name == "just_storage_objects_total"
            and (found := dict(labels)).get("status") == status
        }

    headers = {**auth, "X-Tenant": tenant, "X-Namespace": writing, "X-Key": "k"}
    with (
        httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as uploader,
        ThreadPoolExecutor(1) as pool,
    ):
        pending = pool.submit(uploader.post, "/v1/objects", content=body(), headers=headers)
        try:
            assert wait_until(lambda: writing in census("WRITING"), timeout=10)
        finally:
            release.set()
        assert pending.result(timeout=15).status_code == 201

    upload(client, auth, tenant, emptied, "k", b"gone")
    assert client.delete(by_key_path(emptied, tenant, "k"), headers=auth).status_code == 204
    assert emptied not in census("COMMITTED")
    assert emptied in _namespaces(client.get("/metrics").text)
