"""The web console in a real headless chromium against a real server (SPEC §8.7)."""

from __future__ import annotations

import hashlib
import http.server
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from e2e.prometheus_text import parse_samples, value
from e2e.support import unique_name
from juststorage.testing import Server, free_port, start, wait_until

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
BIG_BYTES = 100 * MIB
PART_BYTES = 8 * MIB  # upload.js PART_BYTES
SCOPES = ["objects:read", "objects:write", "objects:delete", "usage:read"]
PRICE_HOT = 100.0  # per GB-month: large enough that the test's bytes cost cents
PRICE_COLD = 20.0
# JUSTSTORAGE_CONSOLE_SCREENSHOTS=docs/console keeps the screenshots of docs/console.md.
SCREENSHOTS = os.environ.get("JUSTSTORAGE_CONSOLE_SCREENSHOTS")


class _BlankPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the handler's name)
        body = b"<!DOCTYPE html><title>another origin</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def other_origin() -> Iterator[int]:
    """The port of a page on another origin (http://127.0.0.1:<port>), for CORS."""
    page_server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _BlankPage)
    thread = threading.Thread(target=page_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield page_server.server_address[1]
    finally:
        page_server.shutdown()
        page_server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, other_origin: int) -> Iterator[Server]:
    settings = {
        "JUSTSTORAGE_PRICE_HOT_GB_MONTH": str(PRICE_HOT),
        "JUSTSTORAGE_PRICE_COLD_GB_MONTH": str(PRICE_COLD),
        "JUSTSTORAGE_CORS_ORIGINS": f"http://127.0.0.1:{other_origin}",
    }
    running = start(tmp_path_factory.mktemp("console-server"), settings)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def tenant() -> str:
    return unique_name()


@pytest.fixture(scope="module")
def key(server: Server, tenant: str) -> str:
    created: str = server.create_key([tenant], SCOPES)["key"]
    return created


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 820})
    try:
        yield context.new_page()
    finally:
        context.close()


def put_requests(server: Server) -> float:
    """PUT requests the server has answered, from /metrics."""
    text = server.client.get("/metrics").text
    return value(parse_samples(text), "just_storage_requests_total", method="PUT")


def shot(page: Any, name: str, tmp_path: Path) -> None:
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))


def sign_in(page: Any, server: Server, key: str, namespace: str, tenant: str) -> None:
    page.goto(server.url + "/")
    page.get_by_label("API key or JWT").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#app").wait_for()
    assert page.locator("#tenant").input_value() == tenant
    page.get_by_label("Namespace", exact=True).fill(namespace)
    page.get_by_role("button", name="Open").click()
    page.locator("#crumbs [aria-current]").wait_for()


def drop_file(page: Any, path: Path) -> None:
    """Drag `path` onto the drop zone: a real File in a DataTransfer, and the
    dragenter/dragover/drop events a user's drop fires."""
    page.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'file';"
        " i.id = 'test-drag-source'; i.hidden = true; document.body.append(i); }"
    )
    page.set_input_files("#test-drag-source", str(path))
    page.evaluate(
        """() => {
          const source = document.getElementById('test-drag-source');
          const data = new DataTransfer();
          for (const file of source.files) data.items.add(file);
          source.remove();
          const zone = document.getElementById('drop');
          for (const type of ['dragenter', 'dragover', 'drop']) {
            const init = {dataTransfer: data, bubbles: true, cancelable: true};
            zone.dispatchEvent(new DragEvent(type, init));
          }
        }"""
    )


def test_console_pages_are_served_with_a_strict_policy(server: Server) -> None:
    root = server.client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    for path in ("/console/", "/console/app.js", "/console/console.css"):
        response = server.client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert "object-src 'none'" in policy and "base-uri 'none'" in policy
    page = server.client.get("/console/").text
    assert (
        "<script>" not in page
        and "style=" not in page
        and "http" not in page.lower().replace("http://www.w3.org", "")
    )
    for path in ("/console/../config.py", "/console/%2e%2e/app.py", "/console/api.py"):
        assert server.client.get(path).status_code == 404, path


