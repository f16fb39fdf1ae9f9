"""Text that may become a response header: latin-1, no control characters (tab
aside), bounded. uvicorn refuses anything else while the answer is being sent,
which would drop the connection instead of answering."""

from __future__ import annotations

import re

MAX_HEADER_VALUE_CHARS = 8192
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
# Separators and controls: what uvicorn refuses in a header name.
_NOT_TOKEN = re.compile('[\x00-\x20\x7f()<>@,;:\\\\"/\\[\\]?={}]')


def header_value(text: str) -> bytes | None:
    """`text` as a header value's bytes, or None when it cannot be one."""
    if len(text) > MAX_HEADER_VALUE_CHARS or _CONTROL.search(text):
        return None
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return None


def header_name(text: str) -> bytes | None:
    """`text` as a header name's bytes, or None when it cannot be one."""
    if not text or len(text) > 256 or _NOT_TOKEN.search(text) or not text.isascii():
        return None
    return text.encode("ascii")
