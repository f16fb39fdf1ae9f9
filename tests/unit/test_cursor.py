from __future__ import annotations

import base64
import json

import pytest

from juststorage.domain.cursor import ListCursor
from juststorage.domain.errors import BadRequest


@pytest.mark.parametrize(
    "cursor",
    [
        ListCursor("a", 1),
        ListCursor("models/é/日本/\U0001f600", 2**62),
        ListCursor('quote " and \\ backslash', 7),
        ListCursor("x" * 1024, 0),
        ListCursor.past("docs/"),  # past every key under a rolled-up prefix
        ListCursor.past("日本/\U0010ffff"),
    ],
)
def test_cursor_round_trips(cursor: ListCursor) -> None:
    token = cursor.encode()
    assert ListCursor.decode(token) == cursor
    assert token.isascii() and "=" not in token and "/" not in token and "+" not in token


def _token(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "not base64 at all",
        "é",
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
        _token({"key": "a", "seq": 1}),
        _token([""]),  # a common prefix is never empty
        _token([1]),
        _token(["a\u0000"]),
        _token(["a", 1, 2]),
        _token([1, 1]),
        _token(["a", "1"]),
        _token(["a", 1.5]),
        _token(["a", True]),
        _token(None),
        _token(["\ud800", 1]),  # a lone surrogate is not a key SQL can bind
        _token(["\ud800"]),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),  # deep nesting
    ],
)
def test_malformed_cursor_is_bad_request(token: str) -> None:
    with pytest.raises(BadRequest, match="malformed cursor"):
        ListCursor.decode(token)
