"""Percent-decoding of keys: once, strictly (SPEC §2)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from juststorage.api.parsing import by_key_params, key_header, strict_unquote_to_bytes
from juststorage.domain.errors import BadRequest


def _request(
    path: str, raw_path: bytes | None = None, headers: list[tuple[bytes, bytes]] | None = None
) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "headers": headers or [],
        "query_string": b"",
    }
    if raw_path is not None:
        scope["raw_path"] = raw_path
    return Request(scope)


@pytest.mark.parametrize("text", ["abc%", "%zz", "%4", "a%4", "%%41", "%g0", "50%"])
def test_a_percent_without_two_hex_digits_is_bad_request(text: str) -> None:
    with pytest.raises(BadRequest, match="two hex digits"):
        strict_unquote_to_bytes(text)


@pytest.mark.parametrize(
    ("text", "decoded"),
    [
        ("caf%C3%A9", "café".encode()),
        ("%2541", b"%41"),
        ("a%2Fb", b"a/b"),
        ("%e2%82%ac", "€".encode()),
    ],
)
def test_well_formed_escapes_decode_once(text: str, decoded: bytes) -> None:
    assert strict_unquote_to_bytes(text) == decoded


def test_a_by_key_path_is_decoded_once_with_or_without_raw_path() -> None:
    sent = b"/v1/objects/by-key/n/t/%2541"  # the key is the literal text "%41"
    assert by_key_params(_request("/v1/objects/by-key/n/t/%41", sent))[2] == "%41"
    # A server that gives only the decoded path: not decoded a second time.
    assert by_key_params(_request("/v1/objects/by-key/n/t/%41"))[2] == "%41"
    assert by_key_params(_request("/v1/objects/by-key/n/t/50%"))[2] == "50%"
    with pytest.raises(BadRequest):
        by_key_params(_request("/v1/objects/by-key/n/t/50%", b"/v1/objects/by-key/n/t/50%"))


def test_a_malformed_percent_encoded_key_header_is_bad_request() -> None:
    headers = [(b"x-key", b"abc%zz"), (b"x-key-encoding", b"percent")]
    with pytest.raises(BadRequest):
        key_header(_request("/v1/objects", headers=headers))
