"""fsck of multipart upload parts (SPEC §8.2): bytes no part row names whose writer
is gone (`leaked-part`, repaired by removing them, as GC would), and part rows
whose bytes are gone (`missing-part`: damage; the client sends that part again)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from uuid import UUID

from juststorage.application.blob_ports import PartStore
from juststorage.application.fsck import Problem, ProblemKind
from juststorage.application.ports import MetadataStore, ProcessLiveness
from juststorage.application.session_records import stored_name
from juststorage.application.session_upkeep import (
    describe_part,
    find_leaked_parts,
    remove_leaked_part,
)
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
    missing = await _missing(metadata, parts)
    if missing:  # a part stored since the scan is no damage: look again
        missing = await _missing(metadata, parts)
    return problems + missing


async def _missing(
    metadata: MetadataStore, parts: Mapping[StorageClass, PartStore]
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
            if storage_class in stored and (session_id, name) not in stored[storage_class]:
                problems.append(
                    Problem(
                        ProblemKind.MISSING_PART,
                        storage_class,
                        f"parts/{session_id}/{part.address}",
                        detail=f"session={session_id} part={part.number} has no bytes",
                    )
                )
        if len(page) < _PAGE:
            return problems
        after = (page[-1][0], page[-1][2].number)
