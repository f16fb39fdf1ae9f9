"""Resumable multipart uploads (SPEC §8.2): create a session, put parts in any order
and in parallel, inspect, list, complete into one object, abort.

A session is a metadata row; each part is durable bytes in the part store
(`PartStore`) plus a part row naming them, written in that order, so an
acknowledged part survives a crash and a part no row names is garbage (GC removes
it once its writer is gone). Completion stitches the parts into one blob, then
publishes and commits it through the process's one `GroupCommitter`, in the
transaction that marks the session completed (`UploadSessionRows.claim_completion`):
the object appears and the session closes together, or neither happens.

Hashing: each part is hashed as it arrives (its own digest). The process also
keeps a running SHA-256 of the parts 1..k and places parts of declared length back
to back in the session's stream (`running_hashes.py`), so completion of parts sent
in order (or in parallel, in order of number) reads and copies nothing; the parts
it does not cover (out of order, replaced, received by another process) are read
once at completion. A part read back, at completion or to catch the running hash
up, is hashed on its own too and must match its row's sha256: bytes changed on
disk since the part's 200 make completion `DamagedPart` (404, send that part
again; the session stays open without that part's row, so it lists the part as
not received), never an object of bytes the client did not send.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import anyio

from juststorage.application.blob_ports import BlobStore, PartStore, StagedBlob
from juststorage.application.commits import GroupCommitter, SealedUpload
from juststorage.application.part_leases import PartLease
from juststorage.application.ports import Clock, MetadataStore, UnitOfWork
from juststorage.application.quota import QuotaHold
from juststorage.application.running_hashes import RunningHashes
from juststorage.application.session_records import (
    MAX_PART_NUMBER,
    MIN_PART_NUMBER,
    DamagedPart,
    PartCheck,
    SessionPart,
    SessionState,
    UploadSession,
)
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    NotFound,
    PayloadTooLarge,
    StorageError,
)
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    ObjectVersion,
    StorageClass,
    TenantId,
)

DEFAULT_TTL_SECONDS = 604800.0
DEFAULT_PART_MIN_BYTES = 5 * 1024 * 1024
HEARTBEAT_SECONDS = 60.0  # renews a part's quota reservation while it streams
_NO_SESSION = "no such upload session"
_COMPLETED = "the upload session is completed; its object stays, delete the object instead"
_REPLACED = (
    "a part of the upload session was replaced while it was being completed; complete it again"
)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    ttl_seconds: float = DEFAULT_TTL_SECONDS
    part_min_bytes: int = DEFAULT_PART_MIN_BYTES
    max_object_bytes: int = 5 * 1024**4
    # A whole of at most this many bytes goes through the blob store's `stage()`, so
    # it is kept inline (SPEC §8.1) when the store keeps such blobs inline.
    inline_max_bytes: int = 0


@dataclass(frozen=True, slots=True)
class SessionRequest:
    tenant_id: TenantId
    namespace: Namespace
    key: ObjectKey
    storage_class: StorageClass = StorageClass.HOT
    content_type: str = "application/octet-stream"
    expected_hash: ContentHash | None = None
    precondition: WritePrecondition = WritePrecondition()
    user_metadata: str | None = None  # given to the object at completion


@dataclass(frozen=True, slots=True)
class Completion:
    """The session's object; `created` False when an earlier completion made it."""

    version: ObjectVersion
    created: bool


def encode_cursor(key: str, session_id: uuid.UUID) -> str:
    raw = json.dumps([key, str(session_id)], ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(token: str) -> tuple[str, uuid.UUID]:
    """Raises BadRequest for anything `encode_cursor` did not produce."""
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], str)
        ):
            # A key as stored: one with a NUL or a lone surrogate is no database's text.
            return str(ObjectKey(value[0])), uuid.UUID(value[1])
    except (ValueError, binascii.Error, UnicodeError, RecursionError, BadRequest):
        pass
    raise BadRequest("malformed cursor")