def test_sign_in_keeps_the_token_in_session_storage_only(
    page: Any, server: Server, key: str, tenant: str, tmp_path: Path
) -> None:
    page.goto(server.url + "/console/")
    shot(page, "sign-in", tmp_path)
    page.get_by_label("API key or JWT").fill("jsk_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "credential was not accepted" in alert.inner_text()
    assert page.locator("#signin").is_visible()
    sign_in(page, server, key, unique_name("n"), tenant)
    assert page.evaluate("() => sessionStorage.getItem('juststorage.token')") == key
    assert page.evaluate("() => localStorage.length") == 0
    assert page.context.cookies() == []
    assert page.evaluate("() => document.cookie") == ""
    # A credential that stops working returns the tab to sign-in, with the reason.
    page.evaluate("() => sessionStorage.setItem('juststorage.token', 'jsk_revoked')")
    page.reload()
    page.locator("#signin").wait_for()
    assert "credential was not accepted" in page.get_by_role("alert").inner_text()
    assert page.evaluate("() => sessionStorage.getItem('juststorage.token')") is None


def test_a_key_for_every_tenant_types_the_tenant(page: Any, server: Server) -> None:
    tenant, namespace = unique_name(), unique_name("n")
    headers = {**server.admin_headers(), "X-Tenant": tenant, "X-Namespace": namespace}
    response = server.client.post(
        "/v1/objects", headers={**headers, "X-Key": "a.txt"}, content=b"a"
    )
    assert response.status_code == 201
    page.goto(server.url + "/console/")
    page.get_by_label("API key or JWT").fill(server.admin_key)
    page.get_by_role("button", name="Sign in").click()
    typed = page.get_by_label("Tenant name")
    typed.wait_for()
    assert page.locator("#tenant").is_hidden()
    typed.fill(tenant)
    page.get_by_label("Namespace", exact=True).fill(namespace)
    page.get_by_role("button", name="Open").click()
    page.locator('#rows tr[data-key="a.txt"]').wait_for()
    # A name the API refuses is explained, not shown as an empty folder.
    typed.fill("Not A Tenant")
    page.get_by_role("button", name="Open").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "refused as malformed" in alert.inner_text()


def test_big_upload_by_drag_and_drop_goes_in_parallel_parts(
    page: Any, server: Server, key: str, tenant: str, tmp_path: Path
) -> None:
    namespace = unique_name("n")
    small = tmp_path / "notes.txt"
    small.write_text("hello console\n")
    big = tmp_path / "model.bin"
    big.write_bytes(os.urandom(BIG_BYTES))
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    sign_in(page, server, key, namespace, tenant)

    # A folder is created by uploading into it.
    page.get_by_role("button", name="New folder").click()
    page.get_by_label("Folder name").fill("docs")
    page.get_by_role("button", name="Open folder").click()
    drop_file(page, small)
    page.locator('#uploads li[data-key="docs/notes.txt"][data-state="done"]').wait_for()
    page.locator('#rows tr[data-key="docs/notes.txt"]').wait_for()
    page.locator("#crumbs button").first.click()
    page.locator('#rows tr.folder[data-prefix="docs/"]').wait_for()

    page.get_by_role("button", name="New folder").click()
    page.get_by_label("Folder name").fill("models")
    page.get_by_role("button", name="Open folder").click()
    parts: list[str] = []
    page.on("request", lambda r: parts.append(r.url) if "/parts/" in r.url else None)
    puts_before = put_requests(server)
    drop_file(page, big)
    progress = page.locator('#uploads li[data-key="models/model.bin"]')
    page.locator('#uploads li[data-key="models/model.bin"][data-parts]').wait_for()
    shot(page, "upload-progress", tmp_path)
    page.locator('#uploads li[data-key="models/model.bin"][data-state="done"]').wait_for(
        timeout=120_000
    )
    expected_parts = -(-BIG_BYTES // PART_BYTES)
    assert progress.get_attribute("data-parts") == str(expected_parts)
    assert len({re.sub(r".*/parts/", "", url) for url in parts}) == expected_parts
    # The server saw a multipart session with every part, completed into the object.
    upload_id = re.search(r"/v1/uploads/([^/]+)/parts/", parts[0]).group(1)  # type: ignore[union-attr]
    auth = {"Authorization": f"Bearer {key}"}
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert session["state"] == "completed", session
    assert session["key"] == "models/model.bin", session
    puts = put_requests(server)
    assert puts - puts_before >= expected_parts

    row = page.locator('#rows tr[data-key="models/model.bin"]')
    row.wait_for()
    assert "100.0 MiB" in row.inner_text()
    for name, body in (("README.md", b"# models\n"), ("config.json", b'{"layers": 32}')):
        headers = {**auth, "X-Tenant": tenant, "X-Namespace": namespace, "X-Key": name}
        assert server.client.post("/v1/objects", headers=headers, content=body).status_code == 201
    page.locator("#crumbs button").first.click()
    page.locator('#rows tr[data-key="README.md"]').wait_for()
    page.locator('#rows tr.folder[data-prefix="models/"]').wait_for()
    shot(page, "browser-folders", tmp_path)

    # Details, then the download compared by SHA-256.
    page.locator('#rows tr.folder[data-prefix="models/"] button').click()
    row.get_by_role("button").click()
    facts = page.locator("#facts")
    facts.get_by_text("sha256:" + digest).wait_for()
    assert "hot" in facts.inner_text() and "application/octet-stream" in facts.inner_text()
    # The versions come from their own request, after the facts.
    page.locator("#versions tr").first.wait_for()
    assert page.locator("#versions tr").count() == 1
    shot(page, "object-details", tmp_path)
    with page.expect_download(timeout=120_000) as download_info:
        page.get_by_role("button", name="Download").click()
    saved = download_info.value.path()
    assert hashlib.sha256(Path(saved).read_bytes()).hexdigest() == digest

    # Delete, after the confirmation dialog.
    page.get_by_role("button", name="Delete all versions").click()
    dialog = page.locator("#confirm")
    dialog.wait_for()
    assert "models/model.bin" in dialog.inner_text()
    dialog.get_by_role("button", name="Delete").click()
    row.wait_for(state="detached")
    path = f"/v1/objects/by-key/{namespace}/{tenant}/models/model.bin"
    gone = server.client.get(path, headers=auth)
    assert gone.status_code == 404


def test_paging_and_prefix_search(page: Any, server: Server, key: str, tenant: str) -> None:
    namespace = unique_name("n")
    auth = {"Authorization": f"Bearer {key}", "X-Tenant": tenant, "X-Namespace": namespace}
    names = [f"item-{n:03d}" for n in range(60)] + ["other.txt"]  # 61: two pages of 50
    for name in names:
        response = server.client.post("/v1/objects", headers={**auth, "X-Key": name}, content=b"x")
        assert response.status_code == 201
    # The namespace is offered after sign-in (GET /v1/namespaces) and opens on a click.
    page.goto(server.url + "/console/")
    page.get_by_label("API key or JWT").fill(key)
    page.get_by_role("button", name="Sign in").click()
    picks = page.get_by_role("navigation", name="Namespaces of the tenant")
    picks.get_by_role("button", name=namespace).click()
    rows = page.locator("#rows tr.object")
    rows.nth(49).wait_for()
    assert page.get_by_label("Namespace", exact=True).input_value() == namespace
    assert rows.count() == 50
    assert page.get_by_role("button", name="Previous page").is_disabled()
    page.get_by_role("button", name="Next page").click()
    page.locator('#rows tr[data-key="other.txt"]').wait_for()
    assert [r.get_attribute("data-key") for r in rows.all()] == names[50:]
    assert page.get_by_role("button", name="Next page").is_disabled()
    page.get_by_role("button", name="Previous page").click()
    page.locator('#rows tr[data-key="item-000"]').wait_for()
    page.get_by_label("Search by key prefix in this folder").fill("item-05")
    page.locator('#rows tr[data-key="item-040"]').wait_for(state="detached")
    assert [r.get_attribute("data-key") for r in rows.all()] == names[50:60]


def test_cancelled_delete_keeps_the_object(
    page: Any, server: Server, key: str, tenant: str, tmp_path: Path
) -> None:
    namespace = unique_name("n")
    auth = {"Authorization": f"Bearer {key}"}
    headers = {**auth, "X-Tenant": tenant, "X-Namespace": namespace, "X-Key": "keep.txt"}
    assert server.client.post("/v1/objects", headers=headers, content=b"v1").status_code == 201
    assert server.client.post("/v1/objects", headers=headers, content=b"v22").status_code == 201
    sign_in(page, server, key, namespace, tenant)
    page.locator('#rows tr[data-key="keep.txt"] button').click()
    page.locator("#versions tr").nth(1).wait_for()
    assert page.locator("#versions tr").count() == 2
    page.get_by_role("button", name="Delete all versions").click()
    page.locator("#confirm").get_by_role("button", name="Cancel").click()
    assert page.locator('#rows tr[data-key="keep.txt"]').is_visible()
    path = f"/v1/objects/by-key/{namespace}/{tenant}/keep.txt"
    assert server.client.get(path, headers=auth).content == b"v22"


def test_a_key_that_looks_like_html_is_shown_as_text(
    page: Any, server: Server, key: str, tenant: str
) -> None:
    namespace = unique_name("n")
    name = '<img src=x onerror="window.pwned = 1">.txt'
    headers = {
        "Authorization": f"Bearer {key}",
        "X-Tenant": tenant,
        "X-Namespace": namespace,
        "X-Key": name,
    }
    assert server.client.post("/v1/objects", headers=headers, content=b"x").status_code == 201
    sign_in(page, server, key, namespace, tenant)
    row = page.locator("#rows tr.object")
    row.wait_for()
    assert row.get_by_role("button").inner_text() == name
    row.get_by_role("button").click()
    assert page.locator("#details-title").inner_text() == name
    assert page.locator("#rows img, #details img").count() == 0
    assert page.evaluate("() => window.pwned") is None


def test_usage_chart_shows_bytes_and_cost_per_class(
    page: Any, server: Server, tmp_path: Path
) -> None:
    tenant, namespace = unique_name(), unique_name("n")
    key = server.create_key([tenant], SCOPES)["key"]
    auth = {"Authorization": f"Bearer {key}"}
    sizes = {"hot": 300_000, "cold": 100_000}
    for storage_class, size in sizes.items():
        headers = {
            **auth,
            "X-Tenant": tenant,
            "X-Namespace": namespace,
            "X-Key": f"{storage_class}.bin",
            "X-Storage-Class": storage_class,
        }
        response = server.client.post("/v1/objects", headers=headers, content=os.urandom(size))
        assert response.status_code == 201
    # The first answer is a 429: the console waits Retry-After and asks again.
    throttled: list[str] = []

    def once_429(route: Any) -> None:
        if not throttled:
            throttled.append(route.request.url)
            route.fulfill(
                status=429,
                headers={"Retry-After": "1", "Content-Type": "application/json"},
                body='{"error": {"code": "TooManyRequests", "message": "slow down", '
                '"request_id": "r1"}}',
            )
        else:
            route.continue_()

    sign_in(page, server, key, namespace, tenant)
    page.route("**/v1/usage?*", once_429)
    page.get_by_role("tab", name="Usage and cost").click()
    page.locator("#chart svg").wait_for()
    assert throttled and page.get_by_role("alert").is_hidden()
    # 300 kB at 100 a GB-month, 100 kB at 20 (a cost below a cent: two digits).
    costs = {"hot": "$0.03", "cold": "$0.002"}
    for storage_class, size in sizes.items():
        bars = page.locator(f'#chart g.chart-row[data-class="{storage_class}"]')
        assert bars.count() == 2  # bytes and cost
        assert bars.nth(1).locator("text.chart-value").text_content() == costs[storage_class]
        cells = page.locator(f'#usage-rows tr[data-class="{storage_class}"] td').all_inner_texts()
        assert cells == ["1", f"{size / 1024:.1f} KiB", costs[storage_class]]
    summary = page.locator("#usage-summary").inner_text()
    assert "2 object versions, 390.6 KiB, $0.03 a month" in summary
    assert page.locator("#status").inner_text() == ""  # the wait message is gone
    widths = {
        c: float(
            page.locator(f'#chart g.chart-row[data-class="{c}"] rect').first.get_attribute("width")
        )
        for c in ("hot", "cold")
    }
    assert widths["hot"] > widths["cold"] > 0
    shot(page, "usage-chart", tmp_path)


ACTIVE_HTML = (
    b"<!DOCTYPE html><html><head><title>stored</title></head><body><script>"
    b"window.ran = 1; document.title = 'pwned'; fetch('/pwned-beacon');"
    b"localStorage.setItem('pwned', '1');</script></body></html>"
)
ACTIVE_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><title>stored</title>'
    b"<script>window.ran = 1; document.title = 'pwned'; fetch('/pwned-beacon');"
    b"localStorage.setItem('pwned', '1');</script></svg>"
)


class _NoPolicyPage(http.server.BaseHTTPRequestHandler):
    """The same active files with no CSP at all: the control that shows the test's
    check sees a script that runs."""

    def do_GET(self) -> None:  # noqa: N802 (the handler's name)
        files = {
            "/page.html": ("text/html", ACTIVE_HTML),
            "/pic.svg": ("image/svg+xml", ACTIVE_SVG),
        }
        content_type, body = files.get(self.path, ("text/plain", b""))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def ran_in(page: Any, url: str) -> dict[str, Any]:
    """Open `url` in `page` (it renders: `inline`) and say what its script did."""
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_timeout(300)  # time for a script's fetch to leave
    found: dict[str, Any] = page.evaluate(
        "() => ({ran: window.ran === 1, title: document.title, origin: self.origin})"
    )
    return found


def test_an_uploaded_html_object_does_not_run_when_opened(
    page: Any, server: Server, key: str, tenant: str
) -> None:
    """Opened inline with the credential (the one way the bytes render on the server's
    origin), a stored HTML page or SVG with a script stays inert: the sandbox CSP."""
    namespace = unique_name("n")
    control = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _NoPolicyPage)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    beacons: list[str] = []
    page.on("request", lambda r: beacons.append(r.url) if "pwned" in r.url else None)
    try:
        # Without the policy the same bytes run: the checks below can see a script.
        for name in ("page.html", "pic.svg"):
            unguarded = ran_in(page, f"http://127.0.0.1:{control.server_address[1]}/{name}")
            assert unguarded["ran"] and unguarded["title"] == "pwned", (name, unguarded)
            assert unguarded["origin"] == f"http://127.0.0.1:{control.server_address[1]}"
        assert len(beacons) == 2
    finally:
        control.shutdown()
        control.server_close()
    beacons.clear()

    sign_in(page, server, key, namespace, tenant)
    page.context.set_extra_http_headers({"Authorization": f"Bearer {key}", "X-Tenant": tenant})
    for name, content_type, body in (
        ("evil.html", "text/html", ACTIVE_HTML),
        ("evil.svg", "image/svg+xml", ACTIVE_SVG),
    ):
        headers = {
            "Authorization": f"Bearer {key}",
            "X-Tenant": tenant,
            "X-Namespace": namespace,
            "X-Key": name,
            "Content-Type": content_type,
        }
        created = server.client.post("/v1/objects", headers=headers, content=body)
        assert created.status_code == 201
        inline = f"{server.url}/v1/objects/{created.json()['id']}?disposition=inline"
        opened = ran_in(page, inline)
        assert not opened["ran"] and opened["title"] != "pwned", (name, opened)
        assert opened["origin"] == "null", (name, opened)  # sandboxed: an opaque origin
    page.context.set_extra_http_headers({})
    page.goto(server.url + "/console/")
    assert page.evaluate("() => localStorage.getItem('pwned')") is None
    assert beacons == []


