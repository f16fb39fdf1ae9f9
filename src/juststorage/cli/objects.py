"""Object commands against a running server: put, get, ls, rm, stat, usage.

Each command resolves the server and credential (`client_config`), makes one
SDK call and prints the result (`--json` for scripts). Objects are named
`TENANT/NAMESPACE/KEY` (the key may contain `/`), or `TENANT --id ID`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from juststorage.cli.client_config import connection_options, json_option, sdk
from juststorage.cli.content_types import guess_content_type
from juststorage.cli.copying import TransferSettings, download_object, upload_path
from juststorage.cli.errors import BadUsage
from juststorage.cli.names import SCHEME, basename, download_path, key_for_upload, parse_location
from juststorage.cli.progress import Progress
from juststorage.cli.removal import remove_prefix
from juststorage.cli.session import open_client
from juststorage.cli.transfers import (
    DEFAULT_PARALLEL,
    DEFAULT_TREE_PARALLEL,
    download_options,
    upload_options,
)
from juststorage.cli.trees import TreeOptions, download_tree, upload_tree

_PROGRESS = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: on a terminal, for 8 MiB and more].",
)


def _client(url: str | None, token: str | None) -> Any:
    return open_client(url, token)


def _target(name: str, object_id: str | None) -> dict[str, str]:
    parts = name.removeprefix(SCHEME).split("/", 2)
    if object_id is not None:
        if len(parts) != 1 or not parts[0]:
            raise click.UsageError("with --id, name only the TENANT")
        return {"tenant": parts[0], "id": object_id}
    if len(parts) < 3 or not all(parts):
        raise click.UsageError(f"name the object as TENANT/NAMESPACE/KEY, not {name!r}")
    return {"tenant": parts[0], "namespace": parts[1], "key": parts[2]}


def _emit(data: Any, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else human)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _parse_range(text: str | None) -> tuple[int, int | None] | None:
    if text is None:
        return None
    first, sep, last = text.partition("-")
    if not sep or not first.isdigit() or (last and not last.isdigit()):
        raise click.BadParameter(
            "use FIRST-LAST or FIRST- (bytes, inclusive)", param_hint="--range"
        )
    return int(first), int(last) if last else None


@click.command()
@click.argument("source", metavar="FILE")
@click.argument("name", metavar="TENANT/NAMESPACE[/KEY]")
@click.option(
    "-r",
    "--recursive",
    is_flag=True,
    help="FILE is a directory: upload every file under it, as keys relative to it"
    " under NAME's key (a folder).",
)
@click.option("--storage-class", type=click.Choice(["hot", "cold"]), help="[default: hot]")
@click.option(
    "--content-type",
    help="Stored content type [default: guessed from the file name, else"
    " application/octet-stream].",
)
@click.option("--no-overwrite", is_flag=True, help="Fail (exit 6) if the key already exists.")
@click.option("--if-match", metavar="ETAG", help="Replace only if the current version has ETAG.")
@click.option(
    "--no-by-hash",
    is_flag=True,
    help="Always send the bytes: do not first ask the server to commit a large file"
    " by its SHA-256 [env JUSTSTORAGE_CLIENT_BY_HASH_MIN_BYTES: from 8 MiB].",
)
@upload_options
@_PROGRESS
@json_option
@connection_options
def put(
    source: str,
    name: str,
    recursive: bool,
    storage_class: str | None,
    content_type: str | None,
    no_overwrite: bool,
    if_match: str | None,
    no_by_hash: bool,
    parallel: int | None,
    multipart_threshold: int,
    part_size: int | None,
    progress: bool | None,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Upload FILE ('-' for stdin) as a new version of TENANT/NAMESPACE/KEY.

    NAME ending with '/' (TENANT/NAMESPACE/PREFIX/), or naming only a namespace,
    stores the file under its own name there, as cp does with a directory.

    A file of --multipart-threshold bytes or more is sent in parts, --parallel at
    a time. If that upload is interrupted (Ctrl-C, kill, a lost connection), run
    the same command again: it resumes, sending only the parts the server does
    not hold yet. Its state file is kept in transfers/ beside the client config
    and removed once the upload completes.
    """
    location = parse_location(name)
    settings = TransferSettings(
        parts_parallel=parallel or DEFAULT_PARALLEL,
        threshold=multipart_threshold,
        part_size=part_size,
        storage_class=storage_class,
        content_type=content_type,
        by_hash=not no_by_hash,
        if_none_match="*" if no_overwrite else None,
        if_match=if_match,
    )
    if recursive:
        if source == "-" or no_overwrite or if_match:
            raise click.UsageError("-r uploads a directory: no stdin, --no-overwrite, --if-match")
        options = TreeOptions(
            parallel=parallel or DEFAULT_TREE_PARALLEL,
            settings=replace(settings, parts_parallel=DEFAULT_PARALLEL),
            progress=progress,
            as_json=as_json,
        )
        with _client(url, token) as client:
            upload_tree(client, Path(source), location, options)
        return
    path = None if source == "-" else Path(source)
    if path is not None and path.is_dir():
        raise BadUsage(f"{source} is a directory: use put -r (or cp -r) for a tree")
    if path is not None and not path.is_file():
        raise BadUsage(f"no such file: {source}")
    target = replace(location, key=key_for_upload(location, path))
    with _client(url, token) as client:
        if path is None:
            bar = Progress(None, "upload", progress)
            guessed = content_type or guess_content_type(target.key)
            info = client.upload_stream(
                sys.stdin.buffer,
                tenant=target.tenant,
                namespace=target.namespace,
                key=target.key,
                storage_class=storage_class,
                content_type=guessed,
                if_none_match=settings.if_none_match,
                if_match=if_match,
                progress=bar,
            )
        else:
            bar = Progress(path.stat().st_size, "upload", progress)
            info = upload_path(client, path, target, settings, bar)
        bar.close()
    data = info.to_json()
    _emit(data, as_json, f"{data['id']}  {data['content_hash']}  {_size(data['size_bytes'])}")


