"""fsck of multipart upload parts (SPEC §8.2): bytes no part row names whose writer
is gone (`leaked-part`, repaired by removing them, as GC would), part rows whose
bytes are gone (`missing-part`: damage; the client sends that part again), and,
unless hashes are not verified, part rows whose bytes no longer hash to the sha256
recorded at their 200 (`damaged-part`: completion refuses them too; the client
sends that part again)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

import anyio.to_thread

from juststorage.application.blob_ports import PartStore
from juststorage.application.fsck import Problem, ProblemKind
from juststorage.application.ports import MetadataStore, ProcessLiveness
from juststorage.application.session_records import SessionPart, stored_name
from juststorage.application.session_upkeep import (
    describe_part,
    find_leaked_parts,
    remove_leaked_part,
)
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import StorageClass

_PAGE = 500
# A writer on another machine is taken for gone when its part was not written to
# for this long (as GC judges uploads of remote owners).
_REMOTE_SECONDS = 300.0


async def check_parts(
    metadata: MetadataStore,
    parts: Mapping[StorageClass, PartStore],
    liveness: ProcessLiveness,
    repair: bool,
    *,
    verify_hashes: bool = True,
) -> list[Problem]:
    problems: list[Problem] = []
    now = datetime.now(UTC)  # compared with the files' modification times
    remote_before = now - timedelta(seconds=_REMOTE_SECONDS)
    found = await find_leaked_parts(metadata, parts, liveness, now, remote_before, now)
    for leaked in found:
        repaired = repair and await remove_leaked_part(metadata, parts, leaked, liveness, now)
        problems.append(
            Problem(
                ProblemKind.LEAKED_PART,
                leaked.storage_class,
                describe_part(leaked),
                detail=f"session={leaked.session_id} no part row names these bytes",
                repaired=repaired,
            )
        )
    missing = await _missing(metadata, parts, verify_hashes)
    if missing:  # a part stored since the scan is no damage: look again
        missing = await _missing(metadata, parts, verify_hashes)
    return problems + missing


async def _missing(
    metadata: MetadataStore, parts: Mapping[StorageClass, PartStore], verify_hashes: bool
) -> list[Problem]:
    stored: dict[StorageClass, set[tuple[UUID, str]]] = {}
    for storage_class, store in parts.items():
        stored[storage_class] = {(f.session_id, f.address) for f in await store.scan(storage_class)}
    problems: list[Problem] = []
    after: tuple[UUID, int] | None = None
    while True:
        async with metadata.snapshot() as view:
            page = await view.sessions.parts_page(after, _PAGE)
        for session_id, storage_class, part in page:
            name = stored_name(part.address)
            if storage_class not in stored:
                continue
            if (session_id, name) not in stored[storage_class]:
                problems.append(
                    Problem(
                        ProblemKind.MISSING_PART,
                        storage_class,
                        f"parts/{session_id}/{part.address}",
                        detail=f"session={session_id} part={part.number} has no bytes",
                    )
                )
            elif verify_hashes:
                damage = await _damage_of(parts[storage_class], storage_class, session_id, part)
                if damage is not None:
                    problems.append(
                        Problem(
                            ProblemKind.DAMAGED_PART,
                            storage_class,
                            f"parts/{session_id}/{part.address}",
                            detail=f"session={session_id} part={part.number} {damage}",
                        )
                    )
        if len(page) < _PAGE:
            return problems
        after = (page[-1][0], page[-1][2].number)


async def _damage_of(
    store: PartStore, storage_class: StorageClass, session_id: UUID, part: SessionPart
) -> str | None:
    """What is wrong with the part's stored bytes: they hash to another digest than
    its row's, or cannot be read to the end; None if they are right, or went
    meanwhile (the session completed or aborted, the part replaced)."""
    hasher = hashlib.sha256()
    try:
        async for chunk in store.read(storage_class, session_id, part.address):
            await anyio.to_thread.run_sync(hasher.update, chunk)
    except NotFound:
        return None
    except Unavailable:
        raise
    except StorageError as exc:
        return f"bytes cannot be read: {exc.message}"
    found = hasher.hexdigest()
    return None if found == part.sha256.hex else f"bytes hash to sha256:{found}"
