"""GET/HEAD and DELETE of objects against the real server (SPEC §2 Download, Delete)."""

from __future__ import annotations

import os
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from juststorage.testing import Server, StartServer

from .support import assert_error, by_key_path, sha256_hex, unique_name, upload

pytestmark = pytest.mark.e2e

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server()


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


@pytest.fixture
def tenant() -> str:
    return unique_name("t")


@pytest.fixture
def stored(server: Server, auth: dict[str, str], tenant: str) -> tuple[dict[str, Any], bytes]:
    data = os.urandom(1000)
    response = upload(server.client, auth, tenant, "n", "obj", data, Content_Type="image/png")
    assert response.status_code == 201, response.text
    return response.json(), data


def test_download_by_id_sends_the_spec_headers(
    server: Server, auth: dict[str, str], tenant: str, stored: tuple[dict[str, Any], bytes]
) -> None:
    obj, data = stored
    response = server.client.get(f"/v1/objects/{obj['id']}", headers={**auth, "X-Tenant": tenant})
    assert response.status_code == 200
    assert response.content == data
    h = response.headers
    assert h["content-type"] == "image/png"
    assert h["content-length"] == str(len(data))
    assert h["etag"] == f'"sha256:{sha256_hex(data)}"'
    assert h["x-object-id"] == obj["id"]
    assert h["x-storage-class"] == "hot"
    assert h["accept-ranges"] == "bytes"
    assert parsedate_to_datetime(h["last-modified"]).tzinfo is not None
    assert h["x-request-id"]


def test_download_by_id_without_x_tenant_is_400(
    server: Server, auth: dict[str, str], stored: tuple[dict[str, Any], bytes]
) -> None:
    response = server.client.get(f"/v1/objects/{stored[0]['id']}", headers=auth)
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize("object_id", ["5d5a2459-27b8-4ae6-bda7-a7dff1d2147c", "not-a-uuid"])
def test_unknown_object_id_is_404(
    server: Server, auth: dict[str, str], tenant: str, object_id: str
) -> None:
    response = server.client.get(f"/v1/objects/{object_id}", headers={**auth, "X-Tenant": tenant})
    assert_error(response, 404, "NotFound")


def test_object_id_under_another_tenant_name_is_404(
    server: Server, auth: dict[str, str], stored: tuple[dict[str, Any], bytes]
) -> None:
    response = server.client.get(
        f"/v1/objects/{stored[0]['id']}", headers={**auth, "X-Tenant": unique_name()}
    )
    assert_error(response, 404, "NotFound")


def test_head_sends_headers_without_body(
    server: Server, auth: dict[str, str], tenant: str, stored: tuple[dict[str, Any], bytes]
) -> None:
    obj, data = stored
    by_id = server.client.head(f"/v1/objects/{obj['id']}", headers={**auth, "X-Tenant": tenant})
    by_key = server.client.head(by_key_path("n", tenant, "obj"), headers=auth)
    for response in (by_id, by_key):
        assert response.status_code == 200
        assert response.content == b""
        assert response.headers["content-length"] == str(len(data))
        assert response.headers["etag"] == f'"sha256:{sha256_hex(data)}"'
        assert response.headers["x-object-id"] == obj["id"]
        assert response.headers["accept-ranges"] == "bytes"
    missing = server.client.head(by_key_path("n", tenant, "nope"), headers=auth)
    assert missing.status_code == 404
    assert missing.content == b""


@pytest.mark.parametrize(
    "key",
    ["a/b/c.txt", "/leading//double/", "ключ/файл", "emoji 😀 + space?#&", "100%"],
)
def test_download_by_key_with_slashes_and_unicode(
    server: Server, auth: dict[str, str], tenant: str, key: str
) -> None:
    data = key.encode() * 3
    assert upload(server.client, auth, tenant, "n", key, data).status_code == 201
    with_slashes = server.client.get(by_key_path("n", tenant, key), headers=auth)
    assert with_slashes.status_code == 200, with_slashes.text
    assert with_slashes.content == data
    all_escaped = server.client.get(by_key_path("n", tenant, key, safe=""), headers=auth)
    assert all_escaped.status_code == 200, all_escaped.text
    assert all_escaped.content == data