def test_a_presigned_link_opens_in_a_fresh_context_without_a_token(
    browser: Any, page: Any, server: Server, key: str, tenant: str
) -> None:
    namespace = unique_name("n")
    body = os.urandom(200_000)
    headers = {
        "Authorization": f"Bearer {key}",
        "X-Tenant": tenant,
        "X-Namespace": namespace,
        "X-Key": "shared/weights.bin",
    }
    assert server.client.post("/v1/objects", headers=headers, content=body).status_code == 201
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, server, key, namespace, tenant)
    page.locator('#rows tr.folder[data-prefix="shared/"] button').click()
    page.locator('#rows tr[data-key="shared/weights.bin"] button').click()
    page.get_by_role("button", name="Copy presigned link").click()
    page.locator("#link-row").wait_for()
    link = page.locator("#link").input_value()
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    assert key not in link

    fresh = browser.new_context(accept_downloads=True)
    try:
        stranger = fresh.new_page()
        assert fresh.storage_state() == {"cookies": [], "origins": []}  # no credential
        with stranger.expect_download() as download_info:
            try:
                stranger.goto(link)
            except Exception as exc:  # an attachment: the navigation becomes a download
                assert "Download is starting" in str(exc)
        saved = Path(download_info.value.path()).read_bytes()
        assert hashlib.sha256(saved).digest() == hashlib.sha256(body).digest()
        # The same link with its signature changed opens nothing.
        tampered = re.sub(
            r"(sig(?:nature)?=)([0-9A-Za-z_-])",
            lambda m: m.group(1) + ("A" if m.group(2) != "A" else "B"),
            link,
        )
        assert tampered != link
        assert fresh.request.get(tampered).status == 403
    finally:
        fresh.close()


