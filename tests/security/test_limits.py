"""Throttling and quotas against the real server (SPEC §4; docs/decisions.md "Limits").

Per-tenant limits come from the TOML file, defaults from the environment. The
concurrency cap's 429 is tested in e2e/test_limits_consistency.py.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from e2e.support import assert_error, by_key_path, temp_files, unique_name, upload
from juststorage.testing import Server, StartServer

from .support import assert_unchanged, store_state

pytestmark = pytest.mark.e2e

CONFIG = """
[tenants.slow]
rate_limit_rps = 2

# One request, then none for ~17 minutes: a 429 that no refill can race.
[tenants.stuck]
rate_limit_rps = 0.001

[tenants.narrow]
upload_bps = 1000

[tenants.small]
quota_bytes = 100

[tenants.readonly]
quota_bytes = 0

[tenants.racing]
quota_bytes = 100000

[tenants.pipe]
upload_bps = 100000
"""


@pytest.fixture(scope="module")
def server(start_server: StartServer, tmp_path_factory: pytest.TempPathFactory) -> Server:
    config = tmp_path_factory.mktemp("config") / "juststorage.toml"
    config.write_text(CONFIG, "utf-8")
    return start_server(JUSTSTORAGE_CONFIG=str(config), JUSTSTORAGE_QUOTA_BYTES="1000000")


def _list(server: Server, tenant: str) -> dict[str, str]:
    response = server.client.get(
        "/v1/objects", params={"tenant": tenant, "namespace": "n"}, headers=server.admin_headers()
    )
    return {**response.headers, "status": str(response.status_code)}


def test_rate_limited_tenant_sees_its_budget_and_429_says_when_to_retry(server: Server) -> None:
    first = _list(server, "slow")
    assert first["status"] == "200"
    assert first["x-ratelimit-limit"] == "2"
    assert first["x-ratelimit-remaining"] == "1"
    assert int(first["x-ratelimit-reset"]) >= 1
    assert first["x-ratelimit-resource"] == "requests"
    # The 429 from a tenant whose budget cannot refill while the test runs (at 2 per
    # second a slow machine's requests could each earn the next one's token).
    assert _list(server, "stuck")["status"] == "200"
    query = {"tenant": "stuck", "namespace": "n"}
    responses = [
        server.client.get("/v1/objects", params=query, headers=server.admin_headers())
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [429] * 3
    refused = responses[0]
    assert_error(refused, 429, "TooManyRequests")
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-ratelimit-limit"] == "1"
    assert refused.headers["x-ratelimit-resource"] == "requests"
    # A missing object of a throttled tenant carries the headers on its 404 too.
    missing = server.client.get(by_key_path("n", "slow", "nope"), headers=server.admin_headers())
    assert missing.status_code in (404, 429)
    assert "x-ratelimit-limit" in missing.headers
    # Other tenants are neither limited nor told about limits.
    free = _list(server, unique_name())
    assert free["status"] == "200" and "x-ratelimit-limit" not in free
    metrics = server.client.get("/metrics").text
    assert 'just_storage_throttled_requests_total{tenant="stuck"} 3.0' in metrics


def test_upload_bandwidth_debt_is_429_naming_the_byte_budget(server: Server) -> None:
    auth = server.admin_headers()
    assert upload(server.client, auth, "narrow", "n", "big", b"x" * 5000).status_code == 201
    refused = upload(server.client, auth, "narrow", "n", "next", b"y")
    assert_error(refused, 429, "TooManyRequests")
    assert int(refused.headers["retry-after"]) >= 3
    assert refused.headers["x-ratelimit-resource"] == "upload-bytes"
    assert refused.headers["x-ratelimit-limit"] == "1000"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert server.client.get(by_key_path("n", "narrow", "next"), headers=auth).status_code == 404
    # Reads are not charged against the upload budget.
    assert server.client.get(by_key_path("n", "narrow", "big"), headers=auth).status_code == 200


def _read_until_closed(sock: socket.socket) -> bytes:
    """The whole answer of a server that closes the connection after it (head and body
    may come in separate segments)."""
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def test_quota_refuses_a_declared_length_before_the_body_is_sent(server: Server) -> None:
    auth = server.admin_headers()
    assert upload(server.client, auth, "small", "n", "first", b"x" * 60).status_code == 201
    before = store_state(server)
    head = (
        "POST /v1/objects HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.admin_key}\r\n"
        "X-Tenant: small\r\nX-Namespace: n\r\nX-Key: second\r\n"
        "Content-Length: 41\r\n\r\n"
    ).encode("ascii")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)  # no body: the answer must come without it
        reply = _read_until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert b'"PayloadTooLarge"' in reply and b"quota" in reply
    assert b"connection: close" in reply.lower()
    assert_unchanged(server, before)


def test_quota_stops_a_chunked_body_once_it_passes(server: Server) -> None:
    auth = server.admin_headers()
    before = store_state(server)
    sent = []

    def body() -> Iterator[bytes]:
        for _ in range(100):  # 100 KiB offered; the quota leaves 40 bytes
            sent.append(1024)
            yield b"z" * 1024

    response = server.client.post(
        "/v1/objects",
        headers={**auth, "X-Tenant": "small", "X-Namespace": "n", "X-Key": "chunked"},
        content=body(),
    )
    assert_error(response, 413, "PayloadTooLarge")
    assert_unchanged(server, before)
    assert not temp_files(server.data_dir / "hot")
    usage = server.client.get("/v1/usage", params={"tenant": "small"}, headers=auth).json()
    assert usage["logical_bytes"] == 60
    # Exactly what is left still fits.
    assert upload(server.client, auth, "small", "n", "rest", b"r" * 40).status_code == 201


def test_zero_quota_refuses_every_byte_but_not_empty_objects(server: Server) -> None:
    auth = server.admin_headers()
    assert_error(upload(server.client, auth, "readonly", "n", "k", b"x"), 413, "PayloadTooLarge")
    assert upload(server.client, auth, "readonly", "n", "marker", b"").status_code == 201


def test_default_quota_applies_to_tenants_without_their_own(server: Server) -> None:
    auth = server.admin_headers()
    tenant = unique_name()
    head = {**auth, "X-Tenant": tenant, "X-Namespace": "n", "X-Key": "k"}
    response = server.client.post(
        "/v1/objects", headers={**head, "Content-Length": "1000001"}, content=b"x" * 1000001
    )
    assert_error(response, 413, "PayloadTooLarge")
    assert upload(server.client, auth, tenant, "n", "k", b"x" * 1000).status_code == 201


def _in_parallel(server: Server, count: int, send: Callable[[httpx.Client, int], int]) -> list[int]:
    """`send(client, index)` from `count` threads at once, each on its own connection."""

    def one(index: int) -> int:
        with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
            return send(client, index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def test_concurrent_uploads_never_take_usage_over_the_quota(server: Server) -> None:
    """Ten uploads of 90 kB at once against a quota of 100 kB: each reserves its
    length before its body is read, so floor(100/90) = 1 is stored and nine get 413."""
    auth = server.admin_headers()
    data = os.urandom(90_000)
    statuses = _in_parallel(
        server, 10, lambda c, i: upload(c, auth, "racing", "n", f"k{i}", data).status_code
    )
    assert sorted(statuses) == [201] + [413] * 9, statuses
    usage = server.client.get("/v1/usage", params={"tenant": "racing"}, headers=auth).json()
    assert usage["logical_bytes"] == 90_000


def test_parallel_uploads_share_the_bandwidth_limit(server: Server) -> None:
    """Ten uploads of 50 kB at once against 100 kB/s: what is accepted fits the bucket
    (its burst plus the rate over the elapsed time), not ten times it."""
    auth = server.admin_headers()
    data = os.urandom(50_000)
    started = time.monotonic()
    statuses = _in_parallel(
        server, 10, lambda c, i: upload(c, auth, "pipe", "n", f"k{i}", data).status_code
    )
    elapsed = time.monotonic() - started
    accepted = statuses.count(201) * len(data)
    assert accepted <= 100_000 + 100_000 * elapsed, (statuses, elapsed)
    assert accepted >= 50_000 and set(statuses) <= {201, 429}, statuses


def test_failed_authentications_from_one_address_are_429_for_it_alone(
    start_server: StartServer,
) -> None:
    """Three failures a minute: the fourth try from that address is 429 with
    Retry-After, even with a good key; another address still authenticates."""
    server = start_server(JUSTSTORAGE_AUTH_FAILURES_PER_MINUTE="3")
    bad = {"Authorization": "Bearer not-a-key"}
    query = {"tenant": "t", "namespace": "n"}
    for _ in range(3):
        assert_error(
            server.client.get("/v1/objects", params=query, headers=bad), 401, "Unauthorized"
        )
    refused = server.client.get("/v1/objects", params=query, headers=bad)
    assert_error(refused, 429, "TooManyRequests")
    assert int(refused.headers["retry-after"]) >= 1
    good = server.admin_headers()
    assert server.client.get("/v1/objects", params=query, headers=good).status_code == 429
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.url, transport=other, trust_env=False) as client:
        assert client.get("/v1/objects", params=query, headers=good).status_code == 200
        assert_error(client.get("/v1/objects", params=query, headers=bad), 401, "Unauthorized")
    assert server.client.get("/health").status_code == 200  # needs no credential
