"""Resumable multipart uploads against the real server (SPEC §8.2), on SQLite and
PostgreSQL: the session flow, replacement and order of parts, completion rules,
conditions, retries, tenant isolation, scopes and bad input."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from juststorage.testing import Server, StartServer, start

from .support import (
    assert_error,
    blob_file,
    checksum_mismatches,
    sha256_hex,
    unique_name,
    upload,
)

pytestmark = pytest.mark.e2e

PART_MIN = 1024  # JUSTSTORAGE_UPLOAD_PART_MIN_BYTES of these servers


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(
        JUSTSTORAGE_UPLOAD_PART_MIN_BYTES=str(PART_MIN), JUSTSTORAGE_INLINE_MAX_BYTES="0"
    )


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


@pytest.fixture
def tenant() -> str:
    return unique_name("t")


def create(
    server: Server, auth: dict[str, str], tenant: str, key: str = "model.bin", **headers: str
) -> httpx.Response:
    all_headers = {**auth, "X-Tenant": tenant, "X-Namespace": "models", "X-Key": key}
    all_headers.update({k.replace("_", "-"): v for k, v in headers.items()})
    return server.client.post("/v1/uploads", headers=all_headers)


def open_session(server: Server, auth: dict[str, str], tenant: str, **headers: str) -> str:
    response = create(server, auth, tenant, **headers)
    assert response.status_code == 201, response.text
    upload_id: str = response.json()["upload_id"]
    return upload_id


def put_part(
    server: Server,
    auth: dict[str, str],
    upload_id: str,
    number: int | str,
    data: bytes,
    **headers: str,
) -> httpx.Response:
    all_headers = {**auth, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return server.client.put(
        f"/v1/uploads/{upload_id}/parts/{number}", headers=all_headers, content=data
    )


def complete(
    server: Server, auth: dict[str, str], upload_id: str, body: Any = None
) -> httpx.Response:
    content = b"" if body is None else httpx.Request("POST", "/", json=body).content
    return server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth, content=content)


def on_s3(server: Server) -> bool:
    return server.env.get("JUSTSTORAGE_HOT_ROOT", "").startswith("s3://")


def s3_keys(server: Server, prefix: str) -> list[str]:
    """The keys under `prefix` of the server's hot root (an s3:// root)."""
    import asyncio

    import obstore
    from obstore.store import S3Store

    bucket, _, root = server.env["JUSTSTORAGE_HOT_ROOT"].removeprefix("s3://").partition("/")
    store = S3Store(
        bucket,
        prefix=root,
        config={
            "endpoint": server.env["AWS_ENDPOINT_URL"],
            "access_key_id": server.env["AWS_ACCESS_KEY_ID"],
            "secret_access_key": server.env["AWS_SECRET_ACCESS_KEY"],
            "region": server.env["AWS_REGION"],
        },
        client_options={"allow_http": True},
    )

    async def listing() -> list[str]:
        keys: list[str] = []
        async for page in obstore.list(store, prefix=prefix):
            keys += [meta["path"] for meta in page]
        return keys

    return asyncio.run(listing())


def parts_of(size: int, count: int) -> list[bytes]:
    return [os.urandom(size) for _ in range(count)]


