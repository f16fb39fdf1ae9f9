from __future__ import annotations

import pytest

from juststorage.domain.errors import BadRequest
from juststorage.domain.model import (
    MAX_KEY_BYTES,
    ContentHash,
    Namespace,
    ObjectKey,
    ObjectState,
    StorageClass,
    TenantId,
    prefix_upper_bound,
)


@pytest.mark.parametrize("name", ["a", "0", "acme", "a-b_c", "9tenant", "a" * 63])
@pytest.mark.parametrize("kind", [TenantId, Namespace])
def test_valid_names_are_accepted(kind: type[str], name: str) -> None:
    assert kind(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "Acme", "-a", "_a", "a" * 64, "a.b", "a/b", "a b", "é", "a\n", "\na", "*"],
)
@pytest.mark.parametrize("kind", [TenantId, Namespace])
def test_invalid_names_are_bad_requests(kind: type[str], name: str) -> None:
    with pytest.raises(BadRequest):
        kind(name)


def test_name_errors_say_which_name() -> None:
    with pytest.raises(BadRequest, match="tenant"):
        TenantId("Bad")
    with pytest.raises(BadRequest, match="namespace"):
        Namespace("Bad")


@pytest.mark.parametrize(
    "key",
    [
        "a",
        "a/b/c",
        "/leading/and/trailing/",
        "with space",
        "é日本\U0001f600",
        "\u0080\u009f",  # C1 controls are not in the SPEC's list
        "x" * MAX_KEY_BYTES,
        "é" * (MAX_KEY_BYTES // 2),
        "\U0001f600" * (MAX_KEY_BYTES // 4),
    ],
)
def test_valid_keys_are_accepted(key: str) -> None:
    assert ObjectKey(key) == key
    assert ObjectKey.from_header_bytes(key.encode("utf-8")) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        "x" * (MAX_KEY_BYTES + 1),
        "é" * (MAX_KEY_BYTES // 2) + "x",  # 1025 bytes though only 513 characters
        "\U0001f600" * (MAX_KEY_BYTES // 4) + "x",
        "a\x00b",
        "a\x1fb",
        "\t",
        "line\nbreak",
        "del\x7f",
        "lone \ud800 surrogate",
    ],
)
def test_invalid_keys_are_bad_requests(key: str) -> None:
    with pytest.raises(BadRequest):
        ObjectKey(key)


def test_1024_byte_limit_counts_utf8_bytes() -> None:
    assert len(ObjectKey("é" * 512).encode("utf-8")) == 1024
    with pytest.raises(BadRequest, match="1025"):
        ObjectKey("é" * 512 + "a")


@pytest.mark.parametrize("raw", [b"\xff", b"abc\xc3", b"\xed\xa0\x80", b"\xc0\xaf"])
def test_non_utf8_header_bytes_are_bad_requests(raw: bytes) -> None:
    with pytest.raises(BadRequest, match="UTF-8"):
        ObjectKey.from_header_bytes(raw)


@pytest.mark.parametrize(
    ("prefix", "upper"),
    [
        ("", None),
        ("a", "b"),
        ("abc", "abd"),
        ("a/", "a0"),
        ("z", "{"),
        ("é", "ê"),
        ("a\U0010ffff", "b"),
        ("a\U0010ffff\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("\U0010ffff\U0010ffff", None),
        ("\ud7ff", "\ue000"),  # skips the surrogates, which UTF-8 cannot encode
        ("x\ud7ff", "x\ue000"),
        ("\uffff", "\U00010000"),
    ],
)
def test_prefix_upper_bound(prefix: str, upper: str | None) -> None:
    assert prefix_upper_bound(prefix) == upper


@pytest.mark.parametrize("prefix", ["a", "é", "a\U0010ffff", "\ud7ff", "\uffff", "k/"])
def test_prefix_upper_bound_is_above_every_extension_in_byte_order(prefix: str) -> None:
    upper = prefix_upper_bound(prefix)
    assert upper is not None
    for tail in ["", "\x00", "z", "\U0010ffff" * 3]:
        assert (prefix + tail).encode() < upper.encode("utf-8")
    assert prefix.encode() < upper.encode()


def test_state_transitions_follow_the_life_cycle() -> None:
    allowed = {(a, b) for a in ObjectState for b in ObjectState if a.can_become(b)}
    assert allowed == {
        (ObjectState.WRITING, ObjectState.COMMITTED),
        (ObjectState.WRITING, ObjectState.DELETED),
        (ObjectState.COMMITTED, ObjectState.DELETING),
        (ObjectState.DELETING, ObjectState.DELETED),
    }


def test_storage_class_parse() -> None:
    assert StorageClass.parse("hot") is StorageClass.HOT
    assert StorageClass.parse("cold") is StorageClass.COLD
    for raw in ["HOT", "warm", ""]:
        with pytest.raises(BadRequest):
            StorageClass.parse(raw)


def test_content_hash_parse_and_render() -> None:
    hexdigest = "ab" * 32
    for raw in [hexdigest, hexdigest.upper(), f"sha256:{hexdigest}", f" SHA256:{hexdigest} "]:
        assert ContentHash.parse(raw) == ContentHash(hexdigest)
    digest = ContentHash(hexdigest)
    assert digest.prefixed == f"sha256:{hexdigest}"
    assert digest.etag == f'"sha256:{hexdigest}"'
    for bad in ["", "ab" * 31, "zz" * 32, "ab" * 33, f"md5:{hexdigest}"]:
        with pytest.raises(BadRequest):
            ContentHash.parse(bad)
    with pytest.raises(BadRequest):
        ContentHash(hexdigest.upper())