class UploadSessions:
    """The session use cases; one per process (bootstrap builds it), sharing the
    uploader's `GroupCommitter`."""

    def __init__(
        self,
        *,
        metadata: MetadataStore,
        blobs: BlobStore,
        parts: Callable[[StorageClass], PartStore | None],
        clock: Clock,
        committer: GroupCommitter,
        policy: SessionPolicy,
        quota_of: Callable[[TenantId], int | None],
        owner: str = "",
        registered_classes: frozenset[StorageClass] = frozenset(),
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self._parts = parts
        self.clock = clock
        self.committer = committer
        self.policy = policy
        self.quota_of = quota_of
        self.owner = owner
        self.registered_classes = registered_classes
        self.running = RunningHashes()
        self._completing: dict[uuid.UUID, asyncio.Lock] = {}

    def part_store(self, storage_class: StorageClass) -> PartStore:
        store = self._parts(storage_class)
        if store is None:
            raise BadRequest(
                f"multipart upload sessions are not available for storage class"
                f" {storage_class.value!r} on this server"
            )
        return store

    async def create(self, request: SessionRequest) -> UploadSession:
        """Open a session. `If-None-Match`/`If-Match` are checked now (and again at
        completion). Raises PreconditionFailed, BadRequest (a class without a part
        store)."""
        self.part_store(request.storage_class)
        if request.precondition.is_conditional:
            async with self.metadata.snapshot() as view:
                current = await view.objects.newest(
                    request.tenant_id, request.namespace, request.key
                )
            request.precondition.check(current.content_hash if current else None)
        now = self.clock.now()
        session = UploadSession(
            id=uuid.uuid4(),
            tenant_id=request.tenant_id,
            namespace=request.namespace,
            key=request.key,
            storage_class=request.storage_class,
            content_type=request.content_type,
            expected_hash=request.expected_hash,
            precondition=request.precondition,
            state=SessionState.OPEN,
            created_at=now,
            expires_at=now + timedelta(seconds=self.policy.ttl_seconds),
            user_metadata=request.user_metadata,
        )
        async with self.metadata.transaction() as uow:
            await uow.sessions.add_session(session)
            await uow.commit()
        return session

    async def get(
        self, tenant_id: TenantId, session_id: uuid.UUID, *, with_parts: bool = True
    ) -> UploadSession:
        """The tenant's unexpired session, with its parts unless `with_parts` is False;
        NotFound otherwise (also for another tenant's session: existence does not leak)."""
        async with self.metadata.snapshot() as view:
            session = await view.sessions.session(session_id, with_parts=with_parts)
        return self._visible(session, tenant_id)

    async def list_open(
        self,
        tenant_id: TenantId,
        namespace: Namespace,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[UploadSession], str | None]:
        """One page of the namespace's open sessions, and the next page's cursor."""
        after = decode_cursor(cursor) if cursor is not None else None
        async with self.metadata.snapshot() as view:
            page = await view.sessions.open_page(tenant_id, namespace, after, limit + 1)
        next_cursor = None
        if len(page) > limit:
            page = page[:limit]
            next_cursor = encode_cursor(str(page[-1].key), page[-1].id)
        return page, next_cursor

    async def put_part(
        self,
        tenant_id: TenantId,
        session_id: uuid.UUID,
        number: int,
        body: AsyncIterable[bytes],
        *,
        declared_size: int | None = None,
        expected_hash: ContentHash | None = None,
    ) -> SessionPart:
        """Store part `number` durably (replacing an earlier one) and return it.

        Raises:
            BadRequest: `number` out of 1..10000, a body shorter than declared.
            NotFound: no such open session of the tenant.
            ChecksumMismatch: the part does not hash to `expected_hash` (not stored).
            PayloadTooLarge: over the object size limit, or the tenant's quota.
        """
        if not MIN_PART_NUMBER <= number <= MAX_PART_NUMBER:
            raise BadRequest(f"part numbers are {MIN_PART_NUMBER} to {MAX_PART_NUMBER}")
        # Without the parts: reading every earlier part's row for each new part made
        # a session of n parts read n²/2 rows (a 10000-part upload, 50 million).
        session = await self.get(tenant_id, session_id, with_parts=False)
        if session.state is not SessionState.OPEN:
            raise NotFound("the upload session is already completed")
        store = self.part_store(session.storage_class)
        limit = self.policy.max_object_bytes
        if declared_size is not None and declared_size > limit:
            raise PayloadTooLarge(f"objects are limited to {limit} bytes")
        quota_bytes = self.quota_of(tenant_id)
        hold = None
        reservation_id = uuid.uuid4()
        if quota_bytes is not None:
            # A part sent again replaces the one stored: the quota need not hold both.
            async with self.metadata.snapshot() as view:
                earlier = await view.sessions.part(session_id, number)
            hold = QuotaHold(
                self.metadata,
                self.clock,
                tenant_id,
                quota_bytes,
                reservation_id,
                replacing=earlier.reservation_id if earlier is not None else None,
            )
            if declared_size is not None:
                await hold.cover(declared_size)  # before the body is read
        claim = self.running.claim(
            session_id,
            number,
            declared_size,
            lambda address: store.read(session.storage_class, session_id, address),
        )
        keepalive = asyncio.ensure_future(_renew(hold)) if hold is not None else None
        lease = PartLease(self.metadata, self.clock, session_id, self.owner)
        replaced: SessionPart | None = None
        settled = False
        # Once COMMIT is sent the row may be committed whatever the commit reports (an
        # answer lost, a cancellation): nothing it names is deleted from then on.
        committing = False
        try:
            await lease.take()  # before any byte is stored: GC leaves them alone
            async with store.receive(
                session.storage_class,
                session_id,
                number,
                self.owner,
                claim.hasher if claim is not None else None,
                claim.slot if claim is not None else None,
            ) as staged:
                received = 0
                async for chunk in body:
                    received += len(chunk)
                    if received > limit:
                        raise PayloadTooLarge(f"objects are limited to {limit} bytes")
                    if declared_size is not None and received > declared_size:
                        raise BadRequest("the body is longer than its Content-Length")
                    if hold is not None and declared_size is None:
                        await hold.cover_received(received, limit)
                    await staged.write(chunk)
                digest, size = await staged.seal()  # durable: file and folder fsynced
                if declared_size is not None and size != declared_size:
                    raise BadRequest("the body is shorter than its Content-Length")
                if expected_hash is not None and digest != expected_hash:
                    raise ChecksumMismatch("the part does not match X-Content-SHA256")
                if hold is not None and declared_size is None:
                    # A chunked body reserved in steps: the part keeps its own size.
                    await hold.cover(size)
                elif hold is not None:
                    await hold.confirm(size)
                part = SessionPart(
                    number=number,
                    size_bytes=size,
                    sha256=digest,
                    address=staged.address,
                    created_at=self.clock.now(),
                    reservation_id=reservation_id if hold is not None else None,
                )
                expires_at = part.created_at + timedelta(seconds=self.policy.ttl_seconds)
                async with self.metadata.transaction() as uow:
                    replaced = await uow.sessions.put_part(session_id, part, expires_at)
                    await lease.end(uow)  # the row names the bytes from this commit on
                    # Kept from here: GC removes the bytes if no row names them.
                    staged.keep()
                    committing = True
                    await uow.commit()
                settled = True
                self.running.settle(session_id, number, digest, part.address, claim)
        except BaseException:
            if committing and not settled:
                # Perhaps stored: its stream slot is never given to a retry, and its
                # reservation is left to the row (or to lapse if there is none).
                self.running.forget(session_id)
            elif claim is not None and not settled:
                self.running.release(session_id, number, claim)
            if hold is not None and not committing:
                await hold.release()
            raise
        finally:
            if keepalive is not None:
                keepalive.cancel()
            await lease.close(ended=settled)  # after the block left: its bytes are gone
        if replaced is not None and replaced.address != part.address:
            await _quietly(store.remove(session.storage_class, session_id, replaced.address))
        return part

    async def complete(
        self, tenant_id: TenantId, session_id: uuid.UUID, numbers: list[int] | None = None
    ) -> Completion:
        """Commit the object made of the parts (`numbers`, default all, 1..N without
        gaps); a completed session answers its object again (`created` False).

        Raises:
            NotFound: no such session of the tenant (or it expired, or its object is
                gone).
            BadRequest: no parts, a gap, a part named that was not received, a part
                but the last under the minimum size.
            ChecksumMismatch: the whole does not match the session's X-Content-SHA256
                (the session stays open).
            PreconditionFailed: `If-None-Match`/`If-Match` of the create no longer hold.
            PayloadTooLarge: over the object size limit.
            Conflict: a part was replaced while the parts were being assembled (the
                session stays open with the replacement): worth completing again.
        """
        lock = self._completing.setdefault(session_id, asyncio.Lock())
        try:
            async with lock:  # one completion at a time per session in this process
                return await self._complete(tenant_id, session_id, numbers)
        finally:
            if not lock.locked() and self._completing.get(session_id) is lock:
                del self._completing[session_id]

    async def _complete(
        self, tenant_id: TenantId, session_id: uuid.UUID, numbers: list[int] | None
    ) -> Completion:
        session = await self.get(tenant_id, session_id)
        if session.state is SessionState.COMPLETED:
            return Completion(await self._object_of(session), created=False)
        store = self.part_store(session.storage_class)
        chosen = self._chosen_parts(session, numbers)
        total = sum(p.size_bytes for p in chosen)
        if total > self.policy.max_object_bytes:
            raise PayloadTooLarge(f"objects are limited to {self.policy.max_object_bytes} bytes")
        if session.precondition.is_conditional:
            async with self.metadata.snapshot() as view:
                current = await view.objects.newest(
                    session.tenant_id, session.namespace, session.key
                )
            session.precondition.check(current.content_hash if current else None)
        # A fresh id per completion: the object's, and the name its bytes are staged
        # under (completions of one session in other processes stage too).
        upload = NewUpload(
            id=uuid.uuid4(),
            tenant_id=session.tenant_id,
            namespace=session.namespace,
            key=session.key,
            storage_class=session.storage_class,
            content_type=session.content_type,
            created_at=self.clock.now(),
            owner=self.owner,
            user_metadata=session.user_metadata or None,
        )

        async def close_session(uow: UnitOfWork) -> None:
            # Its object is answered again to retries until the session expires: from
            # now, not from the last part's write.
            expires_at = self.clock.now() + timedelta(seconds=self.policy.ttl_seconds)
            stored = await uow.sessions.claim_completion(session.id, upload.id, expires_at)
            # A part replaced (or, completing every part, one added) and acknowledged
            # since the parts were read: these bytes are not what the client stored.
            # The group commit rolls the claim back with this upload.
            if _replaced(chosen, stored, every=numbers is None):
                raise Conflict(_REPLACED)

        # Where stored bytes cannot name their process (S3), a WRITING row marks the
        # assembled object as in flight until the commit, as for an upload.
        registered = session.storage_class in self.registered_classes
        keepalive: asyncio.Task[None] | None = None
        try:
            if registered:
                async with self.metadata.transaction(durable=False) as uow:
                    await uow.objects.add_writing(upload)
                    await uow.commit()
                keepalive = asyncio.ensure_future(_touch(self.metadata, upload.id))
            if total <= self.policy.inline_max_bytes or total == 0:
                staging = self.blobs.stage(session.storage_class, upload.id, self.owner)
                async with staging as staged:
                    for part in chosen:
                        # Read back: each part must still be the bytes acknowledged.
                        check = PartCheck.of(part)
                        async for chunk in store.read(
                            session.storage_class, session.id, part.address
                        ):
                            check.update(chunk)
                            await staged.write(chunk)
                        check.verify()
                    version = await self._commit(
                        session, upload, staged, close_session, registered, len(chosen)
                    )
            else:
                covering = await self.running.covering(session.id, chosen)
                # No part is placed in the prefix's stream from here on: with nothing
                # being written to it, the store may make that very file the blob.
                self.running.forget(session.id)
                async with store.assemble(
                    session.storage_class,
                    session.id,
                    chosen,
                    upload.id,
                    self.owner,
                    covering.hasher,
                    covering.parts,
                    reuse_stream=covering.quiet,
                ) as staged:
                    version = await self._commit(
                        session, upload, staged, close_session, registered, len(chosen)
                    )
        except BaseException as exc:
            if registered:
                await _discard_writing(self.metadata, upload.id)
            if not isinstance(exc, NotFound):
                raise
            # Completed meanwhile by a concurrent request (its object), or gone.
            again = await self.get(tenant_id, session_id)
            if again.state is SessionState.COMPLETED:
                return Completion(await self._object_of(again), created=False)
            if _replaced(chosen, again.parts, every=numbers is None):
                # A part's bytes went with its replacement: not lost, only changed.
                raise Conflict(_REPLACED) from exc
            if isinstance(exc, DamagedPart):
                await self._drop_damaged(session, chosen, exc.number)
            raise
        finally:
            if keepalive is not None:
                keepalive.cancel()
        self.running.forget(session.id)
        await _quietly(store.remove_session(session.storage_class, session.id))
        return Completion(version, created=True)

    async def abort(self, tenant_id: TenantId, session_id: uuid.UUID) -> None:
        """Delete the open session and its parts.

        Raises:
            NotFound: no such session of the tenant (also another tenant's).
            Conflict: the session is completed: its record stays, for retried
                completions to find its object.
        """
        session = await self.get(tenant_id, session_id, with_parts=False)
        if session.state is SessionState.COMPLETED:
            raise Conflict(_COMPLETED)
        async with self.metadata.transaction() as uow:
            removed = await uow.sessions.remove_session(session.id, open_only=True)
            await uow.commit()
        if removed is None:
            again = await self.get(tenant_id, session_id, with_parts=False)  # completed?
            raise (
                Conflict(_COMPLETED)
                if again.state is SessionState.COMPLETED
                else NotFound(_NO_SESSION)
            )
        self.running.forget(session.id)
        store = self._parts(session.storage_class)
        if store is not None:
            await _quietly(store.remove_session(session.storage_class, session.id))

    async def _drop_damaged(
        self, session: UploadSession, chosen: list[SessionPart], number: int
    ) -> None:
        """Drop the row of a part whose bytes no longer hash to it (unless it was
        replaced meanwhile): the session then lists the part as not received, so a
        client resuming from the listing sends it again; its bytes go too."""
        part = next((p for p in chosen if p.number == number), None)
        if part is None:
            return
        with anyio.CancelScope(shield=True), contextlib.suppress(StorageError):
            async with self.metadata.transaction() as uow:
                dropped = await uow.sessions.drop_part(session.id, number, part.address)
                await uow.commit()
            if dropped is not None:
                store = self.part_store(session.storage_class)
                await store.remove(session.storage_class, session.id, dropped.address)

    async def _commit(
        self,
        session: UploadSession,
        upload: NewUpload,
        staged: StagedBlob,
        close_session: Callable[[UnitOfWork], Awaitable[None]],
        registered: bool,
        parts: int,
    ) -> ObjectVersion:
        digest, size = await staged.seal()
        if session.expected_hash is not None and digest != session.expected_hash:
            raise ChecksumMismatch("the parts do not match the session's X-Content-SHA256")
        if session.user_metadata is not None:
            # Opened through the S3 gateway: S3's multipart ETag, `<whole's hash>-<parts>`.
            upload = replace(upload, s3_etag=f"{digest.hex}-{parts}")
        await staged.publish()  # durable at its address before the reference commits
        sealed = SealedUpload(
            upload,
            registered,
            digest,
            size,
            session.precondition,
            staged,
            before_commit=close_session,
        )
        committed = await self.committer.commit(sealed)
        return committed.version

    def _chosen_parts(self, session: UploadSession, numbers: list[int] | None) -> list[SessionPart]:
        by_number = {p.number: p for p in session.parts}
        wanted = sorted(by_number) if numbers is None else list(numbers)
        if not wanted:
            raise BadRequest("the upload session has no parts to complete")
        if wanted != list(range(1, len(wanted) + 1)):
            raise BadRequest("parts must be numbered 1..N without gaps, in order")
        missing = [n for n in wanted if n not in by_number]
        if missing:
            raise BadRequest(f"part {missing[0]} was not received")
        chosen = [by_number[n] for n in wanted]
        minimum = self.policy.part_min_bytes
        for part in chosen[:-1]:
            if part.size_bytes < minimum:
                raise BadRequest(
                    f"part {part.number} has {part.size_bytes} bytes; every part but the"
                    f" last must have at least {minimum}"
                )
        return chosen

    async def _object_of(self, session: UploadSession) -> ObjectVersion:
        if session.object_id is None:
            raise NotFound(_NO_SESSION)
        async with self.metadata.snapshot() as view:
            located = await view.objects.located(
                session.tenant_id, session.object_id, with_bytes=False
            )
        if located is None:
            raise NotFound("the upload session's object no longer exists")
        return located.version

    def _visible(self, session: UploadSession | None, tenant_id: TenantId) -> UploadSession:
        if (
            session is None
            or session.tenant_id != tenant_id
            or session.expires_at <= self.clock.now()
        ):
            raise NotFound(_NO_SESSION)
        return session


def _replaced(chosen: list[SessionPart], stored: Sequence[SessionPart], *, every: bool) -> bool:
    """Whether a part of `chosen` is no longer `stored` as it was; `every`: also
    whether a part not chosen is stored (chosen as every part, one arrived since)."""
    rows = {p.number: (p.address, p.sha256) for p in stored}
    if every and len(rows) != len(chosen):
        return True
    return any(rows.get(p.number) != (p.address, p.sha256) for p in chosen)


async def _renew(hold: QuotaHold) -> None:
    """Keep a part's quota reservation alive while its body streams."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        with contextlib.suppress(StorageError):  # the next beat may get through
            await hold.renew()  # and `confirm()` catches a lapse


async def _touch(metadata: MetadataStore, upload_id: uuid.UUID) -> None:
    """Keep a completion's WRITING row fresh while its parts are assembled."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        with contextlib.suppress(StorageError):
            async with metadata.transaction(durable=False) as uow:
                await uow.objects.touch_writing(upload_id)
                await uow.commit()


async def _discard_writing(metadata: MetadataStore, upload_id: uuid.UUID) -> None:
    """Best effort: drop a failed completion's WRITING row now rather than wait for GC."""
    with anyio.CancelScope(shield=True), contextlib.suppress(StorageError):
        async with metadata.transaction(durable=False) as uow:
            await uow.objects.discard_writing(upload_id)
            await uow.commit()


async def _quietly(removal: Awaitable[None]) -> None:
    """Best effort, shielded: a removal that fails leaves the bytes to GC."""
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(StorageError):
            await removal
