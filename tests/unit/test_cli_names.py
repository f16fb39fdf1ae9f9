"""Object names, local paths and the rules that join them (`cli.names`), and the
content type guessed from a file name."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from juststorage.cli.content_types import guess_content_type
from juststorage.cli.errors import BadUsage
from juststorage.cli.names import (
    Location,
    UnsafeKey,
    basename,
    download_path,
    key_for_file,
    key_for_upload,
    local_path_for,
    parse_location,
)


def test_a_location_parses_with_or_without_the_scheme() -> None:
    assert parse_location("js://acme/files/a/b.txt") == Location("acme", "files", "a/b.txt")
    assert parse_location("acme/files") == Location("acme", "files", "")
    assert parse_location("acme/files/docs").folder == "docs/"
    assert parse_location("acme/files/docs/").child("x/y") == Location("acme", "files", "docs/x/y")
    with pytest.raises(click.UsageError):
        parse_location("acme")


def test_put_names_the_key_like_cp_into_a_directory() -> None:
    file = Path("/data/report.pdf")
    assert key_for_upload(parse_location("acme/files/q1/"), file) == "q1/report.pdf"
    assert key_for_upload(parse_location("acme/files"), file) == "report.pdf"
    assert key_for_upload(parse_location("acme/files/exact"), file) == "exact"
    with pytest.raises(click.UsageError):
        key_for_upload(parse_location("acme/files/q1/"), None)  # stdin has no name


def test_get_writes_into_a_directory_under_the_key_basename(tmp_path: Path) -> None:
    assert download_path(str(tmp_path), "a.txt") == tmp_path / "a.txt"
    assert download_path(f"{tmp_path}/new/", "a.txt") == tmp_path / "new" / "a.txt"
    assert (tmp_path / "new").is_dir()
    assert download_path(str(tmp_path / "file.out"), "a.txt") == tmp_path / "file.out"
    assert download_path(None, "a.txt") == Path("a.txt")
    assert basename("docs/2025/a.txt") == "a.txt"
    for key in ("docs/", "docs/..", "."):
        with pytest.raises(BadUsage):
            basename(key)


@pytest.mark.parametrize(
    "key",
    ["../x", "a/../../x", "/etc/passwd", "a//b", "./x", "a/.", "", "a/", "a\0b"],
)
def test_keys_that_would_escape_the_destination_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(UnsafeKey):
        local_path_for(tmp_path, key)


def test_a_symbolic_link_inside_the_destination_cannot_lead_out(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(UnsafeKey):
        local_path_for(dest, "link/file.txt")
    assert local_path_for(dest, "sub/dir/file.txt") == dest / "sub" / "dir" / "file.txt"
    assert local_path_for(dest, "..a/b..") == dest / "..a" / "b.."  # names, not segments


def test_keys_from_files_use_slashes_relative_to_the_root(tmp_path: Path) -> None:
    assert key_for_file(tmp_path, tmp_path / "a" / "b" / "c.txt") == "a/b/c.txt"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "text/plain"),
        ("dir/data.json", "application/json"),
        ("site/index.html", "text/html"),
        ("backup.tar.gz", "application/gzip"),
        ("image.png", "image/png"),
        ("weights.safetensors", None),
        ("README", None),
    ],
)
def test_the_content_type_is_guessed_from_the_name(name: str, expected: str | None) -> None:
    assert guess_content_type(name) == expected
