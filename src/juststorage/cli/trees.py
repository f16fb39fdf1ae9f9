"""Directory trees to the store and back: `cp -r`, `put -r`, `get -r` and `sync`.

A plan is made first and then carried out. Uploading, every regular file under
the root becomes the key `<prefix>/<path relative to the root, with />`
(symbolic links to files are followed, to directories not). Downloading, every
key under the prefix becomes a path under the destination; a key that would land
outside it (`..`, `.` or empty inner segments, a leading `/`, or through a symbolic
link) is refused, reported, and makes the command fail once the rest is done. A
key ending in `/` (a folder marker, as S3 tools make) becomes an empty directory;
its bytes, if any, are not written.

Temporary download files (`.<name>.<random>.juststorage-part`, see the SDK) are
never taken for local files: not uploaded, not counted, not deleted by `--delete`.

`sync` compares before it transfers: a file whose size and SHA-256 equal the
newest version's (the listing carries each object's hash, so the store's side
moves no bytes; the local side is hashed) is left alone. `--delete` then removes
what the source does not have (on the store: every version of the key, except
folder markers), and only when every transfer succeeded and no key was refused. A
source that holds nothing (a typo'd prefix, a missing folder, a name of an object)
would make `--delete` empty the destination: that is refused unless
`allow_empty_source`. `--dry-run` prints the plan and changes nothing.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from juststorage_client import NotFound, is_temp_name

from juststorage.cli.actions import delete_line, transfer_line
from juststorage.cli.batch import Task, run_tasks
from juststorage.cli.copying import TransferSettings, download_object, sha256_of, upload_path
from juststorage.cli.errors import BadUsage, CommandFailed
from juststorage.cli.names import SCHEME, Location, UnsafeKey, key_for_file, local_path_for
from juststorage.cli.progress import Progress


@dataclass(frozen=True, slots=True)
class TreeOptions:
    """What a tree command was asked: files in flight, per-file settings, output."""

    parallel: int
    settings: TransferSettings
    progress: bool | None
    as_json: bool
    compare: bool = False  # sync: skip what is already there
    delete: bool = False
    dry_run: bool = False
    allow_empty_source: bool = False  # --delete even when the source holds nothing


@dataclass(frozen=True, slots=True)
class _Item:
    relative: str
    path: Path
    size: int
    remote: Any = None  # the listed object version, downloading


@dataclass(frozen=True, slots=True)
class _Side:
    """One direction of a tree command: how to name, move and delete its items."""

    verb: str
    describe: Callable[[_Item], tuple[str, str]]  # (source, destination)
    transfer: Callable[[_Item, Progress], Any]  # the object uploaded or downloaded
    describe_deleted: Callable[[str], str]
    delete: Callable[[str], object]


@dataclass
class _Plan:
    transfer: list[_Item] = field(default_factory=list)
    unchanged: int = 0
    delete: list[str] = field(default_factory=list)  # relative keys or paths
    refused: list[str] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)  # folder markers, downloading


def walk_local(root: Path) -> Iterator[tuple[str, Path]]:
    """(key relative to `root`, path) of every regular file under `root`, in order,
    except the temporary files of downloads."""

    def fail(error: OSError) -> None:
        raise error

    for folder, dirs, files in os.walk(root, onerror=fail):
        dirs.sort()
        for name in sorted(files):
            if is_temp_name(name):
                continue
            path = Path(folder, name)
            if path.is_file():
                yield key_for_file(root, path), path


def list_folder(client: Any, location: Location) -> dict[str, Any]:
    """The newest version of every key under `location.folder`, by relative key."""
    prefix = location.folder
    found: dict[str, Any] = {}
    for info in client.list(
        tenant=location.tenant,
        namespace=location.namespace,
        prefix=prefix or None,
        page_size=1000,
    ):
        relative = info.key[len(prefix) :]
        if relative:  # the prefix itself (a folder marker) is no file
            found[relative] = info
    return found


def upload_tree(client: Any, root: Path, dest: Location, options: TreeOptions) -> None:
    """Copy (or with `compare`, sync) the tree under `root` to the folder `dest`."""
    if not root.is_dir():
        raise BadUsage(f"not a directory: {root}")
    remote = list_folder(client, dest) if options.compare or options.delete else {}
    plan = _Plan()
    candidates = [_Item(key, path, path.stat().st_size) for key, path in walk_local(root)]
    if options.delete and not candidates:
        _refuse_empty_source(str(root), f"{SCHEME}{dest}", "holds no files", options)
    digests = _local_digests(candidates, remote, options) if options.compare else {}
    for item in candidates:
        info = remote.get(item.relative)
        if info is not None and digests.get(item.relative) == info.sha256:
            plan.unchanged += 1
        else:
            plan.transfer.append(item)
    if options.delete:
        local = {item.relative for item in candidates}
        plan.delete = sorted(key for key in set(remote) - local if not key.endswith("/"))
    side = _Side(
        verb="upload",
        describe=lambda item: (str(item.path), f"{SCHEME}{dest.child(item.relative)}"),
        transfer=lambda item, bar: upload_path(
            client,
            item.path,
            dest.child(item.relative),
            options.settings,
            bar,
            sha256=digests.get(item.relative),  # hashed when compared: not again
        ),
        describe_deleted=lambda relative: f"{SCHEME}{dest.child(relative)}",
        delete=lambda relative: client.delete(
            tenant=dest.tenant, namespace=dest.namespace, key=dest.folder + relative
        ),
    )
    _report_plan_and_run(plan, options, side)


def download_tree(client: Any, source: Location, root: Path, options: TreeOptions) -> None:
    """Copy (or with `compare`, sync) every key under the folder `source` into `root`."""
    if root.exists() and not root.is_dir():
        raise BadUsage(f"not a directory: {root}")
    remote = list_folder(client, source)
    if not remote:
        _source_is_empty(client, source, root, options)
    plan = _Plan()
    candidates: list[_Item] = []
    for relative, info in remote.items():
        try:
            path = local_path_for(root, relative.removesuffix("/"))
        except UnsafeKey as exc:
            plan.refused.append(f"{SCHEME}{source.child(relative)}: {exc}")
            continue
        if relative.endswith("/"):
            plan.folders.append(path)
        else:
            candidates.append(_Item(relative, path, info.size_bytes, info))
    if remote and options.delete and not candidates and not plan.refused:
        _refuse_empty_source(f"{SCHEME}{source}", str(root), "holds only folders", options)
    digests = _local_digests(candidates, None, options) if options.compare else {}
    for item in candidates:
        if digests.get(item.relative) == item.remote.sha256:
            plan.unchanged += 1
        else:
            plan.transfer.append(item)
    if options.delete and root.is_dir():
        plan.delete = sorted({key for key, _ in walk_local(root)} - set(remote))
    if not options.dry_run:
        for folder in plan.folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                plan.refused.append(f"{folder}: cannot create the directory ({exc.strerror})")
    for refusal in plan.refused:
        click.echo(f"refused: {refusal}", err=True)
    side = _Side(
        verb="download",
        describe=lambda item: (f"{SCHEME}{source.child(item.relative)}", str(item.path)),
        transfer=lambda item, bar: _download_job(client, item, source, options.settings, bar),
        describe_deleted=lambda relative: str(root.joinpath(*relative.split("/"))),
        delete=lambda relative: root.joinpath(*relative.split("/")).unlink(),
    )
    _report_plan_and_run(plan, options, side)
    if plan.refused:
        raise CommandFailed(
            f"{len(plan.refused)} key(s) refused: they would be written outside {root}"
            " or their directory could not be made"
        )


def _source_is_empty(client: Any, source: Location, root: Path, options: TreeOptions) -> None:
    """A remote source that lists nothing: say so when it names an object, and refuse
    `--delete` (it would remove everything in `root`)."""
    is_object = False
    if source.key and not source.key.endswith("/"):
        try:
            client.head(tenant=source.tenant, namespace=source.namespace, key=source.key)
            is_object = True
        except NotFound:
            pass
    what = f"{SCHEME}{source}"
    if is_object:
        if options.delete and not options.allow_empty_source:
            raise BadUsage(
                f"{what} is an object, not a folder: refusing to delete everything in"
                f" {root}; name the folder that holds it, or cp without -r for one file"
            )
        click.echo(f"note: {what} is an object, not a folder (cp without -r copies it)", err=True)
    elif options.delete:
        _refuse_empty_source(what, str(root), "holds nothing", options)


def _refuse_empty_source(source: str, dest: str, holds: str, options: TreeOptions) -> None:
    if not options.allow_empty_source:
        raise BadUsage(
            f"{source} {holds}: refusing to delete everything in {dest}"
            " (pass --allow-empty-source to empty it on purpose)"
        )


def _download_job(
    client: Any, item: _Item, source: Location, settings: TransferSettings, bar: Progress
) -> Any:
    target = {"tenant": source.tenant, "id": item.remote.id}  # the very version listed
    return download_object(client, target, item.path, settings, bar)


def _local_digests(
    items: list[_Item], remote: dict[str, Any] | None, options: TreeOptions
) -> dict[str, str]:
    """The SHA-256 of each file whose size equals its object's (the only ones that can
    be unchanged), by relative key; hashed `options.parallel` at a time. `remote`
    None: each item carries its object."""
    wanted: list[_Item] = []
    for item in items:
        info = item.remote if remote is None else remote.get(item.relative)
        if info is not None and item.path.is_file() and item.path.stat().st_size == info.size_bytes:
            wanted.append(item)
    digests: dict[str, str] = {}

    def hash_file(item: _Item) -> None:
        digests[item.relative] = sha256_of(item.path)  # one key per thread: no lock needed

    total = sum(item.size for item in wanted)
    bar = Progress(total, "comparing", options.progress, files=len(wanted))
    run_tasks(
        (Task(str(item.path), functools.partial(hash_file, item)) for item in wanted),
        options.parallel,
        bar,
    )
    bar.close()
    return digests


def _report_plan_and_run(plan: _Plan, options: TreeOptions, side: _Side) -> None:
    as_json, dry_run = options.as_json, options.dry_run
    if plan.delete and plan.refused:
        click.echo(f"not deleting: {len(plan.refused)} key(s) were refused (see above)", err=True)
        plan.delete = []
    if dry_run:
        for item in plan.transfer:
            line = transfer_line(side.verb, *side.describe(item), as_json=as_json, dry_run=True)
            click.echo(line)
        for relative in plan.delete:
            click.echo(delete_line(side.describe_deleted(relative), as_json=as_json, dry_run=True))
    else:
        total = sum(item.size for item in plan.transfer)
        bar = Progress(total, side.verb, options.progress, files=len(plan.transfer), min_bytes=0)

        def transfer(item: _Item) -> str:
            stored = side.transfer(item, bar)
            return transfer_line(
                side.verb, *side.describe(item), as_json=as_json, stored=stored.to_json()
            )

        tasks = (
            Task(side.describe(item)[0], functools.partial(transfer, item))
            for item in plan.transfer
        )
        try:
            run_tasks(tasks, options.parallel, bar)
        finally:
            bar.close()

        def remove(relative: str) -> str:
            side.delete(relative)
            return delete_line(side.describe_deleted(relative), as_json=as_json)

        removals = (
            Task(side.describe_deleted(rel), functools.partial(remove, rel)) for rel in plan.delete
        )
        run_tasks(removals, options.parallel, Progress(None, "delete", False))
    verbed = "uploaded" if side.verb == "upload" else "downloaded"
    summary = f"{len(plan.transfer)} {verbed}, {plan.unchanged} unchanged"
    if options.delete:
        summary += f", {len(plan.delete)} deleted"
    click.echo(f"(dry run) {summary}" if dry_run else summary, err=True)
