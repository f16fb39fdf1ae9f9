"""GET /v1/objects with a delimiter against the real server (SPEC §8.4)."""

from __future__ import annotations

from typing import Any

import pytest

from juststorage.testing import Server, StartServer

from .support import assert_error, unique_name, upload

pytestmark = pytest.mark.e2e

KEYS = [
    "docs/",
    "docs/a.txt",
    "docs/2025/q1.pdf",
    "docs/2025/q2.pdf",
    "docs/2026/q1.pdf",
    "docs.txt",
    "readme",
    "日本/文書",
    "x::y::z",
]


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server()


@pytest.fixture(scope="module")
def tenant(server: Server) -> str:
    tenant = unique_name()
    auth = server.admin_headers()
    for n, key in enumerate(KEYS):
        storage_class = "cold" if key == "docs/a.txt" else "hot"
        for round_ in range(2 if n % 2 else 1):
            response = upload(
                server.client,
                auth,
                tenant,
                "ns",
                key,
                f"{key}{round_}".encode(),
                X_Storage_Class=storage_class,
            )
            assert response.status_code == 201, response.text
    return tenant


def _get(server: Server, tenant: str, **params: str) -> Any:
    response = server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": "ns", **params},
        headers=server.admin_headers(),
    )
    assert response.status_code == 200, response.text
    return response.json()


def _pages(server: Server, tenant: str, **params: str) -> list[Any]:
    pages = [_get(server, tenant, **params)]
    while pages[-1]["next_cursor"] is not None:
        pages.append(_get(server, tenant, **params, cursor=pages[-1]["next_cursor"]))
        assert len(pages) < 100
    return pages


def test_keys_roll_up_into_common_prefixes(server: Server, tenant: str) -> None:
    body = _get(server, tenant, delimiter="/")
    assert list(body) == ["items", "common_prefixes", "next_cursor"]
    assert [i["key"] for i in body["items"]] == ["docs.txt", "readme", "x::y::z"]
    assert body["common_prefixes"] == ["docs/", "日本/"]
    assert body["next_cursor"] is None


def test_one_level_below_a_prefix(server: Server, tenant: str) -> None:
    body = _get(server, tenant, prefix="docs/", delimiter="/")
    assert [i["key"] for i in body["items"]] == ["docs/", "docs/a.txt"]
    assert body["common_prefixes"] == ["docs/2025/", "docs/2026/"]
    body = _get(server, tenant, prefix="docs", delimiter="/")
    assert [i["key"] for i in body["items"]] == ["docs.txt"]
    assert body["common_prefixes"] == ["docs/"]


def test_multi_byte_delimiter(server: Server, tenant: str) -> None:
    assert _get(server, tenant, delimiter="::")["common_prefixes"] == ["x::"]
    body = _get(server, tenant, prefix="日", delimiter="本")
    assert body == {"items": [], "common_prefixes": ["日本"], "next_cursor": None}


@pytest.mark.parametrize("limit", ["1", "2", "3"])
def test_pages_resume_after_items_and_prefixes(server: Server, tenant: str, limit: str) -> None:
    pages = _pages(server, tenant, prefix="docs/", delimiter="/", limit=limit)
    assert all(len(p["items"]) + len(p["common_prefixes"]) == int(limit) for p in pages[:-1])
    entries = sorted(
        [i["key"] for p in pages for i in p["items"]]
        + [c for p in pages for c in p["common_prefixes"]]
    )
    assert entries == ["docs/", "docs/2025/", "docs/2026/", "docs/a.txt"]


def test_versions_and_class_filter_shape_the_items_only(server: Server, tenant: str) -> None:
    body = _get(server, tenant, prefix="docs/", delimiter="/", versions="true")
    assert [i["key"] for i in body["items"]] == ["docs/", "docs/a.txt", "docs/a.txt"]
    assert body["common_prefixes"] == ["docs/2025/", "docs/2026/"]
    body = _get(server, tenant, prefix="docs/", delimiter="/", storage_class="cold")
    assert [i["key"] for i in body["items"]] == ["docs/a.txt"]
    assert body["common_prefixes"] == ["docs/2025/", "docs/2026/"]


def test_without_a_delimiter_the_answer_is_unchanged(server: Server, tenant: str) -> None:
    body = _get(server, tenant, prefix="docs/2025/")
    assert list(body) == ["items", "next_cursor"]


@pytest.mark.parametrize(
    "query",
    [
        "delimiter=",
        "delimiter=" + "x" * 17,
        "delimiter=" + "%C3%A9" * 9,  # 18 bytes
        "delimiter=%00",
        "delimiter=%1F",
        "delimiter=%FF",  # not UTF-8
        "delimiter=%ZZ",
        "delimiter=/&delimiter=/",
    ],
)
def test_a_bad_delimiter_is_400(server: Server, query: str) -> None:
    response = server.client.get(
        f"/v1/objects?tenant=acme&namespace=ns&{query}", headers=server.admin_headers()
    )
    assert_error(response, 400, "BadRequest")


def test_another_tenants_keys_never_roll_up(server: Server, tenant: str) -> None:
    other = unique_name()
    upload(server.client, server.admin_headers(), other, "ns", "secret/1", b"x")
    assert _get(server, tenant, prefix="secret", delimiter="/")["common_prefixes"] == []
    assert _get(server, other, delimiter="/")["common_prefixes"] == ["secret/"]
