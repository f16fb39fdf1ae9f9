"""GET /v1/objects and GET /v1/usage against the real server (SPEC §2 List, Usage)."""

from __future__ import annotations

from typing import Any

import pytest

from juststorage.testing import Server, StartServer

from .support import assert_error, unique_name, upload

pytestmark = pytest.mark.e2e

PRICE_HOT = 1000.0
PRICE_COLD = 250.0

# Code point order equals UTF-8 byte order; these keys differ from a naive
# case-insensitive or UTF-16 ordering.
KEYS = [
    "a",
    "a/b",
    "a0",
    "B",
    "b",
    "Z",
    "_",
    "~",
    "é",
    "ÿ",
    "\ufffd",
    "😀",
    "中",
    "dir/x",
    "dir/y",
    "dir/y/z",
    "dirx",
    "a b",
    "a-b",
    "a.b",
]
MULTI = {"a", "dir/y", "😀"}  # these get a second version


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(
        JUSTSTORAGE_PRICE_HOT_GB_MONTH=str(PRICE_HOT),
        JUSTSTORAGE_PRICE_COLD_GB_MONTH=str(PRICE_COLD),
        JUSTSTORAGE_CURRENCY="EUR",
    )


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


@pytest.fixture(scope="module")
def listing(server: Server) -> dict[str, Any]:
    """One tenant/namespace with KEYS (some with two versions, some cold)."""
    auth = server.admin_headers()
    tenant = unique_name()
    versions: dict[str, list[str]] = {}
    for index, key in enumerate(KEYS):
        storage_class = "cold" if index % 3 == 0 else "hot"
        for round_ in range(2 if key in MULTI else 1):
            response = upload(
                server.client,
                auth,
                tenant,
                "ns",
                key,
                f"{key}-{round_}".encode(),
                X_Storage_Class=storage_class,
            )
            assert response.status_code == 201, response.text
            versions.setdefault(key, []).insert(0, response.json()["id"])  # newest first
    upload(server.client, auth, tenant, "other-ns", "a", b"elsewhere")
    return {"tenant": tenant, "versions": versions}