def test_session_flow_create_put_get_complete(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    created = create(server, auth, tenant, Content_Type="application/x-model")
    assert created.status_code == 201
    session = created.json()
    upload_id = session["upload_id"]
    assert created.headers["location"] == f"/v1/uploads/{upload_id}"
    assert set(session) == {
        "upload_id",
        "tenant_id",
        "namespace",
        "key",
        "storage_class",
        "content_type",
        "state",
        "created_at",
        "expires_at",
        "parts",
    }
    assert session["state"] == "open" and session["parts"] == []
    assert session["tenant_id"] == tenant and session["content_type"] == "application/x-model"

    parts = parts_of(PART_MIN, 2) + [b"tail"]
    for number in (3, 1, 2):  # any order
        response = put_part(server, auth, upload_id, number, parts[number - 1])
        assert response.status_code == 200, response.text
        assert response.json() == {
            "part": number,
            "size_bytes": len(parts[number - 1]),
            "sha256": sha256_hex(parts[number - 1]),
        }
    listed = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert [p["part"] for p in listed["parts"]] == [1, 2, 3]

    whole = b"".join(parts)
    done = complete(server, auth, upload_id)
    assert done.status_code == 201, done.text
    obj = done.json()
    assert obj["content_hash"] == f"sha256:{sha256_hex(whole)}"
    assert obj["size_bytes"] == len(whole)
    assert obj["content_type"] == "application/x-model"
    assert done.headers["etag"] == f'"sha256:{sha256_hex(whole)}"'
    got = server.client.get(f"/v1/objects/{obj['id']}", headers={**auth, "X-Tenant": tenant})
    assert got.status_code == 200 and got.content == whole

    # A retry after a lost response: 200 with the same object.
    again = complete(server, auth, upload_id)
    assert again.status_code == 200 and again.json() == obj
    # The parts are gone from the disk once completed.
    assert not list((server.data_dir / "hot" / "parts").glob(f"{upload_id}/*"))
    if on_s3(server):
        assert s3_keys(server, f"parts/{upload_id}/") == []


def test_in_order_parts_hashed_on_arrival_and_dedup_with_single_upload(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    parts = parts_of(PART_MIN * 3, 3)
    whole = b"".join(parts)
    single = upload(server.client, auth, tenant, "models", "single", whole)
    assert single.status_code == 201
    upload_id = open_session(server, auth, tenant)
    for number, data in enumerate(parts, 1):
        assert put_part(server, auth, upload_id, number, data).status_code == 200
    done = complete(server, auth, upload_id)
    assert done.status_code == 201
    assert done.json()["content_hash"] == single.json()["content_hash"]
    if not on_s3(server):
        assert blob_file(server.data_dir / "hot", sha256_hex(whole)).read_bytes() == whole


def test_resending_a_part_replaces_it(server: Server, auth: dict[str, str], tenant: str) -> None:
    upload_id = open_session(server, auth, tenant)
    first, second = parts_of(PART_MIN, 2)
    assert put_part(server, auth, upload_id, 1, first).status_code == 200
    assert put_part(server, auth, upload_id, 2, b"x").status_code == 200
    assert put_part(server, auth, upload_id, 1, second).status_code == 200  # replaces 1
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert [p["sha256"] for p in session["parts"]] == [sha256_hex(second), sha256_hex(b"x")]
    done = complete(server, auth, upload_id)
    assert done.json()["content_hash"] == f"sha256:{sha256_hex(second + b'x')}"
    files = list((server.data_dir / "hot" / "parts").glob(f"{upload_id}/*"))
    assert files == []


def test_parallel_parts(server: Server, auth: dict[str, str], tenant: str) -> None:
    upload_id = open_session(server, auth, tenant)
    parts = parts_of(PART_MIN * 8, 8)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda n: put_part(server, auth, upload_id, n, parts[n - 1]).status_code,
                range(1, 9),
            )
        )
    assert results == [200] * 8
    done = complete(server, auth, upload_id)
    assert done.status_code == 201
    assert done.json()["content_hash"] == f"sha256:{sha256_hex(b''.join(parts))}"