def test_download_by_key_with_non_utf8_escape_is_400(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    response = server.client.get(f"/v1/objects/by-key/n/{tenant}/a%FFb", headers=auth)
    assert_error(response, 400, "BadRequest")


def test_download_by_key_of_unknown_key_is_404(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    assert_error(server.client.get(by_key_path("n", tenant, "x"), headers=auth), 404, "NotFound")


def test_single_range_is_206_with_content_range(
    server: Server, auth: dict[str, str], tenant: str, stored: tuple[dict[str, Any], bytes]
) -> None:
    _, data = stored
    path = by_key_path("n", tenant, "obj")
    response = server.client.get(path, headers={**auth, "Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.content == data[10:20]
    assert response.headers["content-range"] == f"bytes 10-19/{len(data)}"
    assert response.headers["content-length"] == "10"
    open_ended = server.client.get(path, headers={**auth, "Range": "bytes=990-"})
    assert open_ended.status_code == 206
    assert open_ended.content == data[990:]
    past_end = server.client.get(path, headers={**auth, "Range": "bytes=995-5000"})
    assert past_end.status_code == 206
    assert past_end.headers["content-range"] == f"bytes 995-999/{len(data)}"
    assert past_end.content == data[995:]


def test_suffix_range_gives_the_last_bytes(
    server: Server, auth: dict[str, str], tenant: str, stored: tuple[dict[str, Any], bytes]
) -> None:
    _, data = stored
    response = server.client.get(
        by_key_path("n", tenant, "obj"), headers={**auth, "Range": "bytes=-7"}
    )
    assert response.status_code == 206
    assert response.content == data[-7:]
    assert response.headers["content-range"] == f"bytes 993-999/{len(data)}"


@pytest.mark.parametrize("range_header", ["bytes=1000-", "bytes=5000-6000", "bytes=0-1,5-9"])
def test_unsatisfiable_or_multi_range_is_416(
    server: Server,
    auth: dict[str, str],
    tenant: str,
    stored: tuple[dict[str, Any], bytes],
    range_header: str,
) -> None:
    response = server.client.get(
        by_key_path("n", tenant, "obj"), headers={**auth, "Range": range_header}
    )
    assert_error(response, 416, "RangeNotSatisfiable")
    assert response.headers["content-range"] == "bytes */1000"


def test_if_none_match_with_the_etag_is_304(
    server: Server, auth: dict[str, str], tenant: str, stored: tuple[dict[str, Any], bytes]
) -> None:
    _, data = stored
    etag = f'"sha256:{sha256_hex(data)}"'
    path = by_key_path("n", tenant, "obj")
    response = server.client.get(path, headers={**auth, "If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    other = server.client.get(path, headers={**auth, "If-None-Match": '"sha256:' + "0" * 64 + '"'})
    assert other.status_code == 200
    assert other.content == data


def test_multi_mib_object_is_bit_exact(server: Server, auth: dict[str, str], tenant: str) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    obj = upload(server.client, auth, tenant, "n", "big.bin", data).json()
    by_id = server.client.get(f"/v1/objects/{obj['id']}", headers={**auth, "X-Tenant": tenant})
    assert by_id.status_code == 200
    assert by_id.headers["content-length"] == str(len(data))
    assert sha256_hex(by_id.content) == sha256_hex(data)
    assert by_id.content == data
    middle = server.client.get(
        by_key_path("n", tenant, "big.bin"), headers={**auth, "Range": "bytes=1048570-2097160"}
    )
    assert middle.status_code == 206
    assert middle.content == data[1048570:2097161]


def test_empty_object(server: Server, auth: dict[str, str], tenant: str) -> None:
    response = upload(server.client, auth, tenant, "n", "empty", b"")
    assert response.status_code == 201, response.text
    assert response.json()["size_bytes"] == 0
    assert response.json()["content_hash"] == f"sha256:{EMPTY_SHA256}"
    fetched = server.client.get(by_key_path("n", tenant, "empty"), headers=auth)
    assert fetched.status_code == 200
    assert fetched.content == b""
    assert fetched.headers["content-length"] == "0"
    ranged = server.client.get(
        by_key_path("n", tenant, "empty"), headers={**auth, "Range": "bytes=0-"}
    )
    assert_error(ranged, 416, "RangeNotSatisfiable")
    assert ranged.headers["content-range"] == "bytes */0"


def _visible(server: Server, auth: dict[str, str], tenant: str, obj: dict[str, Any]) -> list[bool]:
    by_id = server.client.get(f"/v1/objects/{obj['id']}", headers={**auth, "X-Tenant": tenant})
    by_key = server.client.get(by_key_path(obj["namespace"], tenant, obj["key"]), headers=auth)
    listed = server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": obj["namespace"], "versions": "true"},
        headers=auth,
    )
    in_list = obj["id"] in [item["id"] for item in listed.json()["items"]]
    return [by_id.status_code == 200, by_key.status_code == 200, in_list]


def test_delete_by_id_hides_at_once_and_second_delete_is_404(
    server: Server, auth: dict[str, str], tenant: str, stored: tuple[dict[str, Any], bytes]
) -> None:
    obj, _ = stored
    assert _visible(server, auth, tenant, obj) == [True, True, True]
    path = f"/v1/objects/{obj['id']}"
    deleted = server.client.delete(path, headers={**auth, "X-Tenant": tenant})
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert _visible(server, auth, tenant, obj) == [False, False, False]
    again = server.client.delete(path, headers={**auth, "X-Tenant": tenant})
    assert_error(again, 404, "NotFound")


def test_delete_by_id_of_one_version_reveals_the_previous(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    old = upload(server.client, auth, tenant, "n", "k", b"old").json()
    new = upload(server.client, auth, tenant, "n", "k", b"new").json()
    deleted = server.client.delete(f"/v1/objects/{new['id']}", headers={**auth, "X-Tenant": tenant})
    assert deleted.status_code == 204
    current = server.client.get(by_key_path("n", tenant, "k"), headers=auth)
    assert current.headers["x-object-id"] == old["id"]
    assert current.content == b"old"


def test_delete_by_id_needs_x_tenant(
    server: Server, auth: dict[str, str], stored: tuple[dict[str, Any], bytes]
) -> None:
    response = server.client.delete(f"/v1/objects/{stored[0]['id']}", headers=auth)
    assert_error(response, 400, "BadRequest")


def test_delete_by_id_under_another_tenant_name_is_404(
    server: Server, auth: dict[str, str], tenant: str, stored: tuple[dict[str, Any], bytes]
) -> None:
    obj, data = stored
    response = server.client.delete(
        f"/v1/objects/{obj['id']}", headers={**auth, "X-Tenant": unique_name()}
    )
    assert_error(response, 404, "NotFound")
    assert server.client.get(by_key_path("n", tenant, "obj"), headers=auth).content == data


def test_delete_by_key_removes_every_version(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    key = "dir/ключ"
    versions = [upload(server.client, auth, tenant, "n", key, b"v%d" % i).json() for i in range(3)]
    kept = upload(server.client, auth, tenant, "n", "dir/other", b"kept").json()
    response = server.client.delete(by_key_path("n", tenant, key, safe=""), headers=auth)
    assert response.status_code == 204
    for version in versions:
        assert _visible(server, auth, tenant, version) == [False, False, False]
    assert _visible(server, auth, tenant, kept) == [True, True, True]
    again = server.client.delete(by_key_path("n", tenant, key), headers=auth)
    assert_error(again, 404, "NotFound")


def test_delete_by_key_of_unknown_key_is_404(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    response = server.client.delete(by_key_path("n", tenant, "never"), headers=auth)
    assert_error(response, 404, "NotFound")


def test_unknown_route_and_method_answer_json_errors(server: Server, auth: dict[str, str]) -> None:
    assert_error(server.client.get("/v2/nothing", headers=auth), 404, "NotFound")
    assert server.client.put("/v1/objects", headers=auth).status_code == 405


def test_every_download_is_nosniff_and_sandboxed(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    page = b"<html><script>fetch('/v1/objects?tenant=x')</script></html>"
    for key, content_type in (("page.html", "text/html"), ("pic.svg", "image/svg+xml")):
        created = upload(server.client, auth, tenant, "n", key, page, Content_Type=content_type)
        assert created.status_code == 201, created.text
        object_id, etag = created.json()["id"], created.headers["etag"]
        by_id = (f"/v1/objects/{object_id}", {**auth, "X-Tenant": tenant})
        by_key = (by_key_path("n", tenant, key), auth)
        answers = []
        for path, headers in (by_id, by_key):
            answers += [
                server.client.get(path, headers=headers),
                server.client.head(path, headers=headers),
                server.client.get(path, headers={**headers, "Range": "bytes=0-5"}),
                server.client.get(path, headers={**headers, "If-None-Match": etag}),
            ]
        assert [a.status_code for a in answers] == [200, 200, 206, 304] * 2
        for answer in answers:
            assert answer.headers["x-content-type-options"] == "nosniff", answer.request
            csp = answer.headers["content-security-policy"]
            assert csp == "default-src 'none'; sandbox", answer.request
            assert answer.headers["cache-control"] == "private, no-cache", answer.request
    # JSON answers, errors included, are nosniff too (once, not twice).
    for answer in (
        server.client.get(by_key_path("n", tenant, "missing"), headers=auth),
        server.client.get("/v1/objects", params={"tenant": tenant, "namespace": "n"}, headers=auth),
        server.client.get("/health"),
        server.client.put("/v1/objects", headers=auth),
    ):
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], answer.request
