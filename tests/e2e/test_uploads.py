"""POST /v1/objects against the real server (SPEC §2 Upload)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from juststorage.testing import Server, StartServer, wait_until

from .support import (
    assert_error,
    blob_file,
    by_key_path,
    checksum_mismatches,
    raw_request,
    sha256_hex,
    temp_files,
    unique_name,
    upload,
)

pytestmark = pytest.mark.e2e

MAX_OBJECT_BYTES = 1024 * 1024


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(JUSTSTORAGE_MAX_OBJECT_BYTES=str(MAX_OBJECT_BYTES))


@pytest.fixture(scope="module")
def files_server(start_server: StartServer) -> Server:
    """The same settings with inlining off (threshold 0): for the tests that look at
    blob files and temp files (the default `server` keeps small blobs inline)."""
    return start_server(
        JUSTSTORAGE_MAX_OBJECT_BYTES=str(MAX_OBJECT_BYTES), JUSTSTORAGE_INLINE_MAX_BYTES="0"
    )


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


@pytest.fixture
def files_auth(files_server: Server) -> dict[str, str]:
    return files_server.admin_headers()


@pytest.fixture
def tenant() -> str:
    return unique_name("t")


def _no_temp_files(server: Server) -> bool:
    return not temp_files(server.data_dir / "hot") and not temp_files(server.data_dir / "cold")


@pytest.mark.filesystem_layout
def test_upload_answers_201_with_location_etag_and_body(
    files_server: Server, files_auth: dict[str, str], tenant: str
) -> None:
    data = os.urandom(1000)
    response = upload(
        files_server.client,
        files_auth,
        tenant,
        "models",
        "m/1.bin",
        data,
        Content_Type="text/plain",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "id",
        "namespace",
        "tenant_id",
        "key",
        "content_hash",
        "size_bytes",
        "storage_class",
        "content_type",
        "created_at",
    }
    assert body["namespace"] == "models"
    assert body["tenant_id"] == tenant
    assert body["key"] == "m/1.bin"
    assert body["content_hash"] == f"sha256:{sha256_hex(data)}"
    assert body["size_bytes"] == 1000
    assert body["storage_class"] == "hot"
    assert body["content_type"] == "text/plain"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["created_at"])
    datetime.fromisoformat(body["created_at"])
    assert response.headers["location"] == f"/v1/objects/{body['id']}"
    assert response.headers["etag"] == f'"sha256:{sha256_hex(data)}"'
    assert blob_file(files_server.data_dir / "hot", sha256_hex(data)).read_bytes() == data
    fetched = files_server.client.get(
        response.headers["location"], headers={**files_auth, "X-Tenant": tenant}
    )
    assert fetched.status_code == 200
    assert fetched.content == data


def test_default_content_type_is_octet_stream(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    response = server.client.post(
        "/v1/objects",
        headers={**auth, "X-Tenant": tenant, "X-Namespace": "n", "X-Key": "k"},
        content=iter([b"abc"]),  # no Content-Type header at all
    )
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "application/octet-stream"


def test_matching_checksum_is_accepted(server: Server, auth: dict[str, str], tenant: str) -> None:
    data = b"checked bytes"
    response = upload(
        server.client, auth, tenant, "n", "k", data, X_Content_SHA256=sha256_hex(data).upper()
    )
    assert response.status_code == 201, response.text


@pytest.mark.filesystem_layout
def test_checksum_mismatch_is_400_and_stores_nothing(
    files_server: Server, files_auth: dict[str, str], tenant: str
) -> None:
    data = os.urandom(4096)
    before = checksum_mismatches(files_server.client)
    response = upload(
        files_server.client,
        files_auth,
        tenant,
        "n",
        "k",
        data,
        X_Content_SHA256=sha256_hex(b"other"),
    )
    assert_error(response, 400, "ChecksumMismatch")
    # The client's digest, not the store's bytes: counted as an upload's mismatch.
    after = checksum_mismatches(files_server.client)
    assert after == {"upload": before["upload"] + 1, "stored": before["stored"]}
    listed = files_server.client.get(
        "/v1/objects", params={"tenant": tenant, "namespace": "n"}, headers=files_auth
    )
    assert listed.json()["items"] == []
    assert (
        files_server.client.get(by_key_path("n", tenant, "k"), headers=files_auth).status_code
        == 404
    )
    assert not blob_file(files_server.data_dir / "hot", sha256_hex(data)).exists()
    assert wait_until(lambda: _no_temp_files(files_server), timeout=5)


def test_malformed_checksum_header_is_400(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    response = upload(server.client, auth, tenant, "n", "k", b"x", X_Content_SHA256="abc")
    assert_error(response, 400, "BadRequest")


def test_if_none_match_star_creates_only(server: Server, auth: dict[str, str], tenant: str) -> None:
    first = upload(server.client, auth, tenant, "n", "k", b"one", If_None_Match="*")
    assert first.status_code == 201, first.text
    second = upload(server.client, auth, tenant, "n", "k", b"two", If_None_Match="*")
    assert_error(second, 412, "PreconditionFailed")
    current = server.client.get(by_key_path("n", tenant, "k"), headers=auth)
    assert current.content == b"one"


def test_if_match_replaces_only_the_named_version(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    first = upload(server.client, auth, tenant, "n", "k", b"one")
    etag = first.headers["etag"]
    right = upload(server.client, auth, tenant, "n", "k", b"two", If_Match=etag)
    assert right.status_code == 201, right.text
    wrong = upload(server.client, auth, tenant, "n", "k", b"three", If_Match=etag)  # now stale
    assert_error(wrong, 412, "PreconditionFailed")
    missing = upload(server.client, auth, tenant, "n", "no-such-key", b"x", If_Match=etag)
    assert_error(missing, 412, "PreconditionFailed")
    assert server.client.get(by_key_path("n", tenant, "k"), headers=auth).content == b"two"
    assert server.client.get(by_key_path("n", tenant, "no-such-key"), headers=auth).status_code == (
        404
    )


def test_declared_length_over_the_maximum_is_413_before_the_body(
    server: Server, tenant: str
) -> None:
    head = (
        "POST /v1/objects HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"Authorization: Bearer {server.admin_key}\r\n"
        f"X-Tenant: {tenant}\r\nX-Namespace: n\r\nX-Key: big\r\n"
        "X-Request-Id: too-big-1\r\n"
        f"Content-Length: {MAX_OBJECT_BYTES + 1}\r\n\r\n"
    )
    status, headers, body = raw_request(server.port, head.encode("ascii"))
    assert status == 413
    assert headers["content-type"].startswith("application/json")
    assert headers["x-request-id"] == "too-big-1"
    assert b'"PayloadTooLarge"' in body and b'"too-big-1"' in body


@pytest.mark.filesystem_layout
def test_chunked_body_over_the_maximum_is_413_and_stores_nothing(
    files_server: Server, files_auth: dict[str, str], tenant: str
) -> None:
    def body() -> Iterator[bytes]:
        block = b"z" * 65536
        for _ in range(MAX_OBJECT_BYTES // len(block) + 1):
            yield block

    response = files_server.client.post(
        "/v1/objects",
        headers={**files_auth, "X-Tenant": tenant, "X-Namespace": "n", "X-Key": "big"},
        content=body(),
    )
    assert_error(response, 413, "PayloadTooLarge")
    assert (
        files_server.client.get(by_key_path("n", tenant, "big"), headers=files_auth).status_code
        == 404
    )
    assert wait_until(lambda: _no_temp_files(files_server), timeout=5)


def test_object_of_exactly_the_maximum_size_is_accepted(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    data = os.urandom(MAX_OBJECT_BYTES)
    response = upload(server.client, auth, tenant, "n", "exact", data)
    assert response.status_code == 201, response.text
    assert response.json()["size_bytes"] == MAX_OBJECT_BYTES


@pytest.mark.parametrize("storage_class", ["hot", "cold"])
@pytest.mark.filesystem_layout
def test_storage_class_selects_the_root(
    files_server: Server, files_auth: dict[str, str], tenant: str, storage_class: str
) -> None:
    data = os.urandom(100)
    response = upload(
        files_server.client, files_auth, tenant, "n", "k", data, X_Storage_Class=storage_class
    )
    assert response.status_code == 201, response.text
    assert response.json()["storage_class"] == storage_class
    other = "cold" if storage_class == "hot" else "hot"
    assert blob_file(files_server.data_dir / storage_class, sha256_hex(data)).exists()
    assert not blob_file(files_server.data_dir / other, sha256_hex(data)).exists()
    fetched = files_server.client.get(by_key_path("n", tenant, "k"), headers=files_auth)
    assert fetched.headers["x-storage-class"] == storage_class
    assert fetched.content == data


def test_unknown_storage_class_is_400(server: Server, auth: dict[str, str], tenant: str) -> None:
    response = upload(server.client, auth, tenant, "n", "k", b"x", X_Storage_Class="warm")
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize("missing", ["X-Tenant", "X-Namespace", "X-Key"])
def test_missing_name_header_is_400(server: Server, auth: dict[str, str], missing: str) -> None:
    headers = {**auth, "X-Tenant": unique_name(), "X-Namespace": "n", "X-Key": "k"}
    del headers[missing]
    response = server.client.post("/v1/objects", headers=headers, content=b"x")
    error = assert_error(response, 400, "BadRequest")
    assert missing.lower() in error["message"].lower()


@pytest.mark.parametrize(
    ("tenant_value", "namespace_value"),
    [("Acme", "n"), ("acme", "a/b"), ("-x", "n"), ("a" * 64, "n")],
)
def test_invalid_tenant_or_namespace_is_400(
    server: Server, auth: dict[str, str], tenant_value: str, namespace_value: str
) -> None:
    response = upload(server.client, auth, tenant_value, namespace_value, "k")
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize(
    "raw_key",
    [
        b"a" * 1025,
        "é".encode() * 513,  # 1026 bytes in 513 characters
        b"tab\there",
        b"\xff\xfe-not-utf8",
        b"\xc3",  # a truncated UTF-8 sequence
    ],
    ids=["1025-bytes", "1026-utf8-bytes", "tab", "not-utf8", "truncated-utf8"],
)
def test_bad_raw_key_is_400(
    server: Server, auth: dict[str, str], tenant: str, raw_key: bytes
) -> None:
    response = upload(server.client, auth, tenant, "n", raw_key)
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize(
    "encoded",
    ["a%00b", "a%1Fb", "a%7Fb", "%FF%FE", "a" * 1025],
    ids=["nul", "us", "del", "ff", "long"],
)
def test_bad_percent_encoded_key_is_400(
    server: Server, auth: dict[str, str], tenant: str, encoded: str
) -> None:
    response = upload(server.client, auth, tenant, "n", encoded, X_Key_Encoding="percent")
    assert_error(response, 400, "BadRequest")


def test_key_of_1024_bytes_is_accepted(server: Server, auth: dict[str, str], tenant: str) -> None:
    key = "é" * 511 + "ab"  # 1024 bytes
    response = upload(server.client, auth, tenant, "n", key, b"edge")
    assert response.status_code == 201, response.text
    assert response.json()["key"] == key
    assert server.client.get(by_key_path("n", tenant, key), headers=auth).content == b"edge"


def test_raw_utf8_key_round_trips(server: Server, auth: dict[str, str], tenant: str) -> None:
    key = "模型/версия 1/😀.bin"
    response = upload(server.client, auth, tenant, "n", key, b"unicode")
    assert response.status_code == 201, response.text
    assert response.json()["key"] == key
    assert server.client.get(by_key_path("n", tenant, key), headers=auth).content == b"unicode"


def test_percent_encoded_key_round_trips(server: Server, auth: dict[str, str], tenant: str) -> None:
    response = upload(
        server.client, auth, tenant, "n", "caf%C3%A9%2Fdir%20x%25", b"pct", X_Key_Encoding="percent"
    )
    assert response.status_code == 201, response.text
    assert response.json()["key"] == "café/dir x%"
    fetched = server.client.get(by_key_path("n", tenant, "café/dir x%"), headers=auth)
    assert fetched.content == b"pct"


def test_unknown_key_encoding_is_400(server: Server, auth: dict[str, str], tenant: str) -> None:
    response = upload(server.client, auth, tenant, "n", "k", X_Key_Encoding="base64")
    assert_error(response, 400, "BadRequest")


@pytest.mark.filesystem_layout
def test_same_bytes_under_two_keys_are_stored_once(
    files_server: Server, files_auth: dict[str, str], tenant: str
) -> None:
    data = os.urandom(5000)
    first = upload(files_server.client, files_auth, tenant, "n", "one", data)
    second = upload(files_server.client, files_auth, tenant, "n", "two", data)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    digest = sha256_hex(data)
    matches = [p for p in (files_server.data_dir / "hot" / "sha256").rglob(digest)]
    assert matches == [blob_file(files_server.data_dir / "hot", digest)]
    for key in ("one", "two"):
        assert (
            files_server.client.get(by_key_path("n", tenant, key), headers=files_auth).content
            == data
        )


def test_new_version_wins_by_key_and_old_stays_readable_by_id(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    old = upload(server.client, auth, tenant, "n", "k", b"version 1").json()
    new = upload(server.client, auth, tenant, "n", "k", b"version 2").json()
    assert old["id"] != new["id"]
    newest = server.client.get(by_key_path("n", tenant, "k"), headers=auth)
    assert newest.content == b"version 2"
    assert newest.headers["x-object-id"] == new["id"]
    by_id = server.client.get(f"/v1/objects/{old['id']}", headers={**auth, "X-Tenant": tenant})
    assert by_id.status_code == 200
    assert by_id.content == b"version 1"


def test_request_id_is_echoed_on_success_and_error(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    ok = upload(server.client, auth, tenant, "n", "k", X_Request_Id="req-ok.1")
    assert ok.headers["x-request-id"] == "req-ok.1"
    bad = upload(server.client, auth, tenant, "n", "k", X_Storage_Class="x", X_Request_Id="req-b")
    assert assert_error(bad, 400, "BadRequest")["request_id"] == "req-b"
    generated = upload(server.client, auth, tenant, "n", "k")
    assert generated.headers["x-request-id"]


def test_upload_refused_before_its_body_is_read_closes_the_connection(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    """The unread body makes the connection unusable: the refusal must say so."""
    assert upload(server.client, auth, tenant, "n", "k", b"first").status_code == 201
    body = os.urandom(300_000)
    for _ in range(5):
        refused = upload(server.client, auth, tenant, "n", "k", body, If_None_Match="*")
        assert_error(refused, 412, "PreconditionFailed")
        assert refused.headers.get("connection") == "close"
        # The same client goes on working (httpx opens a new connection).
        assert server.client.get("/health").status_code == 200
    unauthorised = upload(server.client, {}, tenant, "n", "k", body)
    assert_error(unauthorised, 401, "Unauthorized")
    assert server.client.get("/health").status_code == 200
