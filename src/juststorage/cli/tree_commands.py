"""`cp` and `sync`: between local files and the store, either way, one file or a tree.

A place in the store is written `js://TENANT/NAMESPACE[/KEY]`, anything else is a
local path; exactly one of SRC and DST is in the store. A tree's files become
keys relative to its root under the folder named (as `aws s3 cp --recursive`:
the directory's contents, not the directory itself).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from juststorage.cli.actions import transfer_line
from juststorage.cli.client_config import connection_options, json_option
from juststorage.cli.copying import TransferSettings, download_object, upload_path
from juststorage.cli.errors import BadUsage
from juststorage.cli.names import (
    SCHEME,
    Location,
    basename,
    download_path,
    is_remote,
    key_for_upload,
    parse_location,
)
from juststorage.cli.progress import Progress
from juststorage.cli.session import open_client
from juststorage.cli.transfers import DEFAULT_PARALLEL, DEFAULT_TREE_PARALLEL, ByteSize
from juststorage.cli.trees import TreeOptions, download_tree, upload_tree


def _tree_options(command: Any) -> Any:
    """The options `cp` and `sync` share."""
    options = [
        click.option("--storage-class", type=click.Choice(["hot", "cold"]), help="[default: hot]"),
        click.option(
            "--content-type",
            help="Content type of every upload [default: guessed from each file name].",
        ),
        click.option(
            "--no-by-hash",
            is_flag=True,
            help="Always send the bytes of large files (no commit by SHA-256 first).",
        ),
        click.option(
            "--parallel",
            type=click.IntRange(1, 64),
            default=DEFAULT_TREE_PARALLEL,
            show_default=True,
            metavar="N",
            help="Files in flight at once.",
        ),
        click.option(
            "--multipart-threshold",
            type=ByteSize(),
            default="64MiB",
            show_default=True,
            metavar="SIZE",
            help="Files of this size or more move in resumable parts (up) or ranges (down).",
        ),
        click.option(
            "--part-size",
            type=ByteSize(),
            metavar="SIZE",
            help="Bytes per part or range [default: up max(8MiB, size/10000), down 16MiB].",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="One combined progress line on stderr [default: on a terminal].",
        ),
        json_option,
        connection_options,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _settings(params: dict[str, Any]) -> TransferSettings:
    return TransferSettings(
        parts_parallel=DEFAULT_PARALLEL,
        threshold=params["multipart_threshold"],
        part_size=params["part_size"],
        storage_class=params["storage_class"],
        content_type=params["content_type"],
        by_hash=not params["no_by_hash"],
    )


def _ends(source: str, dest: str) -> tuple[bool, Location]:
    """(True when uploading, the place in the store) for SRC and DST."""
    if is_remote(source) and is_remote(dest):
        raise click.UsageError("copying within the store is not supported: one side is local")
    if not is_remote(source) and not is_remote(dest):
        raise click.UsageError(
            f"name the store side as {SCHEME}TENANT/NAMESPACE[/KEY] (the other is a local path)"
        )
    return (not is_remote(source), parse_location(dest if is_remote(dest) else source))


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("dest", metavar="DST")
@click.option("-r", "--recursive", is_flag=True, help="Copy a directory tree or a folder.")
@_tree_options
def cp(source: str, dest: str, recursive: bool, **params: Any) -> None:
    """Copy a file or (-r) a tree between here and the store.

    \b
    juststorage cp report.pdf js://acme/files/docs/       # -> docs/report.pdf
    juststorage cp js://acme/files/docs/report.pdf .      # -> ./report.pdf
    juststorage cp -r ./site js://acme/web/v2             # -> v2/<path under ./site>
    juststorage cp -r js://acme/web/v2 ./site-copy
    """
    uploading, location = _ends(source, dest)
    settings = _settings(params)
    options = TreeOptions(
        parallel=params["parallel"],
        settings=settings,
        progress=params["progress"],
        as_json=params["as_json"],
    )
    with open_client(params["url"], params["token"]) as client:
        if recursive and uploading:
            upload_tree(client, Path(source), location, options)
        elif recursive:
            download_tree(client, location, Path(dest), options)
        elif uploading:
            _upload_one(client, Path(source), location, settings, options)
        else:
            _download_one(client, location, dest, settings, options)


def _upload_one(
    client: Any, path: Path, location: Location, settings: TransferSettings, options: TreeOptions
) -> None:
    if path.is_dir():
        raise BadUsage(f"{path} is a directory: use cp -r")
    if not path.is_file():
        raise BadUsage(f"no such file: {path}")
    target = replace(location, key=key_for_upload(location, path))
    bar = Progress(path.stat().st_size, "upload", options.progress)
    info = upload_path(client, path, target, settings, bar)
    bar.close()
    line = transfer_line(
        "upload", str(path), f"{SCHEME}{target}", as_json=options.as_json, stored=info.to_json()
    )
    click.echo(line)


def _download_one(
    client: Any, location: Location, dest: str, settings: TransferSettings, options: TreeOptions
) -> None:
    path = download_path(dest, basename(location.key))
    target = {"tenant": location.tenant, "namespace": location.namespace, "key": location.key}
    head = client.head(**target)
    bar = Progress(head.size_bytes, "download", options.progress)
    head = download_object(client, {"tenant": location.tenant, "id": head.id}, path, settings, bar)
    bar.close()
    line = transfer_line(
        "download", f"{SCHEME}{location}", str(path), as_json=options.as_json, stored=head.to_json()
    )
    click.echo(line)


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("dest", metavar="DST")
@click.option(
    "--delete",
    is_flag=True,
    help="Also delete what SRC does not have (in the store: every version of the key).",
)
@click.option(
    "--allow-empty-source",
    is_flag=True,
    help="With --delete: go on even when SRC holds nothing, emptying DST.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be done, change nothing.")
@_tree_options
def sync(
    source: str,
    dest: str,
    delete: bool,
    allow_empty_source: bool,
    dry_run: bool,
    **params: Any,
) -> None:
    """Make DST hold what SRC holds, transferring only what differs.

    A file and an object with the same size and SHA-256 are left alone (the
    store's side is read from the listing, no bytes move; the local file is
    hashed), so a second run transfers nothing. --delete runs only once every
    transfer succeeded and no key was refused, and never deletes folder markers
    (keys ending in '/'; downloading, they become empty directories). A SRC that
    holds nothing (a typo'd prefix, a missing folder, the name of an object) with
    --delete is refused (exit 2), as it would empty DST; --allow-empty-source
    does it anyway.

    \b
    juststorage sync ./models js://acme/models/v3
    juststorage sync js://acme/models/v3 ./models --delete
    """
    uploading, location = _ends(source, dest)
    options = TreeOptions(
        parallel=params["parallel"],
        settings=_settings(params),
        progress=params["progress"],
        as_json=params["as_json"],
        compare=True,
        delete=delete,
        dry_run=dry_run,
        allow_empty_source=allow_empty_source,
    )
    with open_client(params["url"], params["token"]) as client:
        if uploading:
            upload_tree(client, Path(source), location, options)
        else:
            download_tree(client, location, Path(dest), options)
