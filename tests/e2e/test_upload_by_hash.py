"""POST /v1/objects/by-hash against the real server (SPEC §8.3), and the timing of
its 404 (SPEC §5: no answer may depend on what another tenant stores)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from juststorage.adapters.metadata.repositories import SqlObjectRepository
from juststorage.api.app import create_app
from juststorage.bootstrap import build
from juststorage.config import Settings
from juststorage.testing import Server, StartServer

from .prometheus_text import parse_samples, value
from .support import assert_error, by_key_path, sha256_hex, unique_name, upload
from .timing import measure, measure_async

pytestmark = pytest.mark.e2e

DATA = b"weights of a model " * 4096  # a file: over the inline threshold
PAIRS = 300  # alternating pairs per timing round
ROUNDS = 3  # a round that differs is measured again, at most this many times


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server()


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def by_hash(
    client: httpx.Client,
    auth: dict[str, str],
    tenant: str,
    key: str,
    data: bytes = DATA,
    *,
    content: bytes = b"",
    namespace: str = "models",
    **headers: str,
) -> httpx.Response:
    sent = {
        **auth,
        "X-Tenant": tenant,
        "X-Namespace": namespace,
        "X-Key": key,
        "X-Content-SHA256": sha256_hex(data),
        "X-Content-Length": str(len(data)),
    }
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return client.post("/v1/objects/by-hash", headers=sent, content=content)


def _metric(client: httpx.Client, name: str) -> float:
    return value(parse_samples(client.get("/metrics").text), name)


def test_a_tenant_commits_its_own_content_and_gets_the_json_of_an_upload(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    tenant = unique_name()
    uploaded = upload(client, auth, tenant, "files", "model.bin", DATA)
    assert uploaded.status_code == 201, uploaded.text
    received = _metric(client, "just_storage_uploaded_bytes_total")
    hits = _metric(client, "just_storage_dedup_hits_total")

    made = by_hash(client, auth, tenant, "copy.bin", Content_Type="application/x-model")

    assert made.status_code == 201, made.text
    body = made.json()
    assert set(body) == set(uploaded.json())
    assert body["id"] != uploaded.json()["id"]
    assert (body["namespace"], body["key"], body["tenant_id"]) == ("models", "copy.bin", tenant)
    assert body["content_hash"] == uploaded.json()["content_hash"]
    assert body["size_bytes"] == len(DATA) and body["content_type"] == "application/x-model"
    assert made.headers["location"] == f"/v1/objects/{body['id']}"
    assert made.headers["etag"] == uploaded.headers["etag"]
    assert _metric(client, "just_storage_uploaded_bytes_total") == received  # none sent
    assert _metric(client, "just_storage_dedup_hits_total") == hits + 1
    got = client.get(by_key_path("models", tenant, "copy.bin"), headers=auth)
    assert got.status_code == 200 and got.content == DATA
    usage = client.get("/v1/usage", params={"tenant": tenant}, headers=auth).json()
    assert (usage["objects"], usage["logical_bytes"]) == (2, 2 * len(DATA))
    again = by_hash(client, auth, tenant, "copy.bin", If_None_Match="*")
    assert_error(again, 412, "PreconditionFailed")


def test_another_tenants_content_is_the_404_of_content_nobody_stores(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    owner, prober = unique_name(), unique_name()
    assert upload(client, auth, owner, "files", "secret.bin", DATA).status_code == 201

    theirs = assert_error(by_hash(client, auth, prober, "guess"), 404, "NotFound")
    nobodys = assert_error(
        by_hash(client, auth, prober, "guess", b"stored by nobody"), 404, "NotFound"
    )

    assert theirs["message"] == nobodys["message"]
    listed = client.get(
        "/v1/objects", params={"tenant": prober, "namespace": "models"}, headers=auth
    )
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"X-Content-SHA256": None}, "x-content-sha256"),
        ({"X-Content-SHA256": "abc"}, "X-Content-SHA256"),
        ({"X-Content-Length": None}, "x-content-length"),
        ({"X-Content-Length": "-1"}, "X-Content-Length"),
        ({"X-Content-Length": "１２"}, "X-Content-Length"),
        ({"X-Key": None}, "x-key"),
        ({"X-Storage-Class": "warm"}, "storage"),
        ({"If-None-Match": "*", "If-Match": '"sha256:' + "0" * 64 + '"'}, ""),
    ],
)
def test_missing_or_malformed_headers_are_a_json_400(
    client: httpx.Client, auth: dict[str, str], headers: dict[str, str | None], problem: str
) -> None:
    sent: dict[str, Any] = {
        **auth,
        "X-Tenant": unique_name(),
        "X-Namespace": "models",
        "X-Key": "k",
        "X-Content-SHA256": sha256_hex(DATA),
        "X-Content-Length": str(len(DATA)),
    }
    for name, given in headers.items():
        if given is None:
            sent.pop(name)
        else:
            sent[name] = given.encode("utf-8")
    error = assert_error(client.post("/v1/objects/by-hash", headers=sent), 400, "BadRequest")
    assert problem.lower() in error["message"].lower()


def test_a_body_is_a_400_whether_its_length_is_declared_or_chunked(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    tenant = unique_name()
    assert upload(client, auth, tenant, "files", "model.bin", DATA).status_code == 201

    declared = by_hash(client, auth, tenant, "copy", content=b"some bytes")
    chunked = by_hash(client, auth, tenant, "copy", content=iter([b"some ", b"bytes"]))

    assert "no body" in assert_error(declared, 400, "BadRequest")["message"]
    assert "no body" in assert_error(chunked, 400, "BadRequest")["message"]
    assert by_hash(client, auth, tenant, "copy", content=iter([b""])).status_code == 201


def test_by_hash_needs_objects_write_on_the_tenant(
    server: Server, client: httpx.Client, auth: dict[str, str]
) -> None:
    tenant, elsewhere = unique_name(), unique_name()
    assert upload(client, auth, tenant, "files", "model.bin", DATA).status_code == 201
    reader = server.create_key([tenant], ["objects:read"])["key"]
    stranger = server.create_key([elsewhere], ["objects:write"])["key"]

    no_scope = by_hash(client, {"Authorization": f"Bearer {reader}"}, tenant, "copy")
    not_held = by_hash(client, {"Authorization": f"Bearer {stranger}"}, tenant, "copy")
    anonymous = by_hash(client, {}, tenant, "copy")

    assert_error(no_scope, 403, "Forbidden")
    assert_error(not_held, 403, "Forbidden")
    assert_error(anonymous, 401, "Unauthorized")


def test_the_404_takes_as_long_when_another_tenant_holds_the_bytes(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    """Alternating probes of one tenant: a hash many objects of another tenant hold,
    and a hash nobody holds. Their latencies must not differ (SPEC §5)."""
    owner, prober = unique_name(), unique_name()
    for n in range(50):  # rows of another tenant that a lookup by hash would step over
        assert upload(client, auth, owner, "files", f"copy-{n}", DATA).status_code == 201
    nobody = os.urandom(len(DATA))

    def probe(data: bytes) -> None:
        answer = by_hash(client, auth, prober, "probe", data)
        assert answer.status_code == 404, answer.text

    rounds = []
    for _ in range(ROUNDS):
        rounds.append(measure(lambda: probe(DATA), lambda: probe(nobody), PAIRS))
        if not rounds[-1].differs:
            break
    print("by-hash 404, other tenant's vs nobody's:", "; ".join(map(str, rounds)))
    assert not rounds[-1].differs, rounds


@pytest.fixture
async def leaky_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, with a lookup that also asks whether *any* tenant holds the
    content and takes half a millisecond longer when one does: the leak the timing
    test exists to catch."""
    holds_content = SqlObjectRepository.holds_content

    async def leaky(self: SqlObjectRepository, tenant: Any, *args: Any) -> bool:
        held = await holds_content(self, tenant, *args)
        row = await self._s.fetchone(
            "SELECT 1 FROM objects WHERE content_hash = ? AND state = 'COMMITTED'",
            (args[1].hex,),
        )
        if row is not None:
            await asyncio.sleep(0.0005)
        return held

    monkeypatch.setattr(SqlObjectRepository, "holds_content", leaky)
    services = build(Settings(data_dir=tmp_path, auth="disabled"))
    app = create_app(services, run_background=False)
    async with app.router.lifespan_context(app) as state:

        async def served(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


@pytest.mark.anyio
async def test_the_timing_comparison_catches_a_lookup_that_depends_on_other_tenants(
    leaky_client: httpx.AsyncClient,
) -> None:
    stored = await leaky_client.post(
        "/v1/objects",
        headers={"X-Tenant": "owner", "X-Namespace": "files", "X-Key": "k"},
        content=DATA,
    )
    assert stored.status_code == 201, stored.text
    nobody = os.urandom(len(DATA))

    async def probe(data: bytes) -> None:
        answer = await leaky_client.post(
            "/v1/objects/by-hash",
            headers={
                "X-Tenant": "prober",
                "X-Namespace": "models",
                "X-Key": "probe",
                "X-Content-SHA256": sha256_hex(data),
                "X-Content-Length": str(len(data)),
            },
        )
        assert answer.status_code == 404, answer.text

    for _ in range(ROUNDS):  # caught every time, not by luck
        found = await measure_async(lambda: probe(DATA), lambda: probe(nobody), PAIRS)
        print("leaky lookup:", found)
        assert found.differs, found