def _all_pages(server: Server, auth: dict[str, str], params: dict[str, str]) -> list[list[Any]]:
    pages = []
    cursor = None
    for _ in range(200):
        query = dict(params)
        if cursor is not None:
            query["cursor"] = cursor
        response = server.client.get("/v1/objects", params=query, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("listing did not end within 200 pages")


def _byte_order(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


@pytest.mark.parametrize("limit", [1, 3, 7, 1000])
def test_paging_returns_every_newest_version_once_in_byte_order(
    server: Server, auth: dict[str, str], listing: dict[str, Any], limit: int
) -> None:
    pages = _all_pages(
        server, auth, {"tenant": listing["tenant"], "namespace": "ns", "limit": str(limit)}
    )
    assert all(len(page) <= limit for page in pages)
    assert all(pages), "an empty page before the end"
    items = [item for page in pages for item in page]
    assert [i["key"] for i in items] == _byte_order(KEYS)
    assert [i["id"] for i in items] == [listing["versions"][i["key"]][0] for i in items]
    assert all(i["tenant_id"] == listing["tenant"] and i["namespace"] == "ns" for i in items)


def test_default_limit_is_100(server: Server, auth: dict[str, str]) -> None:
    tenant = unique_name()
    for index in range(101):
        assert upload(server.client, auth, tenant, "n", f"k{index:03}", b"x").status_code == 201
    first = server.client.get(
        "/v1/objects", params={"tenant": tenant, "namespace": "n"}, headers=auth
    )
    assert len(first.json()["items"]) == 100
    assert first.json()["next_cursor"] is not None


def test_versions_true_lists_every_version_newest_first(
    server: Server, auth: dict[str, str], listing: dict[str, Any]
) -> None:
    pages = _all_pages(
        server,
        auth,
        {"tenant": listing["tenant"], "namespace": "ns", "versions": "true", "limit": "2"},
    )
    items = [item for page in pages for item in page]
    expected = [(k, vid) for k in _byte_order(KEYS) for vid in listing["versions"][k]]
    assert [(i["key"], i["id"]) for i in items] == expected
    assert len(items) == len(KEYS) + len(MULTI)


def test_prefix_is_literal(server: Server, auth: dict[str, str], listing: dict[str, Any]) -> None:
    params = {"tenant": listing["tenant"], "namespace": "ns"}
    dir_items = _all_pages(server, auth, {**params, "prefix": "dir/", "limit": "1"})
    assert [i["key"] for page in dir_items for i in page] == ["dir/x", "dir/y", "dir/y/z"]
    dot = _all_pages(server, auth, {**params, "prefix": "a."})
    assert [i["key"] for page in dot for i in page] == ["a.b"]
    percent = _all_pages(server, auth, {**params, "prefix": "%"})
    assert percent == [[]]


def test_storage_class_filter(
    server: Server, auth: dict[str, str], listing: dict[str, Any]
) -> None:
    params = {"tenant": listing["tenant"], "namespace": "ns"}
    cold = [
        i for page in _all_pages(server, auth, {**params, "storage_class": "cold"}) for i in page
    ]
    hot = [i for page in _all_pages(server, auth, {**params, "storage_class": "hot"}) for i in page]
    assert {i["storage_class"] for i in cold} == {"cold"}
    assert {i["storage_class"] for i in hot} == {"hot"}
    assert _byte_order([i["key"] for i in cold + hot]) == _byte_order(KEYS)
    expected_cold = {k for index, k in enumerate(KEYS) if index % 3 == 0}
    assert {i["key"] for i in cold} == expected_cold
    bad = server.client.get("/v1/objects", params={**params, "storage_class": "warm"}, headers=auth)
    assert_error(bad, 400, "BadRequest")


def test_empty_namespace_lists_nothing(server: Server, auth: dict[str, str]) -> None:
    response = server.client.get(
        "/v1/objects", params={"tenant": unique_name(), "namespace": "n"}, headers=auth
    )
    assert response.json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("limit", ["0", "1001", "abc", "-1", "1.5", ""])
def test_limit_out_of_bounds_is_400(server: Server, auth: dict[str, str], limit: str) -> None:
    response = server.client.get(
        "/v1/objects", params={"tenant": "acme", "namespace": "n", "limit": limit}, headers=auth
    )
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize("cursor", ["!!!", "abc", "W10", "eyJhIjoxfQ", "WyJhIiwiMSJd"])
def test_malformed_cursor_is_400(server: Server, auth: dict[str, str], cursor: str) -> None:
    response = server.client.get(
        "/v1/objects", params={"tenant": "acme", "namespace": "n", "cursor": cursor}, headers=auth
    )
    assert_error(response, 400, "BadRequest")


@pytest.mark.parametrize(
    "params",
    [{"namespace": "n"}, {"tenant": "acme"}, {"tenant": "ACME", "namespace": "n"}],
)
def test_list_needs_valid_tenant_and_namespace(
    server: Server, auth: dict[str, str], params: dict[str, str]
) -> None:
    assert_error(server.client.get("/v1/objects", params=params, headers=auth), 400, "BadRequest")


def test_versions_must_be_a_boolean(server: Server, auth: dict[str, str]) -> None:
    response = server.client.get(
        "/v1/objects", params={"tenant": "acme", "namespace": "n", "versions": "yes"}, headers=auth
    )
    assert_error(response, 400, "BadRequest")


def test_usage_counts_every_version_and_prices_per_class(
    server: Server, auth: dict[str, str]
) -> None:
    tenant = unique_name()
    hot_a = b"h" * 600_000
    hot_b = b"H" * 400_000
    cold = b"c" * 200_000
    for key, data, storage_class in [
        ("a", hot_a, "hot"),
        ("a", hot_b, "hot"),  # a second version counts too
        ("dup", hot_a, "hot"),  # deduplicated bytes are still billed
        ("c", cold, "cold"),
    ]:
        response = upload(
            server.client, auth, tenant, "n1", key, data, X_Storage_Class=storage_class
        )
        assert response.status_code == 201
    upload(server.client, auth, tenant, "n2", "z", b"", X_Storage_Class="cold")
    upload(server.client, auth, unique_name(), "n1", "a", hot_a)  # another tenant: not counted

    response = server.client.get("/v1/usage", params={"tenant": tenant}, headers=auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "tenant_id",
        "objects",
        "logical_bytes",
        "by_storage_class",
        "monthly_cost",
        "currency",
    }
    hot_bytes = 1_600_000
    assert body["tenant_id"] == tenant
    assert body["objects"] == 5
    assert body["logical_bytes"] == hot_bytes + 200_000
    assert body["currency"] == "EUR"
    hot, cold_usage = body["by_storage_class"]["hot"], body["by_storage_class"]["cold"]
    assert hot["objects"] == 3 and hot["bytes"] == hot_bytes
    assert cold_usage["objects"] == 2 and cold_usage["bytes"] == 200_000
    assert hot["monthly_cost"] == pytest.approx(hot_bytes / 1e9 * PRICE_HOT)
    assert cold_usage["monthly_cost"] == pytest.approx(200_000 / 1e9 * PRICE_COLD)
    assert body["monthly_cost"] == pytest.approx(1.6 + 0.05)
    assert all(
        isinstance(v, int | float)
        for v in (body["monthly_cost"], hot["monthly_cost"], cold_usage["monthly_cost"])
    )

    obj = server.client.get(
        "/v1/objects", params={"tenant": tenant, "namespace": "n1"}, headers=auth
    )
    first_id = next(i["id"] for i in obj.json()["items"] if i["key"] == "c")
    server.client.delete(f"/v1/objects/{first_id}", headers={**auth, "X-Tenant": tenant})
    after = server.client.get("/v1/usage", params={"tenant": tenant}, headers=auth).json()
    assert after["objects"] == 4
    assert after["by_storage_class"]["cold"] == {"objects": 1, "bytes": 0, "monthly_cost": 0}


def test_usage_of_an_empty_tenant_is_zero(server: Server, auth: dict[str, str]) -> None:
    tenant = unique_name()
    body = server.client.get("/v1/usage", params={"tenant": tenant}, headers=auth).json()
    assert body["objects"] == 0 and body["logical_bytes"] == 0 and body["monthly_cost"] == 0
    assert set(body["by_storage_class"]) == {"hot", "cold"}


@pytest.mark.parametrize("params", [{}, {"tenant": "Not Valid"}])
def test_usage_needs_a_valid_tenant(
    server: Server, auth: dict[str, str], params: dict[str, str]
) -> None:
    assert_error(server.client.get("/v1/usage", params=params, headers=auth), 400, "BadRequest")
