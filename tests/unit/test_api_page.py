"""`GET /docs`: the API page, served with its assets by the app itself, no credential."""

from __future__ import annotations

import asyncio
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from juststorage.api.app import create_app
from juststorage.api.openapi import openapi_document
from juststorage.bootstrap import build
from juststorage.config import load_settings

BASE = "http://testserver"


class _References(HTMLParser):
    """Every URL the page refers to (href, src), and the element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.ids: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.scripts += tag == "script"
        for name, value in attrs:
            if name in ("href", "src", "action", "srcset", "data") and value is not None:
                self.urls.append(value)
            if name == "id" and value is not None:
                self.ids.add(value)


class Client:
    """GETs through the ASGI app in-process (no lifespan: /docs needs no storage)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def get(self, url: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                response = await client.get(url)
                await response.aread()
                return response

        return asyncio.run(fetch())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Client:
    data_dir = tmp_path_factory.mktemp("api-page")
    services = build(load_settings({"JUSTSTORAGE_DATA_DIR": str(data_dir)}))
    return Client(create_app(services, run_startup=False, run_background=False))


def _page(client: Client) -> tuple[str, _References]:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = _References()
    references.feed(response.text)
    return response.text, references


def test_docs_page_needs_no_credential_and_forbids_outside_content(client: Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "style-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def test_every_asset_of_the_docs_page_is_served_by_the_app(client: Client) -> None:
    _, references = _page(client)
    assert references.scripts == 0
    served = []
    for reference in references.urls:
        url = urljoin(f"{BASE}/docs", reference)
        assert urlsplit(url).netloc == "testserver", f"{reference} leaves the server"
        if reference.startswith("#"):
            assert reference[1:] in references.ids, f"dangling anchor {reference}"
            continue
        response = client.get(url)
        assert response.status_code == 200, reference
        served.append(urlsplit(url).path)
        if url.endswith(".css"):
            assert response.headers["content-type"].startswith("text/css")
            # A style sheet could pull in fonts or images from elsewhere.
            assert not re.search(r"url\(|@import", response.text), reference
    assert "/docs/assets/docs.css" in served
    assert "/openapi.json" in served


def test_docs_page_shows_every_operation_and_schema(client: Client) -> None:
    text, references = _page(client)
    document = openapi_document()
    for path, item in document["paths"].items():
        for operation in item.values():
            assert operation["operationId"] in references.ids
            assert f"<code>{path}</code>" in text
    for name in document["components"]["schemas"]:
        assert f"schema-{name}" in references.ids


def test_assets_are_shipped_in_the_package() -> None:
    import juststorage.api

    static = Path(juststorage.api.__file__).parent / "static"
    assert (static / "docs.css").is_file()
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert '"api/static/*"' in pyproject.read_text(encoding="utf-8")


def test_an_unknown_asset_is_a_json_404(client: Client) -> None:
    for path in ("/docs/assets/missing.css", "/docs/assets/../openapi_page.py"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "NotFound"