def test_cors_lets_an_allowed_origin_call_the_api_and_no_other(
    page: Any, server: Server, key: str, tenant: str, other_origin: int
) -> None:
    script = """async ([api, key, tenant]) => {
      try {
        const response = await fetch(api + '/v1/objects', {
          method: 'POST', body: 'from another origin',
          headers: {Authorization: 'Bearer ' + key, 'X-Tenant': tenant,
                    'X-Namespace': 'cors', 'X-Key': 'hello.txt', 'Content-Type': 'text/plain'},
        });
        return {status: response.status, etag: response.headers.get('ETag'),
                id: response.headers.get('X-Request-Id')};
      } catch (error) {
        return {error: String(error)};
      }
    }"""
    page.goto(f"http://127.0.0.1:{other_origin}/")
    allowed = page.evaluate(script, [server.url, key, tenant])
    assert allowed["status"] == 201, allowed
    assert allowed["etag"].startswith('"sha256:') and allowed["id"]
    # The same page on another host name is another origin, not in the list.
    page.goto(f"http://localhost:{other_origin}/")
    refused = page.evaluate(script, [server.url, key, tenant])
    assert "error" in refused and "Failed to fetch" in refused["error"], refused


def sign_in_as_admin(page: Any, server: Server, tenant: str, namespace: str) -> None:
    """The console with the bootstrap admin key (every tenant: the tenant is typed)."""
    page.goto(server.url + "/console/")
    page.get_by_label("API key or JWT").fill(server.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Tenant name").fill(tenant)
    page.get_by_label("Namespace", exact=True).fill(namespace)
    page.get_by_role("button", name="Open").click()
    page.locator("#crumbs [aria-current]").wait_for()


def delete_all_versions_in_console(page: Any, folders: list[str], key: str) -> None:
    """From the top folder, open each folder in turn, then the object `key`, and delete
    every version."""
    page.locator("#crumbs button").first.click()
    for prefix in folders:
        page.locator(f'#rows tr.folder[data-prefix="{prefix}"] button').click()
        page.locator(f'#crumbs [aria-current]:text-is("{prefix.split("/")[-2]}")').wait_for()
    row = page.locator(f'#rows tr.object[data-key="{key}"]')
    row.get_by_role("button").click()
    page.locator("#details-title").get_by_text(key, exact=True).wait_for()
    page.get_by_role("button", name="Delete all versions").click()
    page.locator("#confirm").get_by_role("button", name="Delete").click()
    page.get_by_text(f"Deleted {key}.", exact=True).wait_for()


def test_delete_all_versions_of_a_dotted_key_deletes_only_that_key(
    page: Any, server: Server
) -> None:
    """A key with `..` parts cannot steer the console's by-key DELETE to another path:
    not to another tenant's key, not to a sibling key."""
    acme, globex = unique_name(), unique_name()
    docs, models = unique_name("n"), unique_name("n")
    writer = server.create_key([acme], ["objects:write"])["key"]  # the attacker's key
    admin = server.admin_headers()
    victim = {**admin, "X-Tenant": globex, "X-Namespace": models, "X-Key": "victim"}
    assert server.client.post("/v1/objects", headers=victim, content=b"keep").status_code == 201
    planted = f"../../../by-key/{models}/{globex}/victim"
    headers = {"Authorization": f"Bearer {writer}", "X-Tenant": acme, "X-Namespace": docs}
    response = server.client.post(
        "/v1/objects", headers={**headers, "X-Key": planted}, content=b"junk"
    )
    assert response.status_code == 201

    sign_in_as_admin(page, server, acme, docs)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "DELETE" else None)
    folders = ["../", "../../", "../../../", "../../../by-key/", f"../../../by-key/{models}/"]
    folders.append(f"../../../by-key/{models}/{globex}/")
    delete_all_versions_in_console(page, folders, planted)

    by_key = "/v1/objects/by-key/{}/{}/{}"
    kept = server.client.get(by_key.format(models, globex, "victim"), headers=admin)
    assert kept.status_code == 200 and kept.content == b"keep"
    gone = server.client.get(by_key.format(docs, acme, quote(planted, safe="")), headers=admin)
    assert gone.status_code == 404
    assert sent == [server.url + by_key.format(docs, acme, quote(planted, safe=""))]


