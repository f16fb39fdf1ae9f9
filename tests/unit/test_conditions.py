from __future__ import annotations

import pytest

from juststorage.domain.conditions import ByteRange, WritePrecondition, etag_matches, parse_range
from juststorage.domain.errors import BadRequest, PreconditionFailed, RangeNotSatisfiable
from juststorage.domain.model import ContentHash

A = ContentHash("a" * 64)
B = ContentHash("b" * 64)
HUGE = "9" * 30


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, (0, 0)),
        ("bytes=0-9", 10, (0, 9)),
        ("bytes=2-5", 10, (2, 5)),
        ("bytes=5-", 10, (5, 9)),
        ("bytes=9-", 10, (9, 9)),
        ("bytes=0-100", 10, (0, 9)),  # last past the end is clamped
        ("bytes=-3", 10, (7, 9)),  # suffix: the last 3 bytes
        ("bytes=-10", 10, (0, 9)),
        ("bytes=-100", 10, (0, 9)),  # suffix longer than the object: all of it
        (" bytes=1-2 ", 10, (1, 2)),
        ("bytes= 1 - 2", 10, (1, 2)),
        (f"bytes=0-{HUGE}", 10, (0, 9)),  # huge last-pos: the rest (RFC 9110 §14.1.2)
        (f"bytes=-{HUGE}", 10, (0, 9)),  # huge suffix: the whole object
        (f"bytes=3-{'0' * 25}7", 10, (3, 7)),  # leading zeros are still a small number
    ],
)
def test_satisfiable_ranges(header: str, size: int, expected: tuple[int, int]) -> None:
    byte_range = parse_range(header, size)
    assert byte_range == ByteRange(*expected)
    assert byte_range.length == expected[1] - expected[0] + 1
    assert byte_range.content_range(size) == f"bytes {expected[0]}-{expected[1]}/{size}"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "bytes=",
        "bytes=-",
        "items=0-1",
        "bytes 0-1",
        "bytes=a-b",
        "bytes=1-2-3",
        "bytes=--1",
        "bytes=5-3",  # last before first: invalid, so ignored
        "bytes=0x1-2",
        "bytes=١-٢",  # non-ASCII digits
        "bytes=+1-2",
    ],
)
def test_unparseable_ranges_are_ignored(header: str | None) -> None:
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(
    ("header", "size"),
    [
        ("bytes=10-", 10),
        ("bytes=10-20", 10),
        ("bytes=0-", 0),
        ("bytes=-1", 0),
        ("bytes=-0", 10),
        ("bytes=0-1,3-4", 10),  # several ranges: not supported
        ("bytes=0-1, 5-", 10),
        (f"bytes={HUGE}-", 10),
        (f"bytes={HUGE}-{HUGE}9", 10),
    ],
)
def test_unsatisfiable_ranges_are_416_with_the_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.size_bytes == size


def test_a_number_too_long_for_int_is_handled() -> None:
    digits = "1" * 5000  # past Python's int-from-str digit limit
    assert parse_range(f"bytes=0-{digits}", 10) == ByteRange(0, 9)
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={digits}-", 10)


# --- conditional uploads --------------------------------------------------------------


def test_no_precondition_headers_allow_any_write() -> None:
    precondition = WritePrecondition.from_headers(None, None)
    assert precondition == WritePrecondition()
    precondition.check(None)
    precondition.check(A)


@pytest.mark.parametrize("header", ["*", " * "])
def test_if_none_match_star_is_create_only(header: str) -> None:
    precondition = WritePrecondition.from_headers(header, None)
    assert precondition.create_only
    precondition.check(None)
    with pytest.raises(PreconditionFailed):
        precondition.check(A)


@pytest.mark.parametrize(
    "header", [f'"sha256:{A.hex}"', f'"{A.hex}"', f' "SHA256:{A.hex.upper()}" ']
)
def test_if_match_replaces_only_the_named_version(header: str) -> None:
    precondition = WritePrecondition.from_headers(None, header)
    assert precondition.expected == A
    precondition.check(A)
    with pytest.raises(PreconditionFailed):
        precondition.check(B)
    with pytest.raises(PreconditionFailed):
        precondition.check(None)  # no committed version: 412 too


@pytest.mark.parametrize(
    ("if_none_match", "if_match"),
    [
        (A.etag, None),  # upload accepts only If-None-Match: *
        ("", None),
        (None, f"W/{A.etag}"),
        (None, f"sha256:{A.hex}"),  # unquoted
        (None, '"sha256:nothex"'),
        (None, '"'),
        (None, f"{A.etag}, {B.etag}"),
        ("*", A.etag),  # cannot be combined
    ],
)
def test_malformed_precondition_headers_are_bad_requests(
    if_none_match: str | None, if_match: str | None
) -> None:
    with pytest.raises(BadRequest):
        WritePrecondition.from_headers(if_none_match, if_match)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        (A.etag, True),
        (f"W/{A.etag}", True),  # weak comparison for If-None-Match
        (f"{B.etag}, {A.etag}", True),
        (f"{B.etag},{A.etag}", True),
        ("*", True),
        (B.etag, False),
        (f"sha256:{A.hex}", False),  # unquoted is not the ETag
        (f'"{A.hex}"', False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, A) is matches


def test_only_if_none_match_or_if_match_make_a_write_conditional() -> None:
    assert not WritePrecondition().is_conditional
    assert WritePrecondition.from_headers("*", None).is_conditional
    assert WritePrecondition.from_headers(None, f'"sha256:{"a" * 64}"').is_conditional
