"""Limits (SPEC §4) and consistency rules (SPEC §5) observable over HTTP."""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from juststorage.testing import Server, StartServer, wait_until

from .support import (
    assert_error,
    blob_file,
    by_key_path,
    sha256_hex,
    temp_files,
    unique_name,
    upload,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(JUSTSTORAGE_MAX_CONCURRENT_UPLOADS="2")


@pytest.fixture(scope="module")
def files_server(start_server: StartServer) -> Server:
    """The same settings with inlining off (threshold 0): for the tests that look at
    blob files and temp files (the default `server` keeps small blobs inline)."""
    return start_server(JUSTSTORAGE_MAX_CONCURRENT_UPLOADS="2", JUSTSTORAGE_INLINE_MAX_BYTES="0")


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


@pytest.fixture
def files_auth(files_server: Server) -> dict[str, str]:
    return files_server.admin_headers()


def _open_upload(server: Server, tenant: str, key: str) -> socket.socket:
    """An upload whose body is still on its way (the caller closes the socket)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(
        (
            "POST /v1/objects HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {server.admin_key}\r\n"
            f"X-Tenant: {tenant}\r\nX-Namespace: n\r\nX-Key: {key}\r\n"
            "Content-Length: 1000\r\n\r\n"
        ).encode("ascii")
        + b"x" * 10
    )
    return sock


def _uploads_in_flight(server: Server) -> float:
    for line in server.client.get("/metrics").text.splitlines():
        if line.startswith("just_storage_uploads_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no just_storage_uploads_in_flight gauge")


@pytest.mark.filesystem_layout
def test_uploads_over_the_concurrency_cap_are_429(
    files_server: Server, files_auth: dict[str, str]
) -> None:
    tenants = [unique_name() for _ in range(3)]
    hot = files_server.data_dir / "hot"
    # One upload each for two tenants (each may hold one of the two slots).
    socks = [_open_upload(files_server, tenant, "slow") for tenant in tenants[:2]]
    try:
        assert wait_until(lambda: _uploads_in_flight(files_server) == 2, timeout=10)
        refused = upload(files_server.client, files_auth, tenants[2], "n", "third", b"x")
        assert_error(refused, 429, "TooManyRequests")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-resource"] == "concurrent-uploads"
        path = by_key_path("n", tenants[0], "slow")
        assert files_server.client.get(path, headers=files_auth).status_code == 404
    finally:
        for sock in socks:
            sock.close()
    assert wait_until(lambda: not temp_files(hot), timeout=10)
    accepted = wait_until(
        lambda: (
            upload(files_server.client, files_auth, tenants[2], "n", "third", b"x").status_code
            == 201
        ),
        timeout=5,
    )
    assert accepted, "upload slots were not released after the clients went away"
    metrics = files_server.client.get("/metrics").text
    assert "just_storage_throttled_requests_total" in metrics


def test_stalled_uploads_of_one_tenant_leave_slots_for_another(
    server: Server, auth: dict[str, str]
) -> None:
    """The process has two slots; one tenant's stalled uploads take its share (one)
    and no more, so another tenant still uploads."""
    hog, other = unique_name(), unique_name()
    socks = [_open_upload(server, hog, f"stalled{i}") for i in range(2)]
    try:
        assert wait_until(lambda: _uploads_in_flight(server) == 1, timeout=10)
        refused = upload(server.client, auth, hog, "n", "more", b"x")
        assert_error(refused, 429, "TooManyRequests")
        assert refused.headers["x-ratelimit-resource"] == "tenant-concurrent-uploads"
        assert upload(server.client, auth, other, "n", "k", b"x").status_code == 201
    finally:
        for sock in socks:
            sock.close()
    assert wait_until(lambda: _uploads_in_flight(server) == 0, timeout=10)


def test_request_rate_limit_is_429_with_retry_after(start_server: StartServer) -> None:
    # One request per tenant, then none for ~17 minutes: no refill races the test
    # (at a few per second a slow machine's requests could each earn the next token).
    server = start_server(JUSTSTORAGE_RATE_LIMIT_RPS="0.001")
    auth = server.admin_headers()
    tenant = unique_name()
    statuses = []
    for _ in range(10):
        response = server.client.get(
            "/v1/objects", params={"tenant": tenant, "namespace": "n"}, headers=auth
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert_error(response, 429, "TooManyRequests")
            assert int(response.headers["retry-after"]) >= 1
            break
    assert statuses[0] == 200
    assert 429 in statuses
    other = server.client.get(
        "/v1/objects", params={"tenant": unique_name(), "namespace": "n"}, headers=auth
    )
    assert other.status_code == 200  # the limit is per tenant
    assert server.client.get("/health").status_code == 200
    assert f'just_storage_throttled_requests_total{{tenant="{tenant}"}}' in (
        server.client.get("/metrics").text
    )


@pytest.mark.filesystem_layout
def test_concurrent_uploads_of_the_same_bytes_keep_every_version(
    files_server: Server, files_auth: dict[str, str]
) -> None:
    tenant = unique_name()
    data = os.urandom(200_000)

    def put(index: int) -> httpx.Response:
        with httpx.Client(base_url=files_server.url, timeout=30, trust_env=False) as client:
            deadline = time.monotonic() + 20  # bounded retries while the upload cap (2) is busy
            while True:
                response = upload(client, files_auth, tenant, "n", f"k{index % 3}", data)
                if response.status_code != 429 or time.monotonic() > deadline:
                    return response
                time.sleep(0.02)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(put, range(12)))
    assert [r.status_code for r in responses] == [201] * 12, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 12
    digest = sha256_hex(data)
    assert list((files_server.data_dir / "hot" / "sha256").rglob(digest)) == [
        blob_file(files_server.data_dir / "hot", digest)
    ]
    listed = files_server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": "n", "versions": "true"},
        headers=files_auth,
    ).json()["items"]
    assert len(listed) == 12
    for response in responses:
        by_id = files_server.client.get(
            response.headers["location"], headers={**files_auth, "X-Tenant": tenant}
        )
        assert by_id.content == data


@pytest.mark.filesystem_layout
def test_same_bytes_in_both_classes_are_two_blobs(
    files_server: Server, files_auth: dict[str, str]
) -> None:
    tenant = unique_name()
    data = os.urandom(3000)
    for storage_class in ("hot", "cold"):
        response = upload(
            files_server.client,
            files_auth,
            tenant,
            "n",
            storage_class,
            data,
            X_Storage_Class=storage_class,
        )
        assert response.status_code == 201
    for root in ("hot", "cold"):
        assert blob_file(files_server.data_dir / root, sha256_hex(data)).read_bytes() == data


def test_dedup_across_tenants_changes_no_answer(server: Server, auth: dict[str, str]) -> None:
    data = os.urandom(2048)
    first = upload(server.client, auth, unique_name(), "n", "k", data)
    second = upload(server.client, auth, unique_name(), "n", "k", data)
    assert first.status_code == second.status_code == 201
    assert set(first.headers) == set(second.headers)
    assert first.headers["etag"] == second.headers["etag"]
    assert set(first.json()) == set(second.json())


@pytest.mark.filesystem_layout
def test_delete_of_one_deduplicated_object_keeps_the_other(
    files_server: Server, files_auth: dict[str, str]
) -> None:
    tenant = unique_name()
    data = os.urandom(4096)
    one = upload(files_server.client, files_auth, tenant, "n", "one", data).json()
    upload(files_server.client, files_auth, tenant, "n", "two", data)
    deleted = files_server.client.delete(
        f"/v1/objects/{one['id']}", headers={**files_auth, "X-Tenant": tenant}
    )
    assert deleted.status_code == 204
    assert (
        files_server.client.get(by_key_path("n", tenant, "two"), headers=files_auth).content == data
    )
    assert blob_file(files_server.data_dir / "hot", sha256_hex(data)).exists()


def test_key_with_only_deleted_versions_counts_as_absent(
    server: Server, auth: dict[str, str]
) -> None:
    tenant = unique_name()
    first = upload(server.client, auth, tenant, "n", "k", b"first")
    server.client.delete(by_key_path("n", tenant, "k"), headers=auth)
    stale = upload(server.client, auth, tenant, "n", "k", b"x", If_Match=first.headers["etag"])
    assert_error(stale, 412, "PreconditionFailed")
    again = upload(server.client, auth, tenant, "n", "k", b"again", If_None_Match="*")
    assert again.status_code == 201, again.text
    assert server.client.get(by_key_path("n", tenant, "k"), headers=auth).content == b"again"


def test_listing_after_deleting_the_newest_version_shows_the_previous(
    server: Server, auth: dict[str, str]
) -> None:
    tenant = unique_name()
    old = upload(server.client, auth, tenant, "n", "k", b"old").json()
    new = upload(server.client, auth, tenant, "n", "k", b"new").json()
    server.client.delete(f"/v1/objects/{new['id']}", headers={**auth, "X-Tenant": tenant})
    items = server.client.get(
        "/v1/objects", params={"tenant": tenant, "namespace": "n"}, headers=auth
    ).json()["items"]
    assert [i["id"] for i in items] == [old["id"]]


@pytest.mark.parametrize("content_type", ["text/plain; charset=\u00e9", "a" * 256])
def test_unusable_content_type_is_400(
    server: Server, auth: dict[str, str], content_type: str
) -> None:
    response = server.client.post(
        "/v1/objects",
        headers={
            **auth,
            "X-Tenant": unique_name(),
            "X-Namespace": "n",
            "X-Key": "k",
            "Content-Type": content_type.encode("utf-8"),
        },
        content=b"x",
    )
    assert_error(response, 400, "BadRequest")