def test_delete_all_versions_of_dot_keys_leaves_their_neighbours(page: Any, server: Server) -> None:
    """`./weights.bin` is not `weights.bin`; the keys `.` and `..` (no browser URL can
    name them by key) are deleted version by version."""
    tenant, namespace = unique_name(), unique_name("n")
    admin = server.admin_headers()
    headers = {**admin, "X-Tenant": tenant, "X-Namespace": namespace}
    for name, bodies in (("weights.bin", [b"w"]), ("./weights.bin", [b"d"]), (".", [b"1", b"2"])):
        for body in bodies:
            response = server.client.post(
                "/v1/objects", headers={**headers, "X-Key": name}, content=body
            )
            assert response.status_code == 201
    assert (
        server.client.post(
            "/v1/objects", headers={**headers, "X-Key": ".."}, content=b"up"
        ).status_code
        == 201
    )

    def stored(name: str) -> int:
        path = f"/v1/objects/by-key/{namespace}/{tenant}/{quote(name, safe='')}"
        if name in (".", ".."):  # listed instead: a by-key URL would lose the dots
            page_ = server.client.get(
                "/v1/objects",
                params={"tenant": tenant, "namespace": namespace, "prefix": name},
                headers=admin,
            ).json()
            return 200 if any(i["key"] == name for i in page_["items"]) else 404
        return server.client.get(path, headers=admin).status_code

    sign_in_as_admin(page, server, tenant, namespace)
    delete_all_versions_in_console(page, ["./"], "./weights.bin")
    assert stored("./weights.bin") == 404 and stored("weights.bin") == 200
    delete_all_versions_in_console(page, [], ".")
    assert stored(".") == 404
    assert stored("..") == 200 and stored("weights.bin") == 200
    delete_all_versions_in_console(page, [], "..")
    assert stored("..") == 404 and stored("weights.bin") == 200


