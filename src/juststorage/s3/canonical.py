"""The pieces of AWS Signature Version 4 that both request forms share.

Canonical request (S3's flavour: the path exactly as sent, never normalised or
encoded a second time), canonical query and headers, the signing key chain and the
string to sign. Pure functions of bytes and strings.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from urllib.parse import quote, unquote_to_bytes

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = "-_.~"  # with letters and digits, what quote() keeps by default


def uri_encode(raw: bytes, *, keep_slash: bool) -> str:
    """AWS's UriEncode: every byte but A-Z a-z 0-9 - _ . ~ (and `/` if kept) as %XX."""
    return quote(raw, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_uris(raw_path: bytes) -> list[str]:
    """The canonical URIs to try for a path as sent, most likely first.

    S3 signs the path as the client sent it (already percent-encoded, `//` and
    `.` segments kept). A client that left a character unencoded on the wire but
    encoded it when signing is served by the second form: the path decoded once
    and encoded by AWS's rules. Both name the same object once decoded.
    """
    path = raw_path or b"/"
    candidates = []
    if path.isascii():
        candidates.append(path.decode("ascii"))
    normalised = uri_encode(unquote_to_bytes(path), keep_slash=True)
    if normalised not in candidates:
        candidates.append(normalised)
    return candidates


def query_items(query_string: bytes) -> list[tuple[str, str | None]]:
    """The query's parameters in the order sent, each name and value decoded once
    (a value of None: the parameter had no `=`). The one decoding of a query that
    signatures and the operations both use, so what is signed is what is served.

    `+` is a space, as AWS S3 and MinIO read it (clients send a literal plus as
    %2B); `%XX` is the byte XX. Bytes that are not UTF-8 are kept as surrogates,
    so they encode back to the same bytes.
    """
    items: list[tuple[str, str | None]] = []
    for part in query_string.split(b"&"):
        if not part:
            continue
        name, sep, value = part.partition(b"=")
        items.append((_decode(name), _decode(value) if sep else None))
    return items


def query_pairs(query_string: bytes) -> list[tuple[str, str]]:
    """`query_items` with a missing value as the empty string."""
    return [(name, value or "") for name, value in query_items(query_string)]


def _decode(raw: bytes) -> str:
    return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8", "surrogateescape")


def canonical_query(pairs: Iterable[tuple[str, str]], *, without: str | None = None) -> str:
    """Sorted `name=value` pairs, each encoded by AWS's rules, `&`-joined."""
    encoded = sorted(
        (
            uri_encode(name.encode("utf-8", "surrogateescape"), keep_slash=False),
            uri_encode(value.encode("utf-8", "surrogateescape"), keep_slash=False),
        )
        for name, value in pairs
        if name != without
    )
    return "&".join(f"{name}={value}" for name, value in encoded)


def header_values(headers: Sequence[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """Header name (lower case) -> its values in the order sent (latin-1, as HTTP)."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return values


def canonical_headers(values: dict[str, list[str]], signed: Sequence[str], host: str) -> str:
    """`name:value\\n` for each signed header: values trimmed, inner runs of spaces
    made one, repeated headers joined with commas."""
    lines = []
    for name in signed:
        sent = values.get(name)
        if sent is None and name == "host":
            sent = [host]
        joined = ",".join(" ".join(v.split()) for v in sent or ())
        lines.append(f"{name}:{joined}\n")
    return "".join(lines)


def canonical_request(
    method: str, uri: str, query: str, headers: str, signed: Sequence[str], payload: str
) -> str:
    return "\n".join((method, uri, query, headers, ";".join(signed), payload))


def signing_key(secret: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")."""
    key = hmac.digest(("AWS4" + secret).encode("utf-8"), date.encode("ascii"), "sha256")
    for part in (region, service, TERMINATOR):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


def sign(key: bytes, text: str) -> str:
    """The lower-case hex HMAC-SHA256 of `text`."""
    return hmac.new(key, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def same_signature(expected: str, given: str) -> bool:
    """Constant-time comparison of two signatures (as ASCII text)."""
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii", "replace"))