@click.command()
@click.argument("name", metavar="TENANT/NAMESPACE/KEY")
@click.argument("destination", metavar="[DEST]", required=False)
@click.option(
    "-r",
    "--recursive",
    is_flag=True,
    help="NAME is a folder (TENANT/NAMESPACE[/PREFIX]): download every key under it"
    " into the directory DEST [default: .], refusing keys that would land outside it.",
)
@click.option("--id", "object_id", help="Download this version by id (NAME is the TENANT).")
@click.option("--range", "byte_range", metavar="FIRST-LAST", help="Only these bytes.")
@download_options
@_PROGRESS
@json_option
@connection_options
def get(
    name: str,
    destination: str | None,
    recursive: bool,
    object_id: str | None,
    byte_range: str | None,
    parallel: int | None,
    parallel_threshold: int,
    part_size: int,
    progress: bool | None,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Download an object into DEST (default: the key's last part; '-' for stdout).

    DEST that is a directory, or ends with '/', gets the key's last part as file
    name inside it.

    The download resumes if the connection breaks, and a whole object is checked
    against its SHA-256 before DEST is put in place. An object of
    --parallel-threshold bytes or more is fetched in byte ranges, --parallel at a
    time, into a temporary file beside DEST (.DEST.<random>.juststorage-part);
    if that is interrupted, run the same command again: the ranges its state file
    (in transfers/ beside the client config) lists are kept when the object (by id
    and SHA-256) is still the same, else the download starts over.
    """
    settings = TransferSettings(
        parts_parallel=parallel or DEFAULT_PARALLEL,
        threshold=parallel_threshold,
        part_size=part_size,
    )
    if recursive:
        if object_id or byte_range or destination == "-":
            raise click.UsageError("-r downloads a folder: no --id, --range or stdout")
        options = TreeOptions(
            parallel=parallel or DEFAULT_TREE_PARALLEL,
            settings=replace(settings, parts_parallel=DEFAULT_PARALLEL),
            progress=progress,
            as_json=as_json,
        )
        with _client(url, token) as client:
            download_tree(client, parse_location(name), Path(destination or "."), options)
        return
    target = _target(name, object_id)
    parsed = _parse_range(byte_range)
    if destination == "-":
        dest = None
    else:
        file_name = basename(target["key"]) if "key" in target else target["id"]
        dest = download_path(destination, file_name)
    with _client(url, token) as client:
        head = client.head(**target)
        total = head.size_bytes
        if parsed is not None:
            last = head.size_bytes - 1 if parsed[1] is None else min(parsed[1], total - 1)
            total = max(0, last - parsed[0] + 1)
        bar = Progress(total, "download", progress)
        if dest is None:
            with client.open(**target, byte_range=parsed, progress=bar) as download:
                for chunk in download.iter_bytes():
                    sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        elif parsed is None:
            head = download_object(client, target, dest, settings, bar)
        else:
            head = client.download_to_file(dest, **target, byte_range=parsed, progress=bar)
        bar.close()
    if dest is not None:
        data = {**head.to_json(), "path": str(dest)}
        _emit(data, as_json, f"{dest}  {head.content_hash}  {_size(head.size_bytes)}")


@click.command("ls")
@click.argument("name", metavar="TENANT/NAMESPACE[/PREFIX]")
@click.option(
    "--recursive",
    "-r",
    is_flag=True,
    help="Every key under the prefix, not folder-style (one level, sub-folders as PRE).",
)
@click.option("--versions", is_flag=True, help="Every committed version, not only the newest.")
@click.option("--storage-class", type=click.Choice(["hot", "cold"]), help="Only this class.")
@click.option("--limit", type=click.IntRange(min=1), help="Stop after this many lines.")
@json_option
@connection_options
def list_objects(
    name: str,
    recursive: bool,
    versions: bool,
    storage_class: str | None,
    limit: int | None,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """List objects folder-style, as `aws s3 ls` does (--recursive: every key).

    In key order, every page: keys holding a `/` after the prefix (whether or not
    it ends in `/`) show once, as `PRE <folder>/`. --json prints one JSON object a
    line, `{"prefix": …}` for a folder.
    """
    parts = name.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise click.UsageError(f"name the listing as TENANT/NAMESPACE[/PREFIX], not {name!r}")
    prefix = parts[2] if len(parts) == 3 else None
    with _client(url, token) as client:
        entries = client.list(
            tenant=parts[0],
            namespace=parts[1],
            prefix=prefix or None,
            versions=versions,
            storage_class=storage_class,
            page_size=min(limit or 1000, 1000),
            delimiter=None if recursive else "/",
        )
        for count, entry in enumerate(entries, start=1):
            _emit_listed(entry, as_json)
            if limit is not None and count >= limit:
                break


# An object's line: created_at (20), size (10), class (4), id (36), each followed by
# two spaces, then the key; a folder's `PRE` ends where the id column does.
_KEY_COLUMN = 20 + 2 + 10 + 2 + 4 + 2 + 36 + 2


def _emit_listed(entry: Any, as_json: bool) -> None:
    """One line of `ls`: an object, or a folder (an SDK `CommonPrefix`)."""
    if isinstance(entry, sdk().CommonPrefix):
        pre = f"{'PRE':>{_KEY_COLUMN - 2}}  {entry.prefix}"
        _emit(entry.to_json(), as_json, pre)
        return
    data = entry.to_json()
    human = (
        f"{data['created_at']}  {_size(data['size_bytes']):>10}  "
        f"{data['storage_class']:<4}  {data['id']}  {data['key']}"
    )
    _emit(data, as_json, human)


@click.command()
@click.argument("name", metavar="TENANT/NAMESPACE/KEY")
@click.option("--id", "object_id", help="Delete only this version (NAME is the TENANT).")
@click.option(
    "--prefix",
    "by_prefix",
    is_flag=True,
    help="NAME is TENANT/NAMESPACE[/PREFIX]: delete every key that starts with PREFIX"
    " (literal, as in ls; end it with / for one folder), after a confirmation.",
)
@click.option("-y", "--yes", is_flag=True, help="With --prefix: delete without asking.")
@click.option(
    "--dry-run", is_flag=True, help="With --prefix: print what would be deleted, delete nothing."
)
@click.option(
    "--parallel",
    type=click.IntRange(1, 64),
    default=DEFAULT_TREE_PARALLEL,
    show_default=True,
    metavar="N",
    help="With --prefix: deletes in flight at once.",
)
@json_option
@connection_options
def rm(
    name: str,
    object_id: str | None,
    by_prefix: bool,
    yes: bool,
    dry_run: bool,
    parallel: int,
    as_json: bool,
    url: str | None,
    token: str | None,
) -> None:
    """Delete every version of a key, or one version with --id, or every key under
    a prefix with --prefix."""
    if by_prefix:
        if object_id is not None:
            raise click.UsageError("--prefix and --id exclude each other")
        location = parse_location(name)
        with _client(url, token) as client:
            remove_prefix(
                client, location, yes=yes, dry_run=dry_run, parallel=parallel, as_json=as_json
            )
        return
    if yes or dry_run:
        raise click.UsageError("--yes and --dry-run go with --prefix")
    target = _target(name, object_id)
    with _client(url, token) as client:
        client.delete(**target)
    _emit({"deleted": target}, as_json, f"deleted {name}{' ' + object_id if object_id else ''}")


@click.command()
@click.argument("name", metavar="TENANT/NAMESPACE/KEY")
@click.option("--id", "object_id", help="This version by id (NAME is the TENANT).")
@json_option
@connection_options
def stat(
    name: str, object_id: str | None, as_json: bool, url: str | None, token: str | None
) -> None:
    """Show an object's metadata (newest version of the key, or --id)."""
    target = _target(name, object_id)
    with _client(url, token) as client:
        data = client.head(**target).to_json()
    human = "\n".join(f"{field}: {value}" for field, value in data.items())
    _emit(data, as_json, human)


@click.command()
@click.argument("tenant")
@json_option
@connection_options
def usage(tenant: str, as_json: bool, url: str | None, token: str | None) -> None:
    """Objects, logical bytes and monthly cost of TENANT, per storage class."""
    with _client(url, token) as client:
        result = client.usage(tenant=tenant)
    lines = [
        f"{tenant}: {result.objects} objects, {_size(result.logical_bytes)}, "
        f"{result.monthly_cost:.2f} {result.currency}/month"
    ]
    for name, part in sorted(result.by_storage_class.items()):
        lines.append(
            f"  {name}: {part.objects} objects, {_size(part.bytes)}, "
            f"{part.monthly_cost:.2f} {result.currency}/month"
        )
    _emit(result.raw, as_json, "\n".join(lines))