MULTIPART_BYTES = 40 * MIB  # five parts of PART_BYTES: more than the four in parallel


def multipart_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(MULTIPART_BYTES))
    return path


def session_of(server: Server, key: str, part_urls: list[str]) -> dict[str, Any]:
    """The server's view of the upload session the part URLs belong to."""
    upload_id = re.search(r"/v1/uploads/([^/]+)/parts/", part_urls[0]).group(1)  # type: ignore[union-attr]
    response = server.client.get(
        f"/v1/uploads/{upload_id}", headers={"Authorization": f"Bearer {key}"}
    )
    answer: dict[str, Any] = response.json()
    return answer if response.status_code == 200 else {"state": f"HTTP {response.status_code}"}


# Logs, in the page's own order, when each part request is begun and ends and when
# the abort (DELETE /v1/uploads/{id}) is sent: a listener added in open() runs
# before the console's own onload/onerror. Parts other than 1 go out only once part
# 1 has failed, so they are surely in flight when the console learns of it.
UPLOAD_LOG = """
window.uploadLog = [];
const open = XMLHttpRequest.prototype.open;
XMLHttpRequest.prototype.open = function (method, url, ...rest) {
  const part = String(url).match(/[/]parts[/](\\d+)$/);
  if (part) {
    this.partNumber = part[1];
    window.uploadLog.push('start ' + part[1]);
    for (const type of ['load', 'error', 'abort', 'timeout']) {
      this.addEventListener(type, () => window.uploadLog.push('end ' + part[1]));
    }
  }
  return open.call(this, method, url, ...rest);
};
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (body) {
  const go = () => send.call(this, body);
  const later = () => (window.uploadLog.includes('end 1') ? go() : setTimeout(later, 20));
  if (this.partNumber && this.partNumber !== '1') later();
  else go();
};
const fetched = window.fetch;
window.fetch = function (url, init) {
  if (init && init.method === 'DELETE' && String(url).includes('/v1/uploads/')) {
    window.uploadLog.push('abort');
  }
  return fetched.call(this, url, init);
};
"""


