"""X-Accel-Mapping parsing and the internal URI a blob path maps to."""

from __future__ import annotations

import pytest

from juststorage.api.accel import mapping_for, parse_accel_mapping


def test_a_path_under_a_mapped_directory_gets_the_internal_prefix() -> None:
    mapping = parse_accel_mapping("/var/lib/js/=/_blobs/")
    assert mapping is not None
    assert mapping.uri_for("/var/lib/js/hot/sha256/ab/cd/abcd") == "/_blobs/hot/sha256/ab/cd/abcd"
    assert mapping.uri_for("/var/lib/other/hot/x") is None


def test_a_missing_trailing_slash_never_widens_the_directory() -> None:
    mapping = parse_accel_mapping("/data=/_blobs")
    assert mapping is not None
    assert mapping.uri_for("/data/hot/f") == "/_blobs/hot/f"
    assert mapping.uri_for("/database/hot/f") is None


def test_several_pairs_are_tried_in_order_and_odd_characters_are_escaped() -> None:
    mapping = parse_accel_mapping(" /hot/=/_h/ , /cold/=/_c/")
    assert mapping is not None
    assert mapping.uri_for("/cold/a b?c") == "/_c/a%20b%3Fc"
    assert mapping.uri_for("/hot/x") == "/_h/x"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "/data",  # no "="
        "data/=/_blobs/",  # relative directory
        "/data/=_blobs/",  # relative URI
        "/data/../etc/=/_blobs/",
        "/data/=/_blobs/./",
        "/da ta/=/_blobs/",
        "/data/=/_blobs/%2e%2e/",
        "/data/=/_blobs/?x",
        "/data/=/_b=lobs/",
        "/data/=/_blobs/\x7f",
        "/a/=/_a/, nonsense",  # one bad pair spoils the header
    ],
)
def test_a_malformed_mapping_is_no_mapping(header: str | None) -> None:
    assert parse_accel_mapping(header) is None


def test_more_pairs_than_the_limit_is_no_mapping() -> None:
    header = ", ".join(f"/d{n}/=/_u{n}/" for n in range(9))
    assert parse_accel_mapping(header) is None
    assert parse_accel_mapping(header.rpartition(",")[0]) is not None  # 8 pairs


@pytest.mark.parametrize(
    "conditional",
    ["range", "if-range", "if-match", "if-none-match", "if-modified-since", "if-unmodified-since"],
)
def test_a_request_with_a_range_or_a_conditional_is_never_handed_over(conditional: str) -> None:
    headers = {"x-accel-mapping": "/data/=/_blobs/"}
    assert mapping_for(headers) is not None
    assert mapping_for({**headers, conditional: "*"}) is None
