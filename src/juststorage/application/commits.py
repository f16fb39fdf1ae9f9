"""Group commit: concurrent uploads share one metadata transaction and one flush.

A durable commit costs one flush of the database's log (an fsync), whatever it
holds. Uploads that finish while a commit is being flushed queue up; the next
transaction commits all of them at once (up to `max_batch`), so under load the
flush is shared instead of paid per upload. Each upload still gets its own
outcome: a failed precondition or a vanished `WRITING` row fails that upload
alone, and nothing is acknowledged before the shared commit is durable.

Lock order inside a batch (no deadlock between processes on PostgreSQL): key
locks in key order, then blob rows in (class, hash) order. A batch holds at
most one upload per key, so each precondition is checked against what is
committed; later uploads of the same key wait for the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from uuid import UUID

import anyio

from juststorage.application.blob_ports import StagedBlob
from juststorage.application.ports import MetadataStore, UnitOfWork
from juststorage.application.records import BlobLocation, is_inline_address
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import Conflict, NotFound, PreconditionFailed, Unavailable
from juststorage.domain.model import ContentHash, NewUpload, ObjectVersion

DEFAULT_MAX_BATCH = 64
# At most this many bytes held in memory (inline blobs) go into one batch, beyond its
# first upload: SQLite writes them on the event loop inside the transaction, and a
# batch that outgrows its page cache would spill pages to the WAL from the loop.
INLINE_BATCH_BYTES = 2 * 1024 * 1024
# The one answer of an upload by hash that commits nothing: the same whatever the reason.
NOT_HELD = "this tenant stores no object with that content and size in that storage class"


@dataclass(frozen=True, slots=True)
class SealedUpload:
    """An upload whose bytes are durable and published, waiting for its commit.

    `registered`: the upload wrote a `WRITING` row, which the commit turns into
    the committed version; otherwise the commit inserts the committed row.
    `reserved`: the upload holds a quota reservation (its upload id), which the
    commit deletes in the transaction that adds its bytes to the tenant's usage.
    `by_reference`: the upload brought no bytes (upload by hash, SPEC §8.3): it
    commits only if the blob still holds a reference when its row is locked
    (`BlobIndex.acquire_referenced`), else it fails alone with `NotFound`.
    `before_commit`: runs in the transaction before the committed row is written
    (after the precondition); an error from it, or from the row's write after it,
    refuses this upload alone: the batch's transaction is rolled back, with what
    `before_commit` wrote, and redone without it (a multipart session closing with
    its object, sessions.py).
    """

    upload: NewUpload
    registered: bool
    content_hash: ContentHash
    size_bytes: int
    precondition: WritePrecondition
    staged: StagedBlob
    reserved: bool = False
    by_reference: bool = False
    before_commit: Callable[[UnitOfWork], Awaitable[None]] | None = None

    @property
    def key_path(self) -> tuple[str, str, str]:
        return (str(self.upload.tenant_id), str(self.upload.namespace), str(self.upload.key))


@dataclass(frozen=True, slots=True)
class Committed:
    """A committed upload: its version, whether `confirm()` made its bytes the blob, and
    whether the blob row names another copy than this upload's (a dedup hit)."""

    version: ObjectVersion
    confirmed: bool
    elsewhere: bool = False


@dataclass(eq=False)
class _Waiter:
    sealed: SealedUpload
    outcome: asyncio.Future[Committed] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def succeed(self, committed: Committed) -> None:
        if not self.outcome.done():
            self.outcome.set_result(committed)

    def fail(self, error: BaseException) -> None:
        if not self.outcome.done():
            self.outcome.set_exception(error)


class _UploadFailed(Exception):
    """One upload's step failed after its writes began: redo the batch without it."""

    def __init__(self, waiter: _Waiter, error: Exception) -> None:
        super().__init__(str(error))
        self.waiter = waiter
        self.error = error


class _InlineRowsFailed(Exception):
    """Writing the batch's inline rows in one statement failed: redo the batch with a
    statement per row, so that only the upload whose row fails is refused."""


