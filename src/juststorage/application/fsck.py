"""fsck: the database against the blob files (SPEC §6).

Finds: committed objects whose blob file is missing, blob files whose bytes do
not hash to their name, reference counts that differ from the live objects,
stored things no row knows (the orphans GC removes: application/orphans.py), and
unreferenced rows whose file is gone. A missing row's blob is at its content
address, or, where stored things name their upload, the bytes an upload of a
version of that content stored. `repair` fixes what needs no guessing (recounts,
rows recreated at the blob's address, removing orphans) and reports the rest.
`repair` is meant for a quiet store: counts are taken one blob at a time.
With a `refill` (`fsck --repair --from-backup TARGET`), missing and corrupt blobs
are put back from a backup's copy of their bytes (application/fsck_refill.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from uuid import UUID

from juststorage.application.blob_ports import BlobStore, PartStore
from juststorage.application.fsck_refill import Refill
from juststorage.application.orphans import LostRow, Removal, find_unindexed, remove_orphan
from juststorage.application.ports import MetadataStore, ProcessLiveness
from juststorage.application.records import BlobAudit, BlobLocation
from juststorage.domain.errors import NotFound
from juststorage.domain.model import ContentHash, ObjectVersion, StorageClass

_PAGE = 500
_KNOWN = 100_000  # blobs the scrub found corrupt (corrupt_blobs) loaded at once


class ProblemKind(enum.StrEnum):
    MISSING_BLOB = "missing-blob"
    HASH_MISMATCH = "hash-mismatch"
    REFCOUNT_DRIFT = "refcount-drift"
    MISSING_ROW = "missing-row"
    ORPHAN_FILE = "orphan-file"
    ORPHAN_ROW = "orphan-row"
    LEAKED_PART = "leaked-part"  # multipart upload bytes no part row names
    MISSING_PART = "missing-part"  # a part row whose bytes are gone
    DAMAGED_PART = "damaged-part"  # a part row whose bytes no longer hash to its sha256

    @property
    def repairable(self) -> bool:
        return self not in (
            ProblemKind.MISSING_BLOB,
            ProblemKind.HASH_MISMATCH,
            ProblemKind.MISSING_PART,
            ProblemKind.DAMAGED_PART,
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. `content_hash` is None for stored bytes whose address says
    nothing about their content (an orphan upload object on S3)."""

    kind: ProblemKind
    storage_class: StorageClass
    address: str
    content_hash: ContentHash | None = None
    object_ids: tuple[UUID, ...] = ()
    detail: str = ""
    repaired: bool = False

    @classmethod
    def of_blob(
        cls,
        kind: ProblemKind,
        location: BlobLocation,
        object_ids: tuple[UUID, ...] = (),
        detail: str = "",
        repaired: bool = False,
    ) -> Problem:
        """A finding about a blob the index (or an object) names."""
        return cls(
            kind,
            location.storage_class,
            location.address,
            location.content_hash,
            object_ids,
            detail,
            repaired,
        )

    @property
    def location(self) -> BlobLocation | None:
        """The blob, when its content is known."""
        if self.content_hash is None:
            return None
        return BlobLocation(self.storage_class, self.content_hash, self.address)

    def describe(self) -> str:
        ids = ",".join(str(i) for i in self.object_ids) or "-"
        fixed = " [repaired]" if self.repaired else ""
        where = []
        if self.content_hash is not None:
            where.append(f"sha256:{self.content_hash.hex}")
        if self.content_hash is None or self.address != self.content_hash.hex:
            where.append(f"address:{self.address}")
        return (
            f"{self.kind.value} {self.storage_class.value}"
            f" {' '.join(where)} objects={ids} {self.detail}{fixed}"
        ).rstrip()


@dataclass(slots=True)
class FsckReport:
    problems: list[Problem] = field(default_factory=list)
    blobs_checked: int = 0
    bytes_checked: int = 0

    @property
    def damaged(self) -> bool:
        """True while any problem is left unrepaired."""
        return any(not p.repaired for p in self.problems)


Progress = Callable[[int, int], None]  # (blobs done, bytes done)