def test_a_failed_part_stops_the_other_parts_before_the_abort(
    page: Any, server: Server, key: str, tenant: str, tmp_path: Path
) -> None:
    big = multipart_file(tmp_path)
    part_urls: list[str] = []
    page.on("request", lambda r: part_urls.append(r.url) if "/parts/" in r.url else None)
    page.add_init_script(UPLOAD_LOG)
    page.route("**/v1/uploads/*/parts/1", lambda route: route.abort("connectionreset"))
    sign_in(page, server, key, unique_name("n"), tenant)
    drop_file(page, big)
    page.locator('#uploads li[data-key="big.bin"][data-state="failed"]').wait_for(timeout=60_000)
    log: list[str] = page.evaluate("() => window.uploadLog")
    assert wait_until(lambda: "abort" in page.evaluate("() => window.uploadLog"), 10), log
    log = page.evaluate("() => window.uploadLog")
    assert sorted(e for e in log if e.startswith("start")) == [f"start {n}" for n in "1234"], log
    assert log[-1] == "abort", log  # after every part in flight ended; part 5 never begun
    assert sorted(e for e in log if e.startswith("end")) == [f"end {n}" for n in "1234"], log
    assert wait_until(lambda: session_of(server, key, part_urls)["state"] != "open", 10)


def test_a_part_refused_401_still_aborts_the_session(
    page: Any, server: Server, key: str, tenant: str, tmp_path: Path
) -> None:
    """The 401 signs the tab out (the token is cleared); the abort still goes out
    with the credential the upload began with, so no parts stay on the quota."""
    big = multipart_file(tmp_path)
    part_urls: list[str] = []
    page.on("request", lambda r: part_urls.append(r.url) if "/parts/" in r.url else None)
    page.route(
        "**/v1/uploads/*/parts/1",
        lambda route: route.fulfill(
            status=401,
            headers={"Content-Type": "application/json"},
            body='{"error": {"code": "Unauthorized", "message": "token expired", '
            '"request_id": "r1"}}',
        ),
    )
    sign_in(page, server, key, unique_name("n"), tenant)
    drop_file(page, big)
    page.locator("#signin").wait_for(timeout=60_000)
    assert wait_until(lambda: session_of(server, key, part_urls)["state"] != "open", 20), (
        session_of(server, key, part_urls)
    )