class GroupCommitter:
    """Commits sealed uploads in shared transactions; one per metadata store and process."""

    def __init__(self, metadata: MetadataStore, *, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self._metadata = metadata
        self._max_batch = max_batch
        self._queue: list[_Waiter] = []
        self._leader: asyncio.Task[None] | None = None

    async def commit(self, upload: SealedUpload) -> Committed:
        """The committed version once its transaction is durable.

        Raises:
            PreconditionFailed: `If-None-Match` / `If-Match` do not hold at commit.
            NotFound: the upload's `WRITING` row is gone (GC reaped it).
            StorageError: the transaction, or this upload's `confirm()`, failed.
        If the caller is cancelled before its batch starts, the upload is not committed;
        once its batch runs, the cancellation waits for the batch's outcome, so the
        caller's cleanup (which deletes a staged copy the index did not record as the
        blob) never runs while the batch may still commit that copy.
        """
        waiter = _Waiter(upload)
        self._queue.append(waiter)
        if self._leader is None:
            # A task of its own: a caller's cancellation never aborts the others' batch.
            self._leader = asyncio.ensure_future(self._lead())
        try:
            return await asyncio.shield(waiter.outcome)
        except asyncio.CancelledError:
            if waiter in self._queue:
                self._queue.remove(waiter)
            elif not waiter.outcome.done():
                # Its batch is running and may commit it: wait for the outcome, shielded
                # from anyio's cancel scopes and through asyncio's repeated cancels.
                waiter.outcome.add_done_callback(_observe)
                with anyio.CancelScope(shield=True):
                    while not waiter.outcome.done():
                        with contextlib.suppress(asyncio.CancelledError):
                            await asyncio.wait([waiter.outcome])
            raise

    async def _lead(self) -> None:
        try:
            while self._queue:
                await self._commit_batch(self._take_batch())
        finally:
            self._leader = None
            # Stopped by a cancellation (a shutdown) with uploads still queued: none of
            # them was begun, so they fail now instead of waiting for a leader that is gone.
            queued, self._queue = self._queue, []
            for waiter in queued:
                waiter.fail(Unavailable("the server is stopping; the upload was not stored"))

    def _take_batch(self) -> list[_Waiter]:
        batch: list[_Waiter] = []
        keys: set[tuple[str, str, str]] = set()
        inline_bytes = 0
        for waiter in list(self._queue):
            if len(batch) == self._max_batch:
                break
            sealed = waiter.sealed
            if sealed.key_path in keys:
                continue  # the next batch: it must see this batch's commit of the key
            keys.add(sealed.key_path)  # also when it waits: no later upload of its key
            held = sealed.size_bytes if is_inline_address(sealed.staged.address) else 0
            if batch and inline_bytes + held > INLINE_BATCH_BYTES:
                continue  # the next batch: this one holds enough bytes in memory
            inline_bytes += held
            batch.append(waiter)
            self._queue.remove(waiter)
        return batch

    async def _commit_batch(self, batch: list[_Waiter]) -> None:
        remaining = batch
        inline_together = True
        while remaining:
            try:
                versions = await self._transaction(remaining, inline_together=inline_together)
            except _InlineRowsFailed:
                inline_together = False
                continue
            except _UploadFailed as failed:
                failed.waiter.fail(failed.error)
                remaining = [w for w in remaining if not w.outcome.done()]
                continue
            except Exception as exc:
                for waiter in remaining:
                    waiter.fail(exc)
                if isinstance(exc, Unavailable):
                    # The database refused the batch: the uploads queued behind it would
                    # wait a whole transaction more (its timeouts) for the same answer.
                    queued, self._queue = self._queue, []
                    for waiter in queued:
                        waiter.fail(exc)
                return
            except BaseException as exc:
                for waiter in remaining:
                    waiter.fail(exc)
                raise
            for waiter in remaining:
                committed = versions.get(waiter.sealed.upload.id)
                if committed is not None:
                    waiter.succeed(committed)
            return

    async def _transaction(
        self, batch: list[_Waiter], *, inline_together: bool
    ) -> dict[UUID, Committed]:
        """One durable transaction for the batch; uploads refused inside it are failed
        at once and left out of the result. Inline rows are written in one statement
        if `inline_together`, else each by its upload's `confirm()`."""
        ordered = sorted(batch, key=lambda w: w.sealed.key_path)
        async with self._metadata.transaction() as uow:
            await uow.objects.lock_keys(
                [
                    (w.sealed.upload.tenant_id, w.sealed.upload.namespace, w.sealed.upload.key)
                    for w in ordered
                ]
            )
            versions = await _commit_rows(uow, ordered)
            accepted = [w for w in ordered if w.sealed.upload.id in versions]
            # The references before confirm(): from here no GC pass may remove the blobs.
            # A row says where its blob lives: this upload's address, or an older copy's.
            blobs = await _acquire_blobs(uow, _in_blob_order(accepted))
            # Blobs kept inline whose bytes only need writing: one statement for all.
            inline = [
                (w, data)
                for w in accepted
                if inline_together
                and (data := w.sealed.staged.inline_bytes(blobs[w.sealed.upload.id])) is not None
            ]
            try:
                stored = await uow.blobs.store_inline_many(
                    [(blobs[w.sealed.upload.id], data) for w, data in inline]
                )
            except Unavailable:
                raise  # the database, not a row: each row alone would fail the same way
            except Exception as exc:
                if len(inline) == 1:
                    raise _UploadFailed(inline[0][0], exc) from exc
                raise _InlineRowsFailed from exc
            confirmed = {w.sealed.upload.id: s for (w, _), s in zip(inline, stored, strict=True)}
            for waiter in accepted:
                upload_id = waiter.sealed.upload.id
                if upload_id in confirmed:
                    continue
                try:
                    # An inline blob's bytes are written here, in this transaction.
                    confirmed[upload_id] = await waiter.sealed.staged.confirm(
                        blobs[upload_id], uow=uow
                    )
                except Exception as exc:
                    raise _UploadFailed(waiter, exc) from exc
            await uow.commit()
        staged = {w.sealed.upload.id: w.sealed.staged.address for w in accepted}
        return {
            i: Committed(version, confirmed[i], blobs[i].address != staged[i])
            for i, version in versions.items()
        }


async def _commit_rows(uow: UnitOfWork, ordered: list[_Waiter]) -> dict[UUID, ObjectVersion]:
    """The committed rows of the batch's uploads (in the open transaction): the
    unconditional uploads without a `WRITING` row or a reservation, the usual small
    upload, in one `insert_committed_many`; every other one checked and written
    alone. Refused uploads are failed and left out."""
    versions: dict[UUID, ObjectVersion] = {}
    plain = [w for w in ordered if _plain(w.sealed)]
    inserted = await uow.objects.insert_committed_many(
        [(w.sealed.upload, w.sealed.content_hash, w.sealed.size_bytes) for w in plain]
    )
    for version in inserted:
        versions[version.id] = version
    for waiter in ordered:
        if not _plain(waiter.sealed):
            await _commit_row(uow, waiter, versions)
    return versions


async def _acquire_blobs(uow: UnitOfWork, in_blob_order: list[_Waiter]) -> dict[UUID, BlobLocation]:
    """A reference on each upload's blob, taken in blob order (the lock order).

    One `acquire_many` for the usual batch. An upload by hash brought no bytes to put
    back if GC took the blob: only a blob that still has a reference (and so its
    bytes) may gain one, so a batch holding one takes its references one by one.
    """
    located = [
        (
            BlobLocation(
                w.sealed.upload.storage_class, w.sealed.content_hash, w.sealed.staged.address
            ),
            w.sealed.size_bytes,
        )
        for w in in_blob_order
    ]
    if not any(w.sealed.by_reference for w in in_blob_order):
        held = await uow.blobs.acquire_many(located)
        return {w.sealed.upload.id: where for w, where in zip(in_blob_order, held, strict=True)}
    blobs: dict[UUID, BlobLocation] = {}
    for waiter, (fresh, size) in zip(in_blob_order, located, strict=True):
        if waiter.sealed.by_reference:
            referenced = await uow.blobs.acquire_referenced(fresh, size)
            if referenced is None:
                raise _UploadFailed(waiter, NotFound(NOT_HELD))
            blobs[waiter.sealed.upload.id] = referenced
        else:
            blobs[waiter.sealed.upload.id] = await uow.blobs.acquire(fresh, size)
    return blobs


def _plain(sealed: SealedUpload) -> bool:
    return not (
        sealed.precondition.is_conditional
        or sealed.registered
        or sealed.reserved
        or sealed.before_commit is not None
    )


async def _commit_row(
    uow: UnitOfWork, waiter: _Waiter, versions: dict[UUID, ObjectVersion]
) -> bool:
    """Check the precondition and record the committed row (in the open transaction).

    False, with the waiter failed, when the precondition refuses the upload: nothing
    was written. A refusal from `before_commit` on, whose writes (a session closed,
    its parts dropped) the transaction already holds, raises `_UploadFailed`: the
    batch is rolled back and redone without this upload.
    """
    sealed, upload = waiter.sealed, waiter.sealed.upload
    try:
        if sealed.precondition.is_conditional:  # else any current version will do
            current = await uow.objects.newest(upload.tenant_id, upload.namespace, upload.key)
            sealed.precondition.check(current.content_hash if current else None)
    except PreconditionFailed as exc:
        waiter.fail(exc)
        return False
    try:
        if sealed.before_commit is not None:
            await sealed.before_commit(uow)
        if sealed.registered:
            # An UPDATE of its own WRITING row: nothing is written when that row is gone.
            version = await uow.objects.commit_upload(
                upload.id, sealed.content_hash, sealed.size_bytes, s3_etag=upload.s3_etag
            )
        else:
            version = await uow.objects.insert_committed(
                upload, sealed.content_hash, sealed.size_bytes
            )
        if sealed.reserved:
            await uow.quota.settle(upload.id)
    except (PreconditionFailed, NotFound, Conflict) as exc:
        # Not just failed here: the writes before the refusal would commit with the batch.
        raise _UploadFailed(waiter, exc) from exc
    versions[upload.id] = version
    return True


def _in_blob_order(waiters: Iterable[_Waiter]) -> list[_Waiter]:
    return sorted(
        waiters, key=lambda w: (w.sealed.upload.storage_class.value, w.sealed.content_hash.hex)
    )


def _observe(outcome: asyncio.Future[Committed]) -> None:
    if not outcome.cancelled():
        outcome.exception()