async def check_store(
    metadata: MetadataStore,
    blobs: BlobStore,
    *,
    repair: bool = False,
    verify_hashes: bool = True,
    progress: Progress | None = None,
    parts: Mapping[StorageClass, PartStore] | None = None,
    liveness: ProcessLiveness | None = None,
    refill: Refill | None = None,
) -> FsckReport:
    """Check every blob row, every committed object and every blob file; with `parts`
    and `liveness`, also the parts of multipart upload sessions. With `repair` and
    `refill`, a blob found missing or corrupt is put back from the refill's copy."""
    report = FsckReport()
    after: BlobLocation | None = None
    async with metadata.snapshot() as view:
        known_corrupt = {
            BlobLocation(c.storage_class, c.content_hash) for c in await view.scrub.corrupt(_KNOWN)
        }
    while True:
        async with metadata.snapshot() as view:
            page = await view.blobs.audit(after, _PAGE)
        for audit in page:
            found = len(report.problems)
            await _check_blob(
                metadata, blobs, audit, repair, verify_hashes, report, refill if repair else None
            )
            if verify_hashes and audit.location in known_corrupt:
                await _forget_if_good(metadata, audit.location, report.problems[found:])
            report.blobs_checked += 1
            report.bytes_checked += audit.size_bytes
            if progress is not None:
                progress(report.blobs_checked, report.bytes_checked)
        if len(page) < _PAGE:
            break
        after = page[-1].location
    async with metadata.snapshot() as view:
        rowless = await view.objects.without_blob_row(100_000)
    referenced = {BlobLocation(v.storage_class, v.content_hash): v for v in rowless}
    orphans, lost_rows = await _check_unindexed(metadata, blobs, repair, referenced)
    await _check_missing_rows(metadata, blobs, repair, report, rowless, lost_rows)
    report.problems += orphans
    if parts and liveness is not None:
        # Imported here: fsck_parts builds this module's Problems.
        from juststorage.application.fsck_parts import check_parts

        report.problems += await check_parts(
            metadata, parts, liveness, repair, verify_hashes=verify_hashes
        )
    return report


async def _forget_if_good(
    metadata: MetadataStore, location: BlobLocation, found: list[Problem]
) -> None:
    """A blob the scrub found corrupt that this run read back good (repaired since):
    it leaves `corrupt_blobs`, and the corrupt-blob gauge drops. `found`: the
    problems this run found with the blob."""
    damage = (ProblemKind.MISSING_BLOB, ProblemKind.HASH_MISMATCH)
    if any(p.kind in damage and not p.repaired for p in found):
        return
    async with metadata.transaction() as uow:
        await uow.scrub.clear_corrupt(location)
        await uow.commit()


async def _ids(metadata: MetadataStore, location: BlobLocation) -> tuple[UUID, ...]:
    async with metadata.snapshot() as view:
        return tuple(await view.objects.ids_of_blob(location))


async def _check_blob(
    metadata: MetadataStore,
    blobs: BlobStore,
    audit: BlobAudit,
    repair: bool,
    verify_hashes: bool,
    report: FsckReport,
    refill: Refill | None = None,
) -> None:
    location = audit.location
    try:
        if verify_hashes:
            digest = await blobs.digest_of(location)
            if digest != location.content_hash:
                ids = await _ids(metadata, location)
                detail = f"bytes hash to sha256:{digest.hex}"
                repaired, why = await _refilled(blobs, refill, audit)
                report.problems.append(
                    Problem.of_blob(
                        ProblemKind.HASH_MISMATCH, location, ids, detail + why, repaired
                    )
                )
        else:
            reader = await blobs.open(location)
            await reader.close()
    except NotFound:
        if audit.live_objects == 0 and audit.ref_count == 0:
            repaired = False
            if repair:
                async with metadata.transaction() as uow:
                    await uow.blobs.forget(location)
                    await uow.commit()
                repaired = True
            report.problems.append(
                Problem.of_blob(ProblemKind.ORPHAN_ROW, location, (), "row without file", repaired)
            )
            return
        ids = await _ids(metadata, location)
        repaired, why = await _refilled(blobs, refill, audit)
        report.problems.append(
            Problem.of_blob(
                ProblemKind.MISSING_BLOB, location, ids, "file is missing" + why, repaired
            )
        )
    if audit.ref_count != audit.live_objects:
        repaired = False
        if repair:
            async with metadata.transaction() as uow:
                live = len(await uow.objects.ids_of_blob(location))
                await uow.blobs.set_ref_count(location, live)
                await uow.commit()
            repaired = True
        detail = f"ref_count={audit.ref_count} live={audit.live_objects}"
        report.problems.append(
            Problem.of_blob(ProblemKind.REFCOUNT_DRIFT, location, (), detail, repaired)
        )


