"""CORS (SPEC §8.6) in a real browser: a page served on another 127.0.0.1 origin
calls the API with fetch; an allowed origin reads the answers and their exposed
headers, a disallowed one cannot read anything. Debian's chromium, driven headless
by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from juststorage.testing import Server, start

from .support import unique_name

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE = b"<!doctype html><title>another origin</title><p>page</p>"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _need(available: bool, what: str) -> None:
    if not available:
        if _in_ci():
            pytest.fail(f"{what} is needed for the browser tests")
        pytest.skip(f"{what} is not installed")


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def origins() -> Iterator[tuple[str, str]]:
    """Two page servers on 127.0.0.1: their origins (the first is allowed)."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Page) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, origins: tuple[str, str]) -> Iterator[Server]:
    running = start(
        tmp_path_factory.mktemp("cors-browser"), {"JUSTSTORAGE_CORS_ORIGINS": origins[0]}
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _need(CHROMIUM.exists() or shutil.which("chromium") is not None, "Debian's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need(False, "the playwright package")
        raise
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


# Runs in the page: PUT by key, then GET it back, then a presigned GET without a
# credential; each answer's status, body and the exposed headers the page can read.
_CALLS = """
async ([api, token, tenant]) => {
  const auth = { Authorization: `Bearer ${token}` };
  const path = `${api}/v1/objects/by-key/files/${tenant}/from%20browser.txt`;
  const out = {};
  try {
    const put = await fetch(path, {
      method: "PUT",
      headers: { ...auth, "Content-Type": "text/plain", "X-Storage-Class": "cold" },
      body: "hello from another origin",
    });
    out.put = { status: put.status, etag: put.headers.get("ETag"),
                location: put.headers.get("Location"), body: await put.json() };
    const got = await fetch(path, { headers: { ...auth, Range: "bytes=0-4" } });
    out.get = { status: got.status, body: await got.text(),
                range: got.headers.get("Content-Range"),
                id: got.headers.get("X-Object-Id"),
                storageClass: got.headers.get("X-Storage-Class"),
                requestId: got.headers.get("X-Request-Id") };
    const signed = await fetch(`${api}/v1/presign`, {
      method: "POST", headers: { ...auth, "Content-Type": "application/json" },
      body: JSON.stringify({ method: "GET", tenant, namespace: "files",
                             key: "from browser.txt", expires_in: 60 }),
    });
    const url = (await signed.json()).url;
    const shared = await fetch(api + url);
    out.shared = { status: shared.status, body: await shared.text() };
    const refused = await fetch(path);
    out.refused = { status: refused.status, body: await refused.json() };
  } catch (error) {
    out.error = String(error);
  }
  return out;
}
"""


def test_an_allowed_origin_calls_the_api_and_reads_the_exposed_headers(
    server: Server, browser: Any, origins: tuple[str, str]
) -> None:
    tenant = unique_name()
    page = browser.new_page()
    try:
        page.goto(origins[0] + "/")
        out = page.evaluate(_CALLS, [server.url, server.admin_key, tenant])
    finally:
        page.close()
    assert "error" not in out, out
    assert out["put"]["status"] == 201
    assert out["put"]["etag"].startswith('"sha256:')
    assert out["put"]["location"] == f"/v1/objects/{out['put']['body']['id']}"
    assert out["get"] == {
        "status": 206,
        "body": "hello",
        "range": "bytes 0-4/25",
        "id": out["put"]["body"]["id"],
        "storageClass": "cold",
        "requestId": out["get"]["requestId"],
    }
    assert out["get"]["requestId"]
    assert out["shared"] == {"status": 200, "body": "hello from another origin"}
    # An error is readable too: the page can tell the user why.
    assert out["refused"]["status"] == 401
    assert out["refused"]["body"]["error"]["code"] == "Unauthorized"


def test_a_disallowed_origin_reads_nothing(
    server: Server, browser: Any, origins: tuple[str, str]
) -> None:
    tenant = unique_name()
    page = browser.new_page()
    try:
        page.goto(origins[1] + "/")
        out = page.evaluate(_CALLS, [server.url, server.admin_key, tenant])
    finally:
        page.close()
    assert "put" not in out
    assert out["error"].startswith("TypeError"), out  # fetch refused by the browser
    # The preflight was refused, so the PUT was never sent: nothing stored.
    listed = server.client.get(
        "/v1/objects",
        params={"tenant": tenant, "namespace": "files"},
        headers=server.admin_headers(),
    )
    assert listed.json()["items"] == []
