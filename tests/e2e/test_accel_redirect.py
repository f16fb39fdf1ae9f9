"""Whole downloads handed to nginx with X-Accel-Redirect (JUSTSTORAGE_ACCEL_REDIRECT):
the server alone, then behind a real nginx configured by deploy/nginx/juststorage.conf."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from juststorage.testing import Server, start, wait_until
from support.debian_tools import debian_tool
from support.nginx_proxy import Nginx, running_nginx

from .support import blob_file, by_key_path, sha256_hex, unique_name, upload

pytestmark = [pytest.mark.e2e, pytest.mark.filesystem_layout]

BIG = 300 * 1024  # above the size from which whole downloads are handed over
SMALL = 4096
HOT_URI = "/_juststorage_hot/"
# The headers a download carries whoever sends its body.
OBJECT_HEADERS = (
    "content-type",
    "content-length",
    "etag",
    "last-modified",
    "x-object-id",
    "x-storage-class",
    "x-content-type-options",
    "content-security-policy",
    "cache-control",
    "accept-ranges",
    "x-ratelimit-limit",
)


def _start(root: Path, **extra: str) -> Server:
    return start(root, {"JUSTSTORAGE_LOG_LEVEL": "warning", **extra})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _start(
        tmp_path_factory.mktemp("accel"),
        JUSTSTORAGE_ACCEL_REDIRECT="true",
        JUSTSTORAGE_RATE_LIMIT_RPS="1000",  # so answers carry X-RateLimit-* headers
    )
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


def _mapping(server: Server) -> str:
    """What nginx sends for the default roots (deploy/nginx/juststorage.conf)."""
    return f"{server.data_dir}/hot/sha256/={HOT_URI}, {server.data_dir}/cold/sha256/=/_c/"


def _stored(server: Server, size: int, **headers: str) -> tuple[str, str, bytes]:
    """(tenant, object id, bytes) of a fresh object of `size` random bytes."""
    tenant, data = unique_name(), os.urandom(size)
    response = upload(server.client, server.admin_headers(), tenant, "n", "k", data, **headers)
    assert response.status_code == 201, response.text
    return tenant, response.json()["id"], data


def _get(
    client: httpx.Client, server: Server, tenant: str, object_id: str, headers: dict[str, str]
) -> httpx.Response:
    return client.get(
        f"/v1/objects/{object_id}",
        headers={**server.admin_headers(), "X-Tenant": tenant, **headers},
    )


def _hot_uri(data: bytes) -> str:
    digest = sha256_hex(data)
    return f"{HOT_URI}{digest[:2]}/{digest[2:4]}/{digest}"


def _http_date(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC), usegmt=True)


def test_a_mapped_whole_download_is_redirected_with_the_objects_headers(server: Server) -> None:
    tenant, object_id, data = _stored(server, BIG, Content_Type="application/x-model")
    direct = _get(server.client, server, tenant, object_id, {})
    handed = _get(server.client, server, tenant, object_id, {"X-Accel-Mapping": _mapping(server)})
    assert direct.content == data
    assert handed.status_code == 200 and handed.content == b""
    assert handed.headers["x-accel-redirect"] == _hot_uri(data)
    assert handed.headers["content-length"] == "0"
    for name in OBJECT_HEADERS:
        if name not in ("content-length", "x-ratelimit-remaining"):
            assert handed.headers[name] == direct.headers[name], name
    assert "x-accel-redirect" not in direct.headers


_SOON = datetime.now(UTC) + timedelta(days=1)


@pytest.mark.parametrize(
    ("case", "extra"),
    [
        ("small object", {}),
        ("range", {"Range": "bytes=10-19"}),
        ("head", {}),
        ("not modified", {}),
        ("If-None-Match of other bytes", {"If-None-Match": '"sha256:' + "0" * 64 + '"'}),
        ("If-Match", {"If-Match": "*"}),
        ("If-Modified-Since", {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}),
        ("If-Unmodified-Since", {"If-Unmodified-Since": _http_date(_SOON)}),
        ("If-Range", {"If-Range": "*"}),
        ("cold root not mapped", {"X-Accel-Mapping": "/elsewhere/=/_x/"}),
        ("malformed mapping", {"X-Accel-Mapping": "/data/../=/_x/"}),
        ("truncated blob file", {}),
    ],
)
def test_other_downloads_send_their_bytes_themselves(
    server: Server, case: str, extra: dict[str, str]
) -> None:
    tenant, object_id, data = _stored(server, SMALL if case == "small object" else BIG)
    headers = {"X-Accel-Mapping": _mapping(server), **extra}
    if case == "not modified":
        headers["If-None-Match"] = f'"sha256:{sha256_hex(data)}"'
    if case == "truncated blob file":
        # Damage fsck would report: nginx would send the short file as a whole 200.
        os.truncate(blob_file(server.data_dir / "hot", sha256_hex(data)), BIG - 1)
        url = f"/v1/objects/{object_id}"
        # The server fails the download rather than send the short file: granian may
        # drop the connection before its head is out or after (that varies run to
        # run); either way no whole response arrives and nginx is not handed the file.
        with (
            pytest.raises(httpx.HTTPError),
            server.client.stream(
                "GET", url, headers={**server.admin_headers(), "X-Tenant": tenant, **headers}
            ) as streamed,
        ):
            assert "x-accel-redirect" not in streamed.headers
            assert streamed.headers["content-length"] == str(BIG)
            streamed.read()
        return
    if case == "head":
        response = server.client.head(
            f"/v1/objects/{object_id}",
            headers={**server.admin_headers(), "X-Tenant": tenant, **headers},
        )
        assert response.headers["content-length"] == str(len(data))
    else:
        response = _get(server.client, server, tenant, object_id, headers)
    assert "x-accel-redirect" not in response.headers
    expected = {"range": (206, data[10:20]), "not modified": (304, b""), "head": (200, b"")}
    assert (response.status_code, response.content) == expected.get(case, (200, data))


def test_the_mapping_is_ignored_unless_the_server_is_told_to_trust_it(tmp_path: Path) -> None:
    server = _start(tmp_path)
    try:
        tenant, object_id, data = _stored(server, BIG)
        mapping = {"X-Accel-Mapping": _mapping(server)}
        response = _get(server.client, server, tenant, object_id, mapping)
        assert response.content == data
        assert "x-accel-redirect" not in response.headers
    finally:
        server.stop()


def test_through_nginx_downloads_are_whole_and_carry_the_objects_headers(
    server: Server, proxy: Nginx
) -> None:
    tenant, auth = unique_name(), server.admin_headers()
    data = os.urandom(3 * 1024 * 1024 + 17)
    served = f"{_hot_uri(data)} 200 {len(data)}"

    def nginx_sent_the_file(request_uri: str) -> bool:
        return f"{request_uri} {served}" in proxy.access_log.read_text()

    with httpx.Client(base_url=proxy.url, timeout=30.0, trust_env=False) as client:
        # The upload streams through nginx too (no request buffering).
        created = upload(client, auth, tenant, "n", "model.bin", data, Content_Type="x/y")
        assert created.status_code == 201, created.text
        object_id = created.json()["id"]
        # A client's own mapping is replaced by nginx's, so it cannot steer the redirect.
        proxied = _get(client, server, tenant, object_id, {"X-Accel-Mapping": "/=/x/"})
        direct = _get(server.client, server, tenant, object_id, {})
        assert proxied.status_code == 200
        assert proxied.content == data
        assert wait_until(lambda: nginx_sent_the_file(f"/v1/objects/{object_id}"), 5)
        for name in OBJECT_HEADERS:
            assert proxied.headers[name] == direct.headers[name], name
        assert proxied.headers["x-request-id"] != direct.headers["x-request-id"]
        assert "x-accel-redirect" not in proxied.headers
        by_key = by_key_path("n", tenant, "model.bin")
        assert client.get(by_key, headers=auth).content == data
        assert wait_until(lambda: nginx_sent_the_file(by_key), 5)
        # Ranges and conditionals are the server's answers, passed through.
        get = {**auth, "X-Tenant": tenant}
        url = f"/v1/objects/{object_id}"
        ranged = client.get(url, headers={**get, "Range": "bytes=5-9"})
        assert (ranged.status_code, ranged.content) == (206, data[5:10])
        etag = direct.headers["etag"]
        assert client.get(url, headers={**get, "If-None-Match": etag}).status_code == 304
        # Conditionals the server ignores are not judged by nginx against the file.
        last_modified = direct.headers["last-modified"]
        for conditional in ({"If-Match": etag}, {"If-Unmodified-Since": last_modified}):
            answered = client.get(url, headers={**get, **conditional})
            assert (answered.status_code, answered.content) == (200, data), conditional
        # Credentials are still checked: nginx sends nothing without the server's say-so.
        refused = client.get(url, headers={"X-Tenant": tenant})
        assert refused.status_code == 401
        assert refused.json()["error"]["code"]
        # The blob files themselves are not reachable from outside.
        assert client.get(_hot_uri(data)).status_code == 404
        assert client.get("/_juststorage_hot/../meta.db").status_code in (400, 404)


def test_nginx_does_not_pass_metrics_on(server: Server, proxy: Nginx) -> None:
    """The server behind has no metrics listener, so it serves /metrics on the port
    nginx proxies to; nginx answers 404 for it however the path is spelled."""
    assert server.client.get("/metrics").status_code == 200
    with httpx.Client(base_url=proxy.url, timeout=10.0, trust_env=False) as client:
        for path in ("/metrics", "/%6Detrics", "//metrics", "/metrics?format=text"):
            # An absolute URL: httpx reads a relative "//metrics" as a host name and
            # would send "/".
            answer = client.get(proxy.url + path)
            assert answer.request.url.raw_path == path.encode(), answer.request.url
            assert answer.status_code == 404, path
            assert "just_storage_" not in answer.text, path
        assert client.get("/health").status_code == 200
