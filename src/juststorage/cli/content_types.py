"""The content type an upload stores when none is given: guessed from the file name.

Guessed from Python's built-in table only (`mimetypes.MimeTypes()` does not read
the machine's /etc/mime.types), so the same file gets the same type everywhere.
A compressed file is stored as its compression (`a.tar.gz` is `application/gzip`),
which is what its bytes are. No guess: None, and the server stores
`application/octet-stream`.
"""

from __future__ import annotations

import functools
import mimetypes

_COMPRESSION_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "compress": "application/x-compress",
    "br": "application/x-brotli",
}


@functools.cache
def _table() -> mimetypes.MimeTypes:
    return mimetypes.MimeTypes()


def guess_content_type(name: str) -> str | None:
    """The content type for a file or key named `name`, or None."""
    guessed, encoding = _table().guess_type(name, strict=False)
    if encoding is not None:
        return _COMPRESSION_TYPES.get(encoding)
    return guessed
