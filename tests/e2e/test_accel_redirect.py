"""Whole downloads handed to nginx with X-Accel-Redirect (JUSTSTORAGE_ACCEL_REDIRECT):
the server alone, then behind a real nginx configured by deploy/nginx/juststorage.conf."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from debian_tools import debian_tool
from nginx_proxy import Nginx, running_nginx
from server_process import Server, start, wait_until

from .support import blob_file, by_key_path, sha256_hex, unique_name, upload

pytestmark = pytest.mark.e2e

BIG = 300 * 1024  # above the size from which whole downloads are handed over
SMALL = 4096
MAPPING = "/_juststorage_blobs/"
# The headers a download carries whoever sends its body.
OBJECT_HEADERS = (
    "content-type",
    "content-length",
    "etag",
    "last-modified",
    "x-object-id",
    "x-storage-class",
    "accept-ranges",
)


def _start(root: Path, **extra: str) -> Server:
    return start(root, {"JUSTSTORAGE_LOG_LEVEL": "warning", **extra})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _start(tmp_path_factory.mktemp("accel"), JUSTSTORAGE_ACCEL_REDIRECT="true")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def proxy(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    nginx = debian_tool("nginx", "nginx-light")
    with running_nginx(
        nginx,
        tmp_path_factory.mktemp("nginx"),
        upstream=f"127.0.0.1:{server.port}",
        data_dir=server.data_dir,
    ) as running:
        yield running


def _stored(server: Server, size: int, **headers: str) -> tuple[str, str, bytes]:
    """(tenant, object id, bytes) of a fresh object of `size` random bytes."""
    tenant, data = unique_name(), os.urandom(size)
    response = upload(server.client, server.admin_headers(), tenant, "n", "k", data, **headers)
    assert response.status_code == 201, response.text
    return tenant, response.json()["id"], data


def _get(server: Server, tenant: str, object_id: str, **headers: str) -> httpx.Response:
    """GET by id; keyword names are header names with "_" for "-"."""
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    return server.client.get(
        f"/v1/objects/{object_id}",
        headers={**server.admin_headers(), "X-Tenant": tenant, **named},
    )


@pytest.mark.filesystem_layout
def test_a_mapped_whole_download_is_redirected_with_the_objects_headers(server: Server) -> None:
    tenant, object_id, data = _stored(server, BIG, Content_Type="application/x-model")
    mapping = f"{server.data_dir}/={MAPPING}"
    direct = _get(server, tenant, object_id)
    handed = _get(server, tenant, object_id, X_Accel_Mapping=mapping)
    assert direct.content == data
    assert handed.status_code == 200 and handed.content == b""
    relative = blob_file(Path("hot"), sha256_hex(data))
    assert handed.headers["x-accel-redirect"] == f"{MAPPING}{relative}"
    assert handed.headers["content-length"] == "0"
    for name in OBJECT_HEADERS:
        if name != "content-length":
            assert handed.headers[name] == direct.headers[name], name
    assert "x-accel-redirect" not in direct.headers


@pytest.mark.filesystem_layout
@pytest.mark.parametrize(
    "case",
    ["small object", "range", "head", "not modified", "unmapped directory", "malformed mapping"],
)
def test_other_downloads_send_their_bytes_themselves(server: Server, case: str) -> None:
    tenant, object_id, data = _stored(server, SMALL if case == "small object" else BIG)
    mapping = {
        "unmapped directory": f"{server.data_dir}/cold/={MAPPING}",
        "malformed mapping": f"{server.data_dir}/../={MAPPING}",
    }.get(case, f"{server.data_dir}={MAPPING}")  # a missing trailing slash is added
    extra = {"X-Accel-Mapping": mapping}
    if case == "range":
        extra["Range"] = "bytes=10-19"
    if case == "not modified":
        extra["If-None-Match"] = f'"sha256:{sha256_hex(data)}"'
    if case == "head":
        response = server.client.head(
            f"/v1/objects/{object_id}",
            headers={**server.admin_headers(), "X-Tenant": tenant, **extra},
        )
        assert response.headers["content-length"] == str(len(data))
    else:
        response = _get(server, tenant, object_id, **extra)
    assert "x-accel-redirect" not in response.headers
    expected = {"range": (206, data[10:20]), "not modified": (304, b""), "head": (200, b"")}
    assert (response.status_code, response.content) == expected.get(case, (200, data))


@pytest.mark.filesystem_layout
def test_the_mapping_is_ignored_unless_the_server_is_told_to_trust_it(tmp_path: Path) -> None:
    server = _start(tmp_path)
    try:
        tenant, object_id, data = _stored(server, BIG)
        response = _get(server, tenant, object_id, X_Accel_Mapping=f"{server.data_dir}/={MAPPING}")
        assert response.content == data
        assert "x-accel-redirect" not in response.headers
    finally:
        server.stop()


@pytest.mark.filesystem_layout
def test_through_nginx_downloads_are_whole_and_carry_the_objects_headers(
    server: Server, proxy: Nginx
) -> None:
    tenant, auth = unique_name(), server.admin_headers()
    data = os.urandom(3 * 1024 * 1024 + 17)
    with httpx.Client(base_url=proxy.url, timeout=30.0, trust_env=False) as client:
        # The upload streams through nginx too (no request buffering).
        created = upload(client, auth, tenant, "n", "model.bin", data, Content_Type="x/y")
        assert created.status_code == 201, created.text
        object_id = created.json()["id"]
        get = {**auth, "X-Tenant": tenant}
        # A client's own mapping is replaced by nginx's, so it cannot steer the redirect.
        forged = {**get, "X-Accel-Mapping": "/=/x/"}
        proxied = client.get(f"/v1/objects/{object_id}", headers=forged)
        direct = _get(server, tenant, object_id)
        assert proxied.status_code == 200
        assert proxied.content == data
        # nginx sent the file itself: it served the blob's internal URI.
        relative = blob_file(Path("hot"), sha256_hex(data))
        served = f"/v1/objects/{object_id} {MAPPING}{relative} 200 {len(data)}"
        assert wait_until(lambda: served in proxy.access_log.read_text(), 5), served
        for name in OBJECT_HEADERS:
            assert proxied.headers[name] == direct.headers[name], name
        assert proxied.headers["x-request-id"]
        assert "x-accel-redirect" not in proxied.headers
        by_key = client.get(by_key_path("n", tenant, "model.bin"), headers=auth)
        assert by_key.content == data
        # Ranges and conditionals are the server's answers, passed through.
        ranged = client.get(f"/v1/objects/{object_id}", headers={**get, "Range": "bytes=5-9"})
        assert (ranged.status_code, ranged.content) == (206, data[5:10])
        etag = direct.headers["etag"]
        unchanged = client.get(f"/v1/objects/{object_id}", headers={**get, "If-None-Match": etag})
        assert unchanged.status_code == 304
        # Credentials are still checked: nginx sends nothing without the server's say-so.
        refused = client.get(f"/v1/objects/{object_id}", headers={"X-Tenant": tenant})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"]
        # The blob files themselves are not reachable from outside.
        assert client.get(f"{MAPPING}{relative}").status_code == 404
        assert client.get(f"{MAPPING}meta.db").status_code == 404
