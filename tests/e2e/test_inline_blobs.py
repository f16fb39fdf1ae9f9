"""Inline blobs (SPEC §8.1) through the real server: uploads at and around the
threshold, with and without a declared length; downloads by id and by key, ranges and
conditions as for any object; metrics and usage count them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from juststorage.testing import Server, StartServer

from .prometheus_text import parse_samples, value
from .support import assert_error, blob_file, by_key_path, sha256_hex, unique_name, upload

pytestmark = pytest.mark.e2e

LIMIT = 65_536  # the default threshold


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(JUSTSTORAGE_INLINE_MAX_BYTES=str(LIMIT))


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


def _chunks(data: bytes) -> Iterator[bytes]:
    for start in range(0, max(len(data), 1), 10_000):
        yield data[start : start + 10_000]


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_uploads_around_the_threshold_read_back_and_only_larger_ones_are_files(
    server: Server, auth: dict[str, str], chunked: bool
) -> None:
    tenant = unique_name()
    for size in (0, 1, LIMIT, LIMIT + 1):
        data = os.urandom(size)
        headers = {**auth, "X-Tenant": tenant, "X-Namespace": "n", "X-Key": f"k{size}"}
        content = _chunks(data) if chunked else data
        response = server.client.post("/v1/objects", headers=headers, content=content)
        assert response.status_code == 201, response.text
        got = server.client.get(
            f"/v1/objects/{response.json()['id']}", headers={**auth, "X-Tenant": tenant}
        )
        assert got.status_code == 200 and got.content == data
        assert got.headers["content-length"] == str(size)
        is_file = blob_file(server.data_dir / "hot", sha256_hex(data)).exists()
        assert is_file == (size > LIMIT), size


def test_inline_objects_answer_ranges_and_conditions_like_any_other(
    server: Server, auth: dict[str, str]
) -> None:
    tenant, data = unique_name(), os.urandom(5000)
    created = upload(server.client, auth, tenant, "n", "doc", data)
    assert created.status_code == 201
    etag = created.headers["etag"]
    read = {**auth, "X-Tenant": tenant}
    by_id, by_key = f"/v1/objects/{created.json()['id']}", by_key_path("n", tenant, "doc")
    for path in (by_id, by_key):
        whole = server.client.get(path, headers=auth if path == by_key else read)
        assert whole.status_code == 200 and whole.content == data
        part = server.client.get(path, headers={**read, "Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        tail = server.client.get(path, headers={**read, "Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        outside = server.client.get(path, headers={**read, "Range": "bytes=9000-"})
        assert outside.status_code == 416
        same = server.client.get(path, headers={**read, "If-None-Match": etag})
        assert same.status_code == 304 and same.content == b""
        head = server.client.head(path, headers=read)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    replaced = upload(server.client, auth, tenant, "n", "doc", b"v2", If_Match=etag)
    assert replaced.status_code == 201
    stale = upload(server.client, auth, tenant, "n", "doc", b"v3", If_Match=etag)
    assert_error(stale, 412, "PreconditionFailed")
    assert server.client.get(by_key, headers=auth).content == b"v2"


def test_metrics_and_usage_count_inline_uploads(server: Server, auth: dict[str, str]) -> None:
    tenant, data = unique_name(), os.urandom(3000)
    before = parse_samples(server.client.get("/metrics").text)
    for key, storage_class in (("a", "hot"), ("b", "hot"), ("c", "cold")):
        response = upload(
            server.client, auth, tenant, "n", key, data, X_Storage_Class=storage_class
        )
        assert response.status_code == 201
    assert server.client.get(by_key_path("n", tenant, "a"), headers=auth).content == data
    after = parse_samples(server.client.get("/metrics").text)

    def grew(name: str) -> float:
        return value(after, name) - value(before, name)

    assert grew("just_storage_uploaded_bytes_total") == 3 * len(data)
    assert grew("just_storage_downloaded_bytes_total") == len(data)
    assert grew("just_storage_dedup_hits_total") == 1  # per class: only the second hot one
    usage = server.client.get("/v1/usage", params={"tenant": tenant}, headers=auth).json()
    assert usage["logical_bytes"] == 3 * len(data)
    assert usage["by_storage_class"]["cold"]["bytes"] == len(data)
