"""Handing whole-object downloads to a reverse proxy that sends files itself.

Behind nginx (deploy/nginx/juststorage.conf), the proxy names where it can read
the blob files in an `X-Accel-Mapping: <directory>/=<internal uri>/` request
header (the convention of Rack::Sendfile; several pairs separated by commas).
With `JUSTSTORAGE_ACCEL_REDIRECT=true` a whole, unconditional download of a blob
file under one of those directories is answered with the object's headers, an
empty body and `X-Accel-Redirect: <internal uri><rest of the path>`; nginx then
sends the file with sendfile(2), which Python's servers cannot. The server still
authenticates, authorises, looks the object up and decides 200 / 304 itself.

A request without the header (a client talking to the server directly, a health
check) gets the bytes from the server as usual. So does one with any
conditional header: nginx would judge it again, against the file's own mtime
and without the object's ETag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

HEADER = "x-accel-mapping"
_MAX_PAIRS = 8
# A request carrying any of these is never handed over: the server answers Range
# and If-None-Match itself (206 / 304), and nginx would judge the others again,
# against the file's mtime and without the object's ETag.
_KEPT_FROM_PROXY = (
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
)


@dataclass(frozen=True, slots=True)
class AccelMapping:
    """(directory, internal URI prefix) pairs, each ending in "/"."""

    pairs: tuple[tuple[str, str], ...]

    def uri_for(self, path: str) -> str | None:
        """The internal URI that serves the file at absolute `path`; None if unmapped."""
        for directory, prefix in self.pairs:
            if path.startswith(directory):
                return prefix + quote(path[len(directory) :])
        return None


def mapping_for(headers: Mapping[str, str]) -> AccelMapping | None:
    """The proxy's mapping for a request that it may be handed; None otherwise."""
    if any(name in headers for name in _KEPT_FROM_PROXY):
        return None
    return parse_accel_mapping(headers.get(HEADER))


def parse_accel_mapping(header: str | None) -> AccelMapping | None:
    """The mapping of an `X-Accel-Mapping` header; None if absent or not well formed.

    Both sides must be absolute, without `.` or `..` segments, and without
    characters a URI or header would need escaped (`,`, `=`, `%`, whitespace,
    controls); a trailing "/" is added where missing, so `/data=/x` maps
    `/data/…` and never `/database/…`.
    """
    if not header:
        return None
    items = header.split(",")
    if len(items) > _MAX_PAIRS:
        return None
    pairs: list[tuple[str, str]] = []
    for item in items:
        directory, sep, prefix = item.strip().partition("=")
        if not sep or not _clean_absolute(directory) or not _clean_absolute(prefix):
            return None
        pairs.append((_with_slash(directory), _with_slash(prefix)))
    return AccelMapping(tuple(pairs))


def _clean_absolute(path: str) -> bool:
    if not path.startswith("/") or any(c in path for c in "=%,?#\\") or not path.isprintable():
        return False
    if any(c.isspace() for c in path):
        return False
    return all(part not in (".", "..") for part in path.split("/"))


def _with_slash(path: str) -> str:
    return path if path.endswith("/") else path + "/"
