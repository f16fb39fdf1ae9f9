"""`juststorage put` of a large file asks the server by hash first (SPEC §8.3).

If the tenant already stores the file's content, the server commits the new
version without the bytes being sent; otherwise (404) `put` uploads as usual,
declaring the digest computed here, so the file is hashed once either way.

Why a threshold, `JUSTSTORAGE_CLIENT_BY_HASH_MIN_BYTES` (default 8 MiB): asking
costs one more request when the content is new, about what sending a small file
costs in the first place, so below it a knowledge base of many small files would
pay twice the round trips for little. From 8 MiB on, sending takes much longer
than that one round trip (8 MiB is ~70 ms at 1 Gbit/s, ~7 ms at 10 Gbit/s), and
hashing locally is cheaper still: `upload_file` reads and hashes the file before
sending anyway (to declare `X-Content-SHA256`), and that digest is reused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from juststorage.cli.errors import BadUsage

BY_HASH_MIN_BYTES = 8 * 1024 * 1024
_SETTING = "JUSTSTORAGE_CLIENT_BY_HASH_MIN_BYTES"
_READ_BYTES = 1024 * 1024


def by_hash_min_bytes(environ: Mapping[str, str] = os.environ) -> int:
    """The smallest file `put` asks about by hash (`JUSTSTORAGE_CLIENT_BY_HASH_MIN_BYTES`)."""
    raw = environ.get(_SETTING, "").strip()
    if not raw:
        return BY_HASH_MIN_BYTES
    if not raw.isascii() or not raw.isdigit():
        raise BadUsage(f"{_SETTING} must be a number of bytes, not {raw!r}")
    return int(raw)


def put_by_hash_first(client: Any, path: Path, options: dict[str, Any]) -> tuple[Any, str]:
    """Hash `path` and ask the server to commit it by hash: (the object, or None when
    the bytes must be sent; the file's SHA-256, for that upload to declare)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_BYTES):
            digest.update(chunk)
            size += len(chunk)
    sha256 = digest.hexdigest()
    return client.put_by_hash(sha256=sha256, size=size, **options), sha256