def test_complete_with_explicit_parts_drops_the_rest(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    upload_id = open_session(server, auth, tenant)
    parts = parts_of(PART_MIN, 3)
    for number, data in enumerate(parts, 1):
        put_part(server, auth, upload_id, number, data)
    done = complete(server, auth, upload_id, {"parts": [1, 2]})
    assert done.status_code == 201
    assert done.json()["size_bytes"] == 2 * PART_MIN


def test_bad_part_numbers_are_400(server: Server, auth: dict[str, str], tenant: str) -> None:
    upload_id = open_session(server, auth, tenant)
    for number in ("0", "10001", "x", "1.5", "-1", "%C2%B2"):
        assert_error(put_part(server, auth, upload_id, number, b"a"), 400, "BadRequest")
    assert put_part(server, auth, upload_id, 10000, b"a").status_code == 200


def test_missing_or_malformed_session_is_404(server: Server, auth: dict[str, str]) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for upload_id in (missing, "not-a-uuid"):
        assert_error(put_part(server, auth, upload_id, 1, b"a"), 404, "NotFound")
        assert_error(server.client.get(f"/v1/uploads/{upload_id}", headers=auth), 404, "NotFound")
        assert_error(complete(server, auth, upload_id), 404, "NotFound")
        assert_error(
            server.client.delete(f"/v1/uploads/{upload_id}", headers=auth), 404, "NotFound"
        )


def test_completion_rules(server: Server, auth: dict[str, str], tenant: str) -> None:
    upload_id = open_session(server, auth, tenant)
    assert_error(complete(server, auth, upload_id), 400, "BadRequest")  # no parts
    put_part(server, auth, upload_id, 1, b"small")
    put_part(server, auth, upload_id, 2, b"last")
    error = assert_error(complete(server, auth, upload_id), 400, "BadRequest")  # too small
    assert str(PART_MIN) in error["message"]
    put_part(server, auth, upload_id, 1, os.urandom(PART_MIN))
    put_part(server, auth, upload_id, 4, b"after a gap")
    assert_error(complete(server, auth, upload_id), 400, "BadRequest")  # gap at 3
    assert_error(complete(server, auth, upload_id, {"parts": [1, 3]}), 400, "BadRequest")
    assert_error(complete(server, auth, upload_id, {"parts": [2, 1]}), 400, "BadRequest")
    assert_error(complete(server, auth, upload_id, {"parts": "1"}), 400, "BadRequest")
    assert_error(complete(server, auth, upload_id, {"parts": [True]}), 400, "BadRequest")
    for raw in (b"{not json", b'{"parts": ' + b"[" * 3000 + b"]" * 3000 + b"}"):
        response = server.client.post(
            f"/v1/uploads/{upload_id}/complete", headers=auth, content=raw
        )
        assert_error(response, 400, "BadRequest")  # too deep: 400, not a RecursionError
    assert complete(server, auth, upload_id, {"parts": [1, 2]}).status_code == 201


def test_checksum_mismatch_keeps_the_session_open(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    data = os.urandom(100)
    before = checksum_mismatches(server.client)
    upload_id = open_session(server, auth, tenant, X_Content_SHA256=sha256_hex(b"other"))
    assert_error(
        put_part(server, auth, upload_id, 1, data, X_Content_SHA256=sha256_hex(b"no")),
        400,
        "ChecksumMismatch",
    )
    assert (
        put_part(server, auth, upload_id, 1, data, X_Content_SHA256=sha256_hex(data)).status_code
        == 200
    )
    assert_error(complete(server, auth, upload_id), 400, "ChecksumMismatch")
    # A part's and the session's declared digests: two upload mismatches, no rot.
    after = checksum_mismatches(server.client)
    assert after == {"upload": before["upload"] + 2, "stored": before["stored"]}
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert session["state"] == "open" and len(session["parts"]) == 1
    assert (
        server.client.get(
            "/v1/objects/by-key/models/" + tenant + "/model.bin", headers=auth
        ).status_code
        == 404
    )


def test_conditions_at_create_and_at_completion(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    upload_id = open_session(server, auth, tenant, If_None_Match="*")
    put_part(server, auth, upload_id, 1, b"late")
    # Another writer creates the key in between: the completion is refused.
    assert upload(server.client, auth, tenant, "models", "model.bin", b"first").status_code == 201
    assert_error(complete(server, auth, upload_id), 412, "PreconditionFailed")
    assert_error(create(server, auth, tenant, If_None_Match="*"), 412, "PreconditionFailed")
    etag = f'"sha256:{sha256_hex(b"first")}"'
    replace = open_session(server, auth, tenant, If_Match=etag)
    put_part(server, auth, replace, 1, b"second")
    assert complete(server, auth, replace).status_code == 201


def test_abort_removes_the_session_and_its_parts(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    upload_id = open_session(server, auth, tenant)
    put_part(server, auth, upload_id, 1, b"bytes")
    assert server.client.delete(f"/v1/uploads/{upload_id}", headers=auth).status_code == 204
    assert not (server.data_dir / "hot" / "parts" / upload_id).exists()
    assert_error(server.client.get(f"/v1/uploads/{upload_id}", headers=auth), 404, "NotFound")
    assert_error(put_part(server, auth, upload_id, 1, b"a"), 404, "NotFound")
    assert_error(server.client.delete(f"/v1/uploads/{upload_id}", headers=auth), 404, "NotFound")


def test_list_open_sessions_paged(server: Server, auth: dict[str, str], tenant: str) -> None:
    ids = [open_session(server, auth, tenant, key=f"k{i}") for i in range(5)]
    done = open_session(server, auth, tenant, key="k9")
    put_part(server, auth, done, 1, b"x")
    complete(server, auth, done)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"tenant": tenant, "namespace": "models", "limit": "2"}
        if cursor:
            params["cursor"] = cursor
        page = server.client.get("/v1/uploads", params=params, headers=auth).json()
        assert len(page["items"]) <= 2
        seen += [s["upload_id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids  # key order; the completed session is not open
    bad = server.client.get(
        "/v1/uploads", params={"tenant": tenant, "namespace": "models", "limit": "0"}, headers=auth
    )
    assert_error(bad, 400, "BadRequest")
    bad = server.client.get(
        "/v1/uploads",
        params={"tenant": tenant, "namespace": "models", "cursor": "@@"},
        headers=auth,
    )
    assert_error(bad, 400, "BadRequest")


def test_another_tenants_session_is_404_and_scopes(server: Server, tenant: str) -> None:
    auth = server.admin_headers()
    upload_id = open_session(server, auth, tenant)
    put_part(server, auth, upload_id, 1, b"secret")
    other = server.create_key([unique_name("o")], ["objects:write", "objects:read"])
    other_auth = {"Authorization": f"Bearer {other['key']}"}
    own = other["tenants"][0]
    for headers in (other_auth, {**other_auth, "X-Tenant": own}):
        assert_error(
            server.client.get(f"/v1/uploads/{upload_id}", headers=headers), 404, "NotFound"
        )
        assert_error(put_part(server, headers, upload_id, 2, b"x"), 404, "NotFound")
        assert_error(complete(server, headers, upload_id), 404, "NotFound")
        assert_error(
            server.client.delete(f"/v1/uploads/{upload_id}", headers=headers), 404, "NotFound"
        )
    # Naming a tenant the credential does not hold is 403, as for an upload.
    named = {**other_auth, "X-Tenant": tenant}
    assert_error(server.client.get(f"/v1/uploads/{upload_id}", headers=named), 403, "Forbidden")
    assert_error(create(server, other_auth, tenant), 403, "Forbidden")
    listing = server.client.get(
        "/v1/uploads", params={"tenant": tenant, "namespace": "models"}, headers=other_auth
    )
    assert_error(listing, 403, "Forbidden")
    reader = server.create_key([tenant], ["objects:read"])
    reader_auth = {"Authorization": f"Bearer {reader['key']}"}
    assert_error(create(server, reader_auth, tenant), 403, "Forbidden")
    assert_error(put_part(server, reader_auth, upload_id, 2, b"x"), 403, "Forbidden")
    assert_error(
        server.client.get(f"/v1/uploads/{upload_id}", headers=reader_auth), 403, "Forbidden"
    )
    writer = server.create_key([tenant], ["objects:write"])
    writer_auth = {"Authorization": f"Bearer {writer['key']}"}
    assert put_part(server, writer_auth, upload_id, 2, b"mine").status_code == 200
    assert server.client.get(f"/v1/uploads/{upload_id}", headers=writer_auth).status_code == 200


@pytest.fixture(scope="module")
def inline_server(start_server: StartServer) -> Server:
    """The default inline threshold (64 KiB)."""
    return start_server(JUSTSTORAGE_UPLOAD_PART_MIN_BYTES=str(PART_MIN))


def test_a_small_whole_is_kept_inline_and_a_large_one_as_a_file(
    inline_server: Server, tenant: str
) -> None:
    server, auth = inline_server, inline_server.admin_headers()
    for size in (2 * PART_MIN, 70_000):
        parts = [os.urandom(PART_MIN), os.urandom(size - PART_MIN)]
        upload_id = open_session(server, auth, tenant, key=f"k{size}")
        for number, data in enumerate(parts, 1):
            assert put_part(server, auth, upload_id, number, data).status_code == 200
        done = complete(server, auth, upload_id)
        assert done.status_code == 201, done.text
        whole = b"".join(parts)
        object_id = done.json()["id"]
        got = server.client.get(f"/v1/objects/{object_id}", headers={**auth, "X-Tenant": tenant})
        assert got.content == whole
        if not on_s3(server):
            path = blob_file(server.data_dir / "hot", sha256_hex(whole))
            assert path.exists() == (size > 65536), size


def test_concurrent_completions_commit_one_object(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    upload_id = open_session(server, auth, tenant)
    parts = parts_of(PART_MIN * 4, 2)
    for number, data in enumerate(parts, 1):
        put_part(server, auth, upload_id, number, data)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: complete(server, auth, upload_id), range(4)))
    assert sorted(a.status_code for a in answers) in ([200, 200, 200, 201], [201] * 4), [
        a.text for a in answers
    ]
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 1
    versions = server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": "models", "versions": "true"},
        headers=auth,
    ).json()["items"]
    assert [v["id"] for v in versions] == list(ids)


def test_an_oversized_completion_body_is_413(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    upload_id = open_session(server, auth, tenant)
    put_part(server, auth, upload_id, 1, b"x")
    body = b'{"parts": [' + b"1, " * (1024 * 1024) + b"1]}"
    response = server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth, content=body)
    assert_error(response, 413, "PayloadTooLarge")
    assert complete(server, auth, upload_id).status_code == 201


def test_parts_of_five_mib_complete_in_the_store(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    """On s3:// roots, parts of S3's minimum size are joined by the store itself."""
    upload_id = open_session(server, auth, tenant)
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(5 * 1024 * 1024), b"end"]
    for number, data in enumerate(parts, 1):
        assert put_part(server, auth, upload_id, number, data).status_code == 200
    done = complete(server, auth, upload_id)
    assert done.status_code == 201, done.text
    whole = b"".join(parts)
    assert done.json()["content_hash"] == f"sha256:{sha256_hex(whole)}"
    got = server.client.get(
        f"/v1/objects/{done.json()['id']}", headers={**auth, "X-Tenant": tenant}
    )
    assert got.content == whole
    if on_s3(server):
        assert s3_keys(server, f"parts/{upload_id}/") == []


def test_parts_spread_over_two_worker_processes(tmp_path: Path) -> None:
    """Each worker keeps its own stream and running hash: a session whose parts
    reach both completes from the ranges of both, bit-exact, and leaves no part."""
    server = start(
        tmp_path,
        {"JUSTSTORAGE_UPLOAD_PART_MIN_BYTES": str(PART_MIN), "JUSTSTORAGE_GC_INTERVAL_S": "0"},
        workers=2,
    )
    try:
        auth, tenant = server.admin_headers(), unique_name("t")
        upload_id = open_session(server, auth, tenant)
        parts = parts_of(PART_MIN * 64, 12)

        def send(number: int) -> int:
            # A connection each, so the kernel spreads them over the workers.
            with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
                return client.put(
                    f"/v1/uploads/{upload_id}/parts/{number}",
                    headers=auth,
                    content=parts[number - 1],
                ).status_code

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            assert list(pool.map(send, range(1, 13))) == [200] * 12
        done = complete(server, auth, upload_id)
        assert done.status_code == 201, done.text
        whole = b"".join(parts)
        got = server.client.get(
            f"/v1/objects/{done.json()['id']}", headers={**auth, "X-Tenant": tenant}
        )
        assert got.content == whole
        assert not list((server.data_dir / "hot" / "parts").glob(f"{upload_id}/*"))
        fsck = server.cli("fsck")
        assert fsck.returncode == 0, fsck.stdout
    finally:
        server.stop()


@pytest.mark.parametrize("key", ["\u0000", "\ud800", ""])
def test_a_crafted_list_cursor_is_400(
    server: Server, auth: dict[str, str], tenant: str, key: str
) -> None:
    # A cursor of the server's shape whose key no database would store (NUL, a lone
    # surrogate, empty): refused like any malformed cursor, never a 500.
    raw = json.dumps([key, "00000000-0000-0000-0000-000000000000"]).encode("ascii")
    cursor = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    bad = server.client.get(
        "/v1/uploads",
        params={"tenant": tenant, "namespace": "models", "cursor": cursor},
        headers=auth,
    )
    assert_error(bad, 400, "BadRequest")


def test_creating_a_session_with_a_body_is_400(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    headers = {**auth, "X-Tenant": tenant, "X-Namespace": "models", "X-Key": "model.bin"}
    sent = server.client.post("/v1/uploads", headers=headers, content=b"the first part")
    assert_error(sent, 400, "BadRequest")
    listed = server.client.get(
        "/v1/uploads", params={"tenant": tenant, "namespace": "models"}, headers=auth
    )
    assert listed.json()["items"] == []


def test_aborting_a_completed_session_is_409_and_keeps_its_object(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    upload_id = open_session(server, auth, tenant)
    put_part(server, auth, upload_id, 1, b"whole")
    first = complete(server, auth, upload_id)
    assert first.status_code == 201
    aborted = server.client.delete(f"/v1/uploads/{upload_id}", headers=auth)
    assert_error(aborted, 409, "Conflict")
    again = complete(server, auth, upload_id)  # the retry record is still there
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]


def test_a_part_replaced_while_completing_is_never_lost(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    # The reviewer's race: completion reads a large part sent on its own (chunked),
    # while the client replaces that part. Whatever the order, an acknowledged
    # replacement is never left out of a later object, and an intact open session
    # never answers 404.
    first = os.urandom(PART_MIN * 4)
    large = os.urandom(32 * 1024 * 1024)
    new = b"replacement last part"
    outcomes: set[tuple[int, int]] = set()
    for delay in (0.0, 0.02, 0.05, 0.1):
        upload_id = open_session(server, auth, tenant, key=f"race{delay}")

        def chunks(data: bytes) -> Iterator[bytes]:
            yield from (data[i : i + 1024 * 1024] for i in range(0, len(data), 1024 * 1024))

        sent = server.client.put(
            f"/v1/uploads/{upload_id}/parts/2", headers=auth, content=chunks(large)
        )
        assert sent.status_code == 200, sent.text
        assert put_part(server, auth, upload_id, 1, first).status_code == 200
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            completing = pool.submit(complete, server, auth, upload_id)
            time.sleep(delay)
            replaced = put_part(server, auth, upload_id, 2, new)
            done = completing.result()
        outcomes.add((done.status_code, replaced.status_code))
        assert done.status_code in (201, 409), done.text
        if done.status_code == 409:
            assert_error(done, 409, "Conflict")
            assert replaced.status_code == 200
            done = complete(server, auth, upload_id)
            assert done.status_code == 201, done.text
        if replaced.status_code == 200:
            assert done.json()["content_hash"] == f"sha256:{sha256_hex(first + new)}", outcomes
        else:  # the session completed first: the replacement came too late
            assert_error(replaced, 404, "NotFound")
            assert done.json()["content_hash"] == f"sha256:{sha256_hex(first + large)}"


def flip_stored_byte(server: Server, upload_id: str, number: int, at: int, offset: int) -> None:
    """Change one byte of part `number`'s stored bytes, in place, after its 200 (bit rot,
    an operator): on the filesystem, byte `offset` of the session's stream file when
    its parts share one (part `number` starts at `at` in it), else of the part's own
    file; on an s3:// root, the part's object is written again with that byte changed."""
    if on_s3(server):
        import asyncio

        import obstore
        from obstore.store import S3Store

        (key,) = [
            k
            for k in s3_keys(server, f"parts/{upload_id}/")
            if k.split("/")[-1].startswith(f"{number}.")
        ]
        bucket, _, root = server.env["JUSTSTORAGE_HOT_ROOT"].removeprefix("s3://").partition("/")
        store = S3Store(
            bucket,
            prefix=root,
            config={
                "endpoint": server.env["AWS_ENDPOINT_URL"],
                "access_key_id": server.env["AWS_ACCESS_KEY_ID"],
                "secret_access_key": server.env["AWS_SECRET_ACCESS_KEY"],
                "region": server.env["AWS_REGION"],
            },
            client_options={"allow_http": True},
        )

        async def rewrite() -> None:
            data = bytearray(await (await obstore.get_async(store, key)).bytes_async())
            data[offset] ^= 0x01
            await obstore.put_async(store, key, bytes(data))

        asyncio.run(rewrite())
        return
    folder = server.data_dir / "hot" / "parts" / upload_id
    own = [p for p in folder.iterdir() if p.name.startswith(f"{number}.")]
    path, first = (own[0], 0) if own else (next(folder.glob("s.*")), at)
    with open(path, "r+b") as file:
        file.seek(first + offset)
        changed = bytes([file.read(1)[0] ^ 0x01])
        file.seek(first + offset)
        file.write(changed)


def assert_refused_then_resent(
    server: Server, auth: dict[str, str], tenant: str, upload_id: str, parts: list[bytes]
) -> None:
    """Completion refuses the damaged part 2 (404 naming it, nothing committed, the
    session open, listing part 2 as not received, as a client resuming from the
    listing needs); part 2 sent again, completion commits the bytes the client sent,
    under their SHA-256. The damage is counted as a stored checksum mismatch."""
    before = checksum_mismatches(server.client)
    refused = complete(server, auth, upload_id)
    error = assert_error(refused, 404, "NotFound")
    after = checksum_mismatches(server.client)
    assert after == {"upload": before["upload"], "stored": before["stored"] + 1}
    assert "part 2" in error["message"] and "send part 2 again" in error["message"]
    assert refused.headers["x-request-id"] in server.log()  # the details, by request id
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert session["state"] == "open"
    assert [p["part"] for p in session["parts"]] == [1, 3]
    assert_error(complete(server, auth, upload_id), 400, "BadRequest")  # a gap now
    listed = server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": "models", "versions": "true"},
        headers=auth,
    ).json()["items"]
    assert listed == []
    assert put_part(server, auth, upload_id, 2, parts[1]).status_code == 200
    done = complete(server, auth, upload_id)
    assert done.status_code == 201, done.text
    whole = b"".join(parts)
    assert done.json()["content_hash"] == f"sha256:{sha256_hex(whole)}"
    got = server.client.get(
        f"/v1/objects/{done.json()['id']}", headers={**auth, "X-Tenant": tenant}
    )
    assert got.status_code == 200 and sha256_hex(got.content) == sha256_hex(whole)


@pytest.mark.parametrize("inline", [False, True], ids=["file", "inline"])
def test_a_part_changed_on_disk_is_refused_after_a_restart(
    start_server: StartServer, tenant: str, inline: bool
) -> None:
    """A restart loses the running hash: completion reads every part back, and each
    must still be the bytes its 200 acknowledged. One byte of part 2 changed on disk
    (with no X-Content-SHA256 on the session) is refused, never published."""
    first = start_server(
        JUSTSTORAGE_UPLOAD_PART_MIN_BYTES=str(PART_MIN),
        JUSTSTORAGE_INLINE_MAX_BYTES="65536" if inline else "0",
    )
    auth = first.admin_headers()
    upload_id = open_session(first, auth, tenant)
    parts = parts_of(PART_MIN * 4, 2) + [b"the end"]
    for number, data in enumerate(parts, 1):
        assert put_part(first, auth, upload_id, number, data).status_code == 200
    first.stop()
    flip_stored_byte(first, upload_id, 2, len(parts[0]), 1000)
    again = start(first.data_dir.parent, first.env, data_dir=first.data_dir)
    try:
        assert_refused_then_resent(again, auth, tenant, upload_id, parts)
    finally:
        again.stop()


@pytest.mark.filesystem_layout
def test_a_part_of_its_own_changed_on_disk_is_refused(
    server: Server, auth: dict[str, str], tenant: str
) -> None:
    """Parts out of order, no restart: part 2 sent first without a length lands in a
    file of its own that the running hash never covers, so completion reads it back,
    and finds its bytes changed since the 200."""
    upload_id = open_session(server, auth, tenant)
    parts = parts_of(PART_MIN * 4, 2) + [b"the end"]
    chunked = put_part(server, auth, upload_id, 2, iter([parts[1]]))  # type: ignore[arg-type]
    assert chunked.status_code == 200
    for number in (1, 3):
        assert put_part(server, auth, upload_id, number, parts[number - 1]).status_code == 200
    flip_stored_byte(server, upload_id, 2, 0, 77)
    assert_refused_then_resent(server, auth, tenant, upload_id, parts)
