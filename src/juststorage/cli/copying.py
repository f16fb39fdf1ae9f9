"""One file to one object and back: what `put`, `get` and every tree command do per file.

An upload takes the by-hash shortcut for large files (`by_hash`), then the SDK's
single request or its resumable multipart session; a download goes through the
SDK's `download_to_file` (a new temporary `.<name>.<random>.juststorage-part`
beside the path, checked against the SHA-256, fsynced, renamed into place; large
objects in resumable ranges, their state in `transfers/` beside the client config).
The content type is guessed from the file name when not given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from juststorage.cli.by_hash import by_hash_min_bytes, put_by_hash_first
from juststorage.cli.client_config import transfer_state_dir
from juststorage.cli.content_types import guess_content_type
from juststorage.cli.names import Location
from juststorage.cli.progress import Progress
from juststorage.cli.transfers import DEFAULT_PARALLEL

_HASH_READ_BYTES = 1024 * 1024
DOWNLOAD_RANGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """How one file moves: parts in flight, the size from which it goes in parts,
    the part size (uploads: the SDK's default when None), and upload metadata."""

    parts_parallel: int = DEFAULT_PARALLEL
    threshold: int = 64 * 1024 * 1024
    part_size: int | None = None
    storage_class: str | None = None
    content_type: str | None = None
    by_hash: bool = True
    if_none_match: str | None = None
    if_match: str | None = None


def sha256_of(path: Path) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def upload_path(
    client: Any,
    path: Path,
    location: Location,
    settings: TransferSettings,
    bar: Progress,
    *,
    sha256: str | None = None,
) -> Any:
    """Upload `path` as a new version of `location` (its key is the object's key)."""
    options: dict[str, Any] = {
        "tenant": location.tenant,
        "namespace": location.namespace,
        "key": location.key,
        "storage_class": settings.storage_class,
        "content_type": settings.content_type or guess_content_type(path.name),
        "if_none_match": settings.if_none_match,
        "if_match": settings.if_match,
    }
    size = path.stat().st_size
    if settings.by_hash and size >= by_hash_min_bytes():
        if sha256 is None:
            info, sha256 = put_by_hash_first(client, path, options)
        else:
            info = client.put_by_hash(sha256=sha256, size=size, **options)
        if info is not None:
            bar.skipped(size)  # committed from content the tenant holds: nothing sent
            return info
    return client.upload_file(
        path,
        **options,
        sha256=sha256,
        progress=bar,
        parallel=settings.parts_parallel,
        multipart_threshold=settings.threshold,
        part_bytes=settings.part_size,
        state_dir=transfer_state_dir(),
        on_resume=bar.resumed,
    )


def download_object(
    client: Any,
    target: dict[str, str],
    path: Path,
    settings: TransferSettings,
    bar: Progress,
) -> Any:
    """Download the object named by `target` (tenant with id, or namespace and key)
    into `path`, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return client.download_to_file(
        path,
        **target,
        progress=bar,
        parallel=settings.parts_parallel,
        parallel_threshold=settings.threshold,
        range_bytes=settings.part_size or DOWNLOAD_RANGE_BYTES,
        on_resume=bar.resumed,
        state_dir=transfer_state_dir(),
    )