async def _refilled(blobs: BlobStore, refill: Refill | None, audit: BlobAudit) -> tuple[bool, str]:
    """Put a damaged blob back from the refill's copy: (repaired, what to add to the
    problem's detail)."""
    if refill is None:
        return False, ""
    why = await refill.put_back(blobs, audit.location, audit.size_bytes)
    if why is None:
        return True, "; put back from the backup"
    return False, f"; {why}"


async def _check_missing_rows(
    metadata: MetadataStore,
    blobs: BlobStore,
    repair: bool,
    report: FsckReport,
    rowless: list[ObjectVersion],
    lost_rows: list[LostRow],
) -> None:
    """Committed objects whose blob has no row, and the bytes of lost rows that name
    their upload: the blob is at its content address, else at those bytes'."""
    by_location: dict[BlobLocation, list[UUID]] = {}
    sizes: dict[BlobLocation, int] = {}
    for version in rowless:
        location = BlobLocation(version.storage_class, version.content_hash)
        by_location.setdefault(location, []).append(version.id)
        sizes[location] = version.size_bytes
    addressed: dict[BlobLocation, BlobLocation] = {}
    for lost in lost_rows:  # a version being deleted has no row either: live count 0
        by_location.setdefault(lost.blob, [])
        sizes.setdefault(lost.blob, lost.version.size_bytes)
        addressed.setdefault(lost.blob, lost.blob)  # (class, hash) → first copy found
    for location, ids in by_location.items():
        location = addressed.get(location, location)
        try:
            reader = await blobs.open(location)
            await reader.close()
        except NotFound:
            report.problems.append(
                Problem.of_blob(
                    ProblemKind.MISSING_BLOB, location, tuple(ids), "file and row missing"
                )
            )
            continue
        repaired = False
        if repair:
            async with metadata.transaction() as uow:
                if await uow.blobs.claim_orphan(location, sizes[location]):  # at its address
                    live = len(await uow.objects.ids_of_blob(location))
                    await uow.blobs.set_ref_count(location, live)
                    repaired = True
                await uow.commit()
        report.problems.append(
            Problem.of_blob(
                ProblemKind.MISSING_ROW, location, tuple(ids), "file without row", repaired
            )
        )


async def _check_unindexed(
    metadata: MetadataStore,
    blobs: BlobStore,
    repair: bool,
    referenced: dict[BlobLocation, ObjectVersion],
) -> tuple[list[Problem], list[LostRow]]:
    """Stored things the index does not know (orphans.py, as GC finds them), but the
    blobs of objects without a row, which are missing-row: the orphan-file problems,
    and the bytes of lost rows that name their upload."""
    problems: list[Problem] = []
    lost_rows: list[LostRow] = []
    for storage_class in StorageClass:
        async for batch in find_unindexed(metadata, blobs, storage_class):
            lost_rows += batch.lost_rows
            for stored in batch.orphans:
                content = stored.content_hash
                version = referenced.get(BlobLocation(storage_class, content)) if content else None
                if version is not None:
                    # The blob of committed objects whose row was lost, wherever its
                    # store keeps it (a file at its content path, inline bytes): the
                    # row is to be written back at this address (missing-row).
                    lost_rows.append(LostRow(stored, version))
                    continue
                # Gone already (another pass removed it since the scan) is repaired too.
                repaired = (
                    repair and await remove_orphan(metadata, blobs, stored) is not Removal.KEPT
                )
                problems.append(
                    Problem(
                        ProblemKind.ORPHAN_FILE,
                        storage_class,
                        stored.address,
                        stored.content_hash,
                        detail=f"{stored.size_bytes} bytes, no row",
                        repaired=repaired,
                    )
                )
    return problems, lost_rows
