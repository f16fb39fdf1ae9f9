"""`/console/`: the web console, static files shipped in the package (`api/console/`).

Plain JavaScript modules, no build step and nothing from another host. The server
only hands out the files: the page itself calls the public `/v1` API with the
credential the user pasted (kept in the tab's `sessionStorage`). Every file is
answered with a strict Content-Security-Policy (no inline script or style, no eval,
nothing but this origin, no framing), `nosniff` and `no-referrer`; the files are
read once and named by an allow-list, so no path reaches the file system.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from juststorage.domain.errors import NotFound

CONSOLE_PATH = "/console/"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    # The files change with the server: revalidate with the ETag every time.
    "Cache-Control": "no-cache",
}


@functools.cache
def console_files() -> dict[str, tuple[bytes, str]]:
    """{file name: (bytes, content type)} of the console, read once from the package."""
    folder = resources.files("juststorage.api") / "console"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


def _answer(name: str, request: Request) -> Response:
    found = console_files().get(name)
    if found is None:
        raise NotFound("no such console file")
    body, content_type = found
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**_HEADERS, "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=content_type, headers=headers)


async def console_index(request: Request) -> Response:
    return _answer("index.html", request)


async def console_file(request: Request) -> Response:
    return _answer(request.path_params["name"], request)


async def to_console(request: Request) -> Response:
    """`/` and `/console`: a redirect to the console."""
    return RedirectResponse(CONSOLE_PATH, status_code=307, headers={"Cache-Control": "no-cache"})
