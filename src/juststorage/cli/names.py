"""Where a transfer reads and writes: object names, local paths, and the rules
that join them.

An object or a prefix is named `TENANT/NAMESPACE[/KEY]`, optionally written
`js://TENANT/NAMESPACE/KEY`; `cp` and `sync` need the `js://` form to tell the
store from a local path. Keys made from files use `/` and are relative to the
tree's root. A key becomes a local path only when every segment is a plain name:
no `..`, `.` or empty segment and no leading `/`, so a download never writes
outside its destination directory, whatever keys the store holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click

from juststorage.cli.errors import BadUsage

SCHEME = "js://"


@dataclass(frozen=True, slots=True)
class Location:
    """A place in the store: a tenant's namespace and a key or prefix (may be "")."""

    tenant: str
    namespace: str
    key: str

    def __str__(self) -> str:
        return f"{self.tenant}/{self.namespace}/{self.key}"

    @property
    def folder(self) -> str:
        """The key as a folder prefix: "" or ending with "/"."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    def child(self, relative: str) -> Location:
        return Location(self.tenant, self.namespace, self.folder + relative)


def is_remote(text: str) -> bool:
    return text.startswith(SCHEME)


def parse_location(text: str) -> Location:
    """`TENANT/NAMESPACE[/KEY]`, with or without `js://`."""
    name = text.removeprefix(SCHEME)
    parts = name.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise click.UsageError(f"name a place in the store as TENANT/NAMESPACE[/KEY], not {text!r}")
    return Location(parts[0], parts[1], parts[2] if len(parts) == 3 else "")


def key_for_upload(location: Location, source: Path | None) -> str:
    """The key `put FILE NAME` stores: NAME's key, or the file's name under it when
    NAME names a namespace or a folder (`tenant/ns`, `tenant/ns/prefix/`)."""
    if location.key and not location.key.endswith("/"):
        return location.key
    if source is None:
        raise click.UsageError(f"name the KEY to store stdin under: {location}KEY")
    return location.key + source.name


def basename(key: str) -> str:
    """The file name a key downloads to: its last segment, if it is a plain name."""
    name = key.rsplit("/", 1)[-1]
    if not _plain(name):
        raise BadUsage(
            f"the key {key!r} has no file name to save as: name a DEST file (or -r for a folder)"
        )
    return name


def download_path(dest: str | None, name: str) -> Path:
    """Where `get` writes: DEST, or DEST/NAME when DEST is a directory or ends with
    a separator (created then), or NAME in the working directory."""
    if dest is None:
        return Path(name)
    if dest.endswith(("/", os.sep)) or Path(dest).is_dir():
        folder = Path(dest)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name
    return Path(dest)


def _plain(segment: str) -> bool:
    return (
        segment not in ("", ".", "..")
        and os.sep not in segment
        and (os.altsep is None or os.altsep not in segment)
        and "\0" not in segment
    )


class UnsafeKey(ValueError):
    """A key that would land outside the destination directory."""


def local_path_for(root: Path, relative_key: str) -> Path:
    """`root / relative_key` for a key relative to a download's prefix.

    Raises:
        UnsafeKey: a segment is empty, `.` or `..`, holds a separator, or the path
            resolves (through a symbolic link) outside `root`.
    """
    segments = relative_key.split("/")
    if not all(_plain(segment) for segment in segments):
        raise UnsafeKey("a '..', '.' or empty segment would leave the destination")
    path = root.joinpath(*segments)
    resolved_root = root.resolve()
    if not path.resolve().is_relative_to(resolved_root):
        raise UnsafeKey("it resolves outside the destination (through a symbolic link)")
    return path


def key_for_file(root: Path, path: Path) -> str:
    """A file's key relative to its tree's root, with `/` separators."""
    return path.relative_to(root).as_posix()
