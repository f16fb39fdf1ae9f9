"""CORS for browsers (SPEC §8.6): which origins may call the API, and the headers
that tell a browser so. Applied by `api.middleware.RequestLayer`, only when
`JUSTSTORAGE_CORS_ORIGINS` is set."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

ALLOWED_METHODS = ("GET", "HEAD", "PUT", "POST", "DELETE")
# Every request header of the contract a browser would not send without asking.
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Range",
    "If-Match",
    "If-None-Match",
    "X-Tenant",
    "X-Namespace",
    "X-Key",
    "X-Key-Encoding",
    "X-Storage-Class",
    "X-Content-SHA256",
    "X-Content-Length",
    "X-Request-Id",
)
# Response headers a page's script may read (beyond the CORS-safelisted ones).
EXPOSED_HEADERS = (
    "ETag",
    "Location",
    "Content-Range",
    "Content-Length",
    "Content-Disposition",
    "Retry-After",
    "X-Object-Id",
    "X-Storage-Class",
    "X-Request-Id",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
PREFLIGHT_MAX_AGE_SECONDS = 600
_VARY = (b"vary", b"Origin")


def _joined(names: Iterable[str]) -> bytes:
    return ", ".join(names).encode("latin-1")


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """The allowed origins (lower-case `scheme://host[:port]`), or any with `*`."""

    origins: frozenset[str]

    @property
    def any_origin(self) -> bool:
        return "*" in self.origins

    def allows(self, origin: bytes) -> bool:
        if self.any_origin:
            return True
        try:
            return origin.decode("ascii").lower() in self.origins
        except UnicodeDecodeError:
            return False

    def response_headers(self, origin: bytes | None) -> list[tuple[bytes, bytes]]:
        """Added to every answer: `Vary: Origin` (the answer depends on it), and for an
        allowed origin the headers that let its page read the answer."""
        if origin is None or not self.allows(origin):
            return [_VARY]
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", _EXPOSED),
            _VARY,
        ]

    def preflight_headers(self, origin: bytes) -> list[tuple[bytes, bytes]]:
        """The answer to an allowed origin's preflight `OPTIONS` (204, no body)."""
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", _METHODS),
            (b"access-control-allow-headers", _HEADERS),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_SECONDS).encode("ascii")),
            _VARY,
            (b"content-length", b"0"),
        ]


_EXPOSED = _joined(EXPOSED_HEADERS)
_METHODS = _joined(ALLOWED_METHODS)
_HEADERS = _joined(ALLOWED_HEADERS)


def cors_policy(origins: frozenset[str]) -> CorsPolicy | None:
    """The policy of `JUSTSTORAGE_CORS_ORIGINS` (as `Settings.cors_origin_set`); None
    when no origin is allowed: no CORS headers at all."""
    return CorsPolicy(origins) if origins else None
