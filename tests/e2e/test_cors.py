"""CORS (SPEC §8.6) on a real server: preflights, the headers of every answer, and
nothing at all for an origin not allowed or when the setting is unset."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from pydantic import ValidationError

from juststorage.config import Settings
from juststorage.testing import Server, start

from .support import by_key_path, unique_name, upload

pytestmark = pytest.mark.e2e

ALLOWED = "http://console.example.test"
ALSO = "http://127.0.0.1:9999"
STRANGER = "http://evil.example.test"
CONTRACT_REQUEST_HEADERS = {
    "authorization",
    "content-type",
    "range",
    "if-match",
    "if-none-match",
    "x-tenant",
    "x-namespace",
    "x-key",
    "x-key-encoding",
    "x-storage-class",
    "x-content-sha256",
    "x-content-length",
    "x-request-id",
}
EXPOSED = {
    "etag",
    "location",
    "content-range",
    "content-length",
    "retry-after",
    "x-object-id",
    "x-storage-class",
    "x-request-id",
}


def names(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    root = tmp_path_factory.mktemp("cors")
    started = {
        "listed": start(root, {"JUSTSTORAGE_CORS_ORIGINS": f"{ALLOWED}, {ALSO}/"}),
        "any": start(root, {"JUSTSTORAGE_CORS_ORIGINS": "*"}),
        "unset": start(root),
    }
    yield started
    for server in started.values():
        server.stop()


def preflight(server: Server, origin: str, method: str = "PUT") -> httpx.Response:
    return server.client.options(
        by_key_path("ns", "acme", "a/b"),
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, x-storage-class, content-type",
        },
    )


def test_an_allowed_origins_preflight_is_204_with_methods_and_headers(
    servers: dict[str, Server],
) -> None:
    for origin in (ALLOWED, ALSO):
        response = preflight(servers["listed"], origin)
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert response.headers["access-control-allow-origin"] == origin
        assert {"get", "head", "put", "post", "delete"} <= names(
            response.headers["access-control-allow-methods"]
        )
        assert names(response.headers["access-control-allow-headers"]) >= CONTRACT_REQUEST_HEADERS
        assert "origin" in names(response.headers["vary"])
        assert response.headers["x-request-id"]


def test_answers_to_an_allowed_origin_expose_the_contract_headers(
    servers: dict[str, Server],
) -> None:
    server = servers["listed"]
    tenant = unique_name()
    auth = server.admin_headers()
    created = upload(server.client, {**auth, "Origin": ALLOWED}, tenant, "ns", "k", b"x")
    assert created.status_code == 201
    got = server.client.get(
        by_key_path("ns", tenant, "k"), headers={**auth, "Origin": ALLOWED, "Range": "bytes=0-0"}
    )
    refused = server.client.get(by_key_path("ns", tenant, "k"), headers={"Origin": ALLOWED})
    for response in (created, got, refused):  # errors too: a page can read why
        assert response.headers["access-control-allow-origin"] == ALLOWED
        assert names(response.headers["access-control-expose-headers"]) >= EXPOSED
        assert "origin" in names(response.headers["vary"])
    assert refused.status_code == 401


def test_a_disallowed_origin_gets_no_cors_headers(servers: dict[str, Server]) -> None:
    server = servers["listed"]
    response = preflight(server, STRANGER)
    assert response.status_code != 204
    assert not any(h.startswith("access-control-") for h in response.headers)
    answer = server.client.get("/health", headers={"Origin": STRANGER})
    assert answer.status_code == 200
    assert not any(h.startswith("access-control-") for h in answer.headers)
    # A cache must not give this answer to an allowed origin.
    assert "origin" in names(answer.headers["vary"])


def test_a_star_allows_every_origin(servers: dict[str, Server]) -> None:
    response = preflight(servers["any"], STRANGER, method="DELETE")
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == STRANGER


def test_unset_means_no_cors_headers_at_all(servers: dict[str, Server]) -> None:
    server = servers["unset"]
    response = preflight(server, ALLOWED)
    assert response.status_code == 405
    answer = server.client.get("/health", headers={"Origin": ALLOWED})
    for headers in (response.headers, answer.headers):
        assert not any(h.startswith("access-control-") for h in headers)
        assert "vary" not in headers


@pytest.mark.parametrize(
    "value",
    ["console.example.test", "ftp://x.test", "http://x.test/path", "http://*.x.test", "*, a"],
)
def test_a_setting_that_is_not_a_list_of_origins_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="cors_origins"):
        Settings(cors_origins=value)


def test_the_setting_names_origins_without_a_trailing_slash_in_lower_case() -> None:
    settings = Settings(cors_origins="https://Console.Example.test/, http://127.0.0.1:9")
    assert settings.cors_origin_set == {"https://console.example.test", "http://127.0.0.1:9"}
    assert Settings(cors_origins="*").cors_origin_set == {"*"}
    assert Settings().cors_origin_set == frozenset()
