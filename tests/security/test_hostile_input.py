"""Hostile names, paths, headers and framing against the real server (SPEC §1, §2).

Each test asserts the SPEC's status and error code, and that the store is unchanged.
Covered elsewhere (not repeated): raw keys of 1025 bytes, tab, invalid and truncated
UTF-8 (e2e/test_uploads.py::test_bad_raw_key_is_400), percent-encoded NUL/US/DEL/FF/
1025-byte keys (::test_bad_percent_encoded_key_is_400), `%FF` in a by-key path
(e2e/test_downloads_deletes.py::test_download_by_key_with_non_utf8_escape_is_400), a
body shorter than its Content-Length (e2e/test_operations.py::
test_short_body_with_content_length_is_not_stored, ::test_aborted_upload_leaves_nothing_behind).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.support import assert_error, by_key_path, raw_request, upload
from juststorage.testing import Server, StartServer

from .support import StoreState, assert_unchanged, raw_exchange, status_of, store_state

pytestmark = pytest.mark.e2e

TENANT = "victim"


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(JUSTSTORAGE_MAX_OBJECT_BYTES="1000000")


@pytest.fixture(scope="module")
def stored(server: Server) -> dict[str, bytes]:
    """Keys a path or name trick could be confused with, each with its own bytes."""
    keys = {
        "..": b"dotdot",
        ".": b"dot",
        "%2e%2e": b"literal percent",
        "../../../../etc/passwd": b"not a file path",
        "a//b": b"double slash",
        "a/b": b"single slash",
        "a/../b": b"dot segment",
        "b": b"plain b",
        "/": b"root",
        "admin": b"latin admin",
        "\u0430dmin": b"cyrillic a",  # look-alike
        "caf\u00e9": b"nfc",
        "cafe\u0301": b"nfd",  # same glyphs, other bytes
        "x\uff0fy": b"fullwidth solidus",
        "x\u2215y": b"division slash",
        "\ufb01le": b"fi ligature",
        "\u202egpj.exe": b"right-to-left override",
    }
    for key, data in keys.items():
        response = upload(server.client, server.admin_headers(), TENANT, "n", key, data)
        assert response.status_code == 201, (key, response.text)
        assert response.json()["key"] == key
    return keys


@pytest.fixture
def before(server: Server, stored: dict[str, bytes]) -> StoreState:
    return store_state(server)


def _head(server: Server, key: bytes, *extra: bytes) -> bytes:
    return b"".join(
        [
            b"POST /v1/objects HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            f"Authorization: Bearer {server.admin_key}\r\n".encode(),
            f"X-Tenant: {TENANT}\r\nX-Namespace: n\r\n".encode(),
            b"X-Key: " + key + b"\r\n",
            *[line + b"\r\n" for line in extra],
        ]
    )


def _get(server: Server, path: bytes, *extra: bytes) -> tuple[int, dict[str, str], bytes]:
    request = b"".join(
        [
            b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n",
            f"Authorization: Bearer {server.admin_key}\r\n".encode(),
            *[line + b"\r\n" for line in extra],
            b"\r\n",
        ]
    )
    return raw_request(server.port, request)


def _json_error(body: bytes, code: str) -> None:
    error = json.loads(body)["error"]
    assert error["code"] == code, error


@pytest.mark.parametrize(
    ("raw_key", "by_app"),
    [
        (b"a\x00b", False),  # NUL, ESC, DEL: the HTTP parser refuses the header itself
        (b"a\x1bb", False),
        (b"a\x7fb", False),
        (b"\xc0\xaf", True),  # overlong "/"
        (b"\xe0\x80\xae\xe0\x80\xae", True),  # overlong ".."
        (b"\xed\xa0\x80", True),  # a UTF-16 surrogate in UTF-8
        (b"\xf4\x90\x80\x80", True),  # past U+10FFFF
        ("é".encode() * 512 + b"x", True),  # 1025 bytes
    ],
    ids=["nul", "esc", "del", "overlong-slash", "overlong-dots", "surrogate", "too-high", "1025"],
)
def test_hostile_raw_key_is_400_and_stores_nothing(
    server: Server, before: StoreState, raw_key: bytes, by_app: bool
) -> None:
    status, _, body = raw_request(
        server.port, _head(server, raw_key, b"Content-Length: 4") + b"\r\ndata"
    )
    assert status == 400
    if by_app:
        _json_error(body, "BadRequest")
    assert_unchanged(server, before)


@pytest.mark.parametrize(
    "encoded", ["%C0%AF", "%E0%80%AE", "%ED%A0%80", "a%0Ab", "a%0D%0AX-Tenant:%20other"]
)
def test_hostile_percent_encoded_key_is_400(
    server: Server, before: StoreState, encoded: str
) -> None:
    response = upload(
        server.client, server.admin_headers(), TENANT, "n", encoded, X_Key_Encoding="percent"
    )
    assert_error(response, 400, "BadRequest")
    assert_unchanged(server, before)


@pytest.mark.parametrize(
    "encoded",
    ["abc%", "%zz", "%4", "a%4", "a%g1b", "%%41", "50%", "%C3", "a%FFb", "%1F", "a%7Fb"],
)
def test_malformed_percent_encoded_key_is_400_and_stores_nothing(
    server: Server, before: StoreState, encoded: str
) -> None:
    response = upload(
        server.client, server.admin_headers(), TENANT, "n", encoded, X_Key_Encoding="percent"
    )
    assert_error(response, 400, "BadRequest")
    assert_unchanged(server, before)


@pytest.mark.parametrize("segment", [b"abc%", b"%zz", b"%4", b"a%g1b", b"50%"])
@pytest.mark.parametrize("method", [b"GET", b"HEAD", b"DELETE"])
def test_malformed_escape_in_by_key_path_is_400_not_a_literal_lookup(
    server: Server, stored: dict[str, bytes], method: bytes, segment: bytes
) -> None:
    literal = segment.decode("ascii")  # the key a lenient decoder would look up
    created = upload(server.client, server.admin_headers(), TENANT, "lit", literal, b"literal")
    assert created.status_code == 201, created.text
    before = store_state(server)
    request = b"".join(
        [
            method + b" /v1/objects/by-key/lit/victim/" + segment + b" HTTP/1.1\r\n",
            b"Host: 127.0.0.1\r\nConnection: close\r\n",
            f"Authorization: Bearer {server.admin_key}\r\n\r\n".encode(),
        ]
    )
    status, headers, body = raw_request(server.port, request)
    assert status == 400, (method, segment, status, body)
    if method != b"HEAD":
        _json_error(body, "BadRequest")
    assert_unchanged(server, before)


def test_percent_encoded_dots_name_the_literal_key(
    server: Server, stored: dict[str, bytes]
) -> None:
    auth = server.admin_headers()
    response = upload(
        server.client, auth, TENANT, "pct", "%2e%2e%2F%2e%2e", b"x", X_Key_Encoding="percent"
    )
    assert response.status_code == 201 and response.json()["key"] == "../.."
    # httpx would normalise "/../.." away in a path, so the key goes fully escaped.
    path = by_key_path("pct", TENANT, "../..", safe="")
    assert server.client.delete(path, headers=auth).status_code == 204


def test_keys_are_opaque_bytes_not_paths(
    server: Server, stored: dict[str, bytes], before: StoreState
) -> None:
    auth = server.admin_headers()
    for key, data in stored.items():
        # Sent raw: httpx would normalise dot segments away. Every byte escaped, and
        # "/" and dots as they are, name the same object.
        escaped = "".join(f"%{byte:02X}" for byte in key.encode("utf-8"))
        for path in (f"/v1/objects/by-key/n/{TENANT}/{escaped}", by_key_path("n", TENANT, key)):
            status, _, body = _get(server, path.encode("ascii"))
            assert (status, body) == (200, data), (key, path, body)
    listed = server.client.get(
        "/v1/objects", params={"tenant": TENANT, "namespace": "n", "limit": "1000"}, headers=auth
    ).json()["items"]
    keys = [item["key"] for item in listed]
    assert keys == sorted(stored, key=lambda k: k.encode())  # distinct, in byte order
    # Blob files are named by hash only: no key ever became a path.
    names = {p.name for p in server.data_dir.rglob("*")}
    assert "passwd" not in names and "etc" not in names
    assert_unchanged(server, before)


@pytest.mark.parametrize(
    ("path", "status", "body_or_code"),
    [
        (b"/v1/objects/by-key/n/victim/..", 200, b"dotdot"),  # not normalised away
        (b"/v1/objects/by-key/n/victim/.", 200, b"dot"),
        (b"/v1/objects/by-key/n/victim/%2e%2e", 200, b"dotdot"),
        (b"/v1/objects/by-key/n/victim/%252e%252e", 200, b"literal percent"),  # decoded once
        (b"/v1/objects/by-key/n/victim/a/../b", 200, b"dot segment"),
        (b"/v1/objects/by-key/n/victim/a%2F..%2Fb", 200, b"dot segment"),
        (b"/v1/objects/by-key/n/victim/a//b", 200, b"double slash"),
        (b"/v1/objects/by-key/n/victim//", 200, b"root"),
        (b"/v1/objects/by-key/n/victim/%00", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim/a%00b", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim/%1B", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim/%C0%AE%C0%AE", 400, "BadRequest"),  # overlong ".."
        (b"/v1/objects/by-key/n/victim/%C0%AF", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim/%ED%A0%80", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim/" + b"a" * 1025, 400, "BadRequest"),
        (b"/v1/objects/by-key/n/%2e%2e/victim/..", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim%2F..%2Fother/x", 400, "BadRequest"),
        (b"/v1/objects/by-key/n%FF/victim/x", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/vict%FFim/x", 400, "BadRequest"),
        (b"/v1/objects/by-key/n%00/victim/x", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim/", 400, "BadRequest"),
        (b"/v1/objects/by-key/n/victim/%2e%2e%2e", 404, "NotFound"),
    ],
)
def test_percent_and_dot_tricks_in_by_key_paths(
    server: Server, before: StoreState, path: bytes, status: int, body_or_code: Any
) -> None:
    got, headers, body = _get(server, path)
    assert got == status, (path, got, body)
    if isinstance(body_or_code, bytes):
        assert body == body_or_code
    else:
        _json_error(body, body_or_code)
        assert headers["content-type"].startswith("application/json")
    assert_unchanged(server, before)


@pytest.mark.parametrize(
    ("header", "status", "code"),
    [
        (b"X-Tenant: \xff", 400, "BadRequest"),
        (b"X-Namespace: n\xff", 400, "BadRequest"),
        (b"X-Storage-Class: h\xf6t", 400, "BadRequest"),
        (b"Content-Type: text/\xff", 400, "BadRequest"),
        (b"X-Content-SHA256: \xff", 400, "BadRequest"),
        (b'If-Match: "\xff"', 400, "BadRequest"),
        (b"X-Key-Encoding: p\xebrcent", 400, "BadRequest"),
    ],
)
def test_non_utf8_header_bytes_on_upload_are_400(
    server: Server, before: StoreState, header: bytes, status: int, code: str
) -> None:
    # The header given last wins over the fixture's for X-Tenant / X-Namespace? No:
    # send a head where the hostile header is the only one of its name.
    name = header.split(b":", 1)[0]
    lines = [
        b"POST /v1/objects HTTP/1.1",
        b"Host: 127.0.0.1",
        f"Authorization: Bearer {server.admin_key}".encode(),
        b"X-Key: fresh-key",
        b"Content-Length: 4",
    ]
    for default in (b"X-Tenant: " + TENANT.encode(), b"X-Namespace: n"):
        if default.split(b":", 1)[0] != name:
            lines.append(default)
    lines.append(header)
    got, _, body = raw_request(server.port, b"\r\n".join(lines) + b"\r\n\r\ndata")
    assert got == status, body
    _json_error(body, code)
    assert_unchanged(server, before)


def test_non_utf8_bytes_in_credential_request_id_and_range(
    server: Server, before: StoreState
) -> None:
    path = b"/v1/objects/by-key/n/victim/b"
    status, headers, body = raw_request(
        server.port,
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe.\xff.\xff\r\n\r\n",
    )
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    _json_error(body, "Unauthorized")
    status, headers, body = _get(server, path, b"X-Request-Id: \xff\xfe", b"Range: bytes=\xff-")
    assert status == 200 and body == b"plain b"  # a Range it cannot read is ignored
    assert headers["x-request-id"].isascii() and len(headers["x-request-id"]) == 32
    assert_unchanged(server, before)


def test_oversized_headers_are_refused_and_the_server_keeps_serving(
    server: Server, before: StoreState
) -> None:
    huge_value = _head(server, b"big", b"X-Padding: " + b"a" * (1024 * 1024), b"Content-Length: 1")
    assert status_of(raw_exchange(server.port, huge_value + b"\r\nx")) in (None, 400, 431)
    many = _head(server, b"many", *[b"X-H%d: v" % i for i in range(5000)], b"Content-Length: 1")
    assert status_of(raw_exchange(server.port, many + b"\r\nx")) in (None, 400, 431)
    long_key = _head(server, b"k" * 300_000, b"Content-Length: 1")
    assert status_of(raw_exchange(server.port, long_key + b"\r\nx")) in (None, 400, 431)
    assert server.client.get("/health").status_code == 200
    assert_unchanged(server, before)


@pytest.mark.parametrize(
    "content_length",
    [b"-1", b"+4", b"4x", b"0x4", b"\xc2\xb2", b"9" * 5000, b"4, 5"],
)
def test_malformed_content_length_is_400_and_stores_nothing(
    server: Server, before: StoreState, content_length: bytes
) -> None:
    request = _head(server, b"cl", b"Content-Length: " + content_length) + b"\r\ndata"
    assert status_of(raw_exchange(server.port, request)) == 400
    assert_unchanged(server, before)


def test_two_different_content_lengths_are_400(server: Server, before: StoreState) -> None:
    request = _head(server, b"cl2", b"Content-Length: 2", b"Content-Length: 4") + b"\r\ndata"
    assert status_of(raw_exchange(server.port, request)) == 400
    assert_unchanged(server, before)


def test_content_length_shorter_than_the_body_stores_only_the_declared_bytes(
    server: Server,
) -> None:
    # The rest of the bytes is the next request on the connection, and it is no request.
    request = _head(server, b"short-cl", b"Content-Length: 5") + b"\r\nhelloGARBAGE\r\n\r\n"
    reply = raw_exchange(server.port, request)
    assert status_of(reply) == 201, reply
    assert b"HTTP/1.1 400" in reply[12:] or reply.count(b"HTTP/1.1") == 1
    got = server.client.get(by_key_path("n", TENANT, "short-cl"), headers=server.admin_headers())
    assert got.content == b"hello"
    server.client.delete(by_key_path("n", TENANT, "short-cl"), headers=server.admin_headers())


def test_content_length_with_chunked_encoding_follows_the_chunks(server: Server) -> None:
    """RFC 9112 §6.3: Transfer-Encoding wins; the bytes stored are the chunked body."""
    request = (
        _head(server, b"cl-te", b"Content-Length: 3", b"Transfer-Encoding: chunked")
        + b"\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    status, _, body = raw_request(server.port, request)
    assert status == 201, body
    got = server.client.get(by_key_path("n", TENANT, "cl-te"), headers=server.admin_headers())
    assert got.content == b"hello"
    server.client.delete(by_key_path("n", TENANT, "cl-te"), headers=server.admin_headers())


@pytest.mark.parametrize(
    ("range_header", "status", "content"),
    [
        ("bytes=0-1,3-4", 416, None),  # multi-range
        ("bytes=" + ",".join(["0-0"] * 1000), 416, None),
        ("bytes=-1-2", 200, b"plain b"),  # negative start: not a range, ignored
        ("bytes=2--1", 200, b"plain b"),
        ("bytes=-0", 416, None),
        ("bytes=0-" + "9" * 5000, 206, b"plain b"),  # overflowing end: to the end
        ("bytes=" + "9" * 5000 + "-", 416, None),  # overflowing start
        ("bytes=" + "9" * 30 + "-" + "9" * 31, 416, None),
        ("bytes=-" + "9" * 5000, 206, b"plain b"),  # suffix longer than the object
        ("bytes=\u0661-\u0662", 200, b"plain b"),  # Arabic-Indic digits are not digits here
        ("bytes=1-2", 206, b"la"),
    ],
)
def test_hostile_range_headers(
    server: Server, before: StoreState, range_header: str, status: int, content: bytes | None
) -> None:
    response = server.client.get(
        by_key_path("n", TENANT, "b"),
        headers={**server.admin_headers(), "Range": range_header.encode("utf-8")},
    )
    if content is None:
        assert_error(response, status, "RangeNotSatisfiable")
        assert response.headers["content-range"] == "bytes */7"
    else:
        assert response.status_code == status, response.text
        assert response.content == content
    assert_unchanged(server, before)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "\u00b2"},  # str.isdigit() says yes, int() says no
        {"limit": "9" * 5000},  # more digits than int() parses
        {"limit": "\u0661"},
        {"limit": "-1"},
        {"cursor": "WyJhIiwgMTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMF0"},  # ["a", 10**30]
        {"cursor": "WyJhXHUwMDAwIiwgMV0"},  # ["a\u0000", 1]
        {"cursor": "WyJcdWQ4MDAiLCAxXQ"},  # ["\ud800", 1]
        {"cursor": "WyJhIiwgLTFd"},  # ["a", -1]
        {"prefix": "a\x00"},
        {"prefix": "x" * 1025},
        {"tenant": "../victim"},
        {"namespace": "n\x00"},
    ],
)
def test_hostile_list_queries_are_400(
    server: Server, before: StoreState, params: dict[str, str]
) -> None:
    query = {"tenant": TENANT, "namespace": "n", **params}
    response = server.client.get("/v1/objects", params=query, headers=server.admin_headers())
    assert_error(response, 400, "BadRequest")
    assert_unchanged(server, before)