def test_a_lost_answer_to_complete_is_asked_again(
    page: Any, server: Server, key: str, tenant: str, tmp_path: Path
) -> None:
    """The server completed the upload but the answer never arrived: the console asks
    again (a completed session answers 200 with the object) instead of failing."""
    big = multipart_file(tmp_path)
    lost: list[int] = []

    def lose_first_answer(route: Any) -> None:
        if lost:
            route.continue_()
            return
        lost.append(route.fetch().status)  # the server completes the session
        route.abort("connectionreset")

    page.route("**/v1/uploads/*/complete", lose_first_answer)
    namespace = unique_name("n")
    sign_in(page, server, key, namespace, tenant)
    drop_file(page, big)
    row = page.locator('#uploads li[data-key="big.bin"]')
    page.locator('#uploads li[data-key="big.bin"]:not([data-state="uploading"])').wait_for(
        timeout=60_000
    )
    assert lost == [201]
    assert row.get_attribute("data-state") == "done", row.inner_text()
    path = f"/v1/objects/by-key/{namespace}/{tenant}/big.bin"
    stored = server.client.get(path, headers={"Authorization": f"Bearer {key}"})
    assert stored.status_code == 200 and stored.headers["x-object-id"] == row.get_attribute(
        "data-id"
    )
    assert hashlib.sha256(stored.content).digest() == hashlib.sha256(big.read_bytes()).digest()


def test_parts_grow_so_that_any_file_fits_in_ten_thousand(page: Any, server: Server) -> None:
    """8 MiB parts reach the 10000-part ceiling at about 78 GiB; a larger file gets
    larger parts instead of failing after its bytes were sent."""
    page.goto(server.url + "/console/")
    sizes = [0, 100 * MIB, 78 * 1024 * MIB, 80 * 1024 * MIB, 5 * 1024 * 1024 * MIB + 1]
    answers = page.evaluate(
        """async (sizes) => {
          const upload = await import('/console/upload.js');
          return sizes.map((size) => upload.partBytesFor(size));
        }""",
        sizes,
    )
    assert answers[:3] == [PART_BYTES, PART_BYTES, PART_BYTES]
    for size, part in zip(sizes, answers, strict=True):
        assert part % MIB == 0 and part >= PART_BYTES
        assert -(-size // part) <= 10000, (size, part)
    assert answers[3] > PART_BYTES
