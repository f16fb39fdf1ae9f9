"""Resumable multipart uploads (SPEC §8.2): create a session, put parts in any order
and in parallel, inspect, list, complete into one object, abort.

A session is a metadata row; each part is durable bytes in the part store
(`PartStore`) plus a part row naming them, written in that order, so an
acknowledged part survives a crash and a part no row names is garbage (GC removes
it once its writer is gone). Completion stitches the parts into one blob, then
publishes and commits it through the process's one `GroupCommitter`, in the
transaction that marks the session completed (`UploadSessionRows.claim_completion`):
the object appears and the session closes together, or neither happens.

Hashing: each part is hashed as it arrives (its own digest). While parts arrive in
order, the process also extends a running SHA-256 of the parts so far
(`RunningHashes`), so completion reads none of those bytes again; the parts it does
not cover (out of order, replaced, received by another process) are read once at
completion. hashlib states cannot be stored, so the running hash lives in the
process's memory only; a restart costs a read of the parts, never a wrong digest,
because the state is used only for the exact (number, digest) sequence it hashed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import anyio

from juststorage.application.blob_ports import BlobStore, Hasher, PartStore, StagedBlob
from juststorage.application.commits import GroupCommitter, SealedUpload
from juststorage.application.ports import Clock, MetadataStore, UnitOfWork
from juststorage.application.quota import QuotaHold
from juststorage.application.session_records import (
    MAX_PART_NUMBER,
    MIN_PART_NUMBER,
    SessionPart,
    SessionState,
    UploadSession,
)
from juststorage.domain.conditions import WritePrecondition
from juststorage.domain.errors import (
    BadRequest,
    ChecksumMismatch,
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


@dataclass(frozen=True, slots=True)
class Completion:
    """The session's object; `created` False when an earlier completion made it."""

    version: ObjectVersion
    created: bool


@dataclass(slots=True)
class _Prefix:
    hasher: Hasher = field(default_factory=hashlib.sha256)
    digests: list[str] = field(default_factory=list)  # of parts 1..len, in order
    busy: bool = False


class RunningHashes:
    """Per process: the SHA-256 state of each session's parts 1..k, extended while
    parts arrive in order. Bounded: the least recently used sessions are dropped
    (their completion then reads their parts)."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._prefixes: OrderedDict[uuid.UUID, _Prefix] = OrderedDict()

    def claim(self, session_id: uuid.UUID, number: int) -> Hasher | None:
        """A copy of the state to feed part `number`'s bytes into, if it extends the
        prefix (or starts one: part 1); else None."""
        prefix = self._prefixes.get(session_id)
        if prefix is not None and prefix.busy:
            return None
        if prefix is not None and len(prefix.digests) >= number:
            del self._prefixes[session_id]  # a hashed part is sent again: start over
            prefix = None
        if prefix is None:
            if number != 1:
                return None
            prefix = self._prefixes[session_id] = _Prefix()
            while len(self._prefixes) > self._capacity:
                self._prefixes.popitem(last=False)
        if len(prefix.digests) != number - 1:
            return None
        self._prefixes.move_to_end(session_id)
        prefix.busy = True
        return prefix.hasher.copy()

    def settle(self, session_id: uuid.UUID, number: int, digest: ContentHash, fed: Hasher) -> None:
        """Part `number`, claimed, is stored with `digest`: the prefix now ends with it."""
        prefix = self._prefixes.get(session_id)
        if prefix is None or not prefix.busy or len(prefix.digests) != number - 1:
            return
        prefix.hasher = fed
        prefix.digests.append(digest.hex)
        prefix.busy = False

    def release(self, session_id: uuid.UUID) -> None:
        """A claimed part failed: the prefix stays where it was."""
        prefix = self._prefixes.get(session_id)
        if prefix is not None:
            prefix.busy = False

    def covering(
        self, session_id: uuid.UUID, parts: list[SessionPart]
    ) -> tuple[Hasher | None, int]:
        """The state after the first k of `parts` (numbered 1..), k as large as the
        prefix matches them by digest; (None, 0) when it covers none."""
        prefix = self._prefixes.get(session_id)
        if prefix is None or prefix.busy or not prefix.digests:
            return None, 0
        matched = 0
        for part, digest in zip(parts, prefix.digests, strict=False):
            if part.sha256.hex != digest:
                break
            matched += 1
        if matched != len(prefix.digests):
            return None, 0  # only the state after all of them is kept
        return prefix.hasher.copy(), matched

    def forget(self, session_id: uuid.UUID) -> None:
        self._prefixes.pop(session_id, None)


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
            return value[0], uuid.UUID(value[1])
    except (ValueError, binascii.Error, UnicodeError, RecursionError):
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
    ) -> None:
        self.metadata = metadata
        self.blobs = blobs
        self._parts = parts
        self.clock = clock
        self.committer = committer
        self.policy = policy
        self.quota_of = quota_of
        self.owner = owner
        self.running = RunningHashes()

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
        )
        async with self.metadata.transaction() as uow:
            await uow.sessions.add_session(session)
            await uow.commit()
        return session

    async def get(self, tenant_id: TenantId, session_id: uuid.UUID) -> UploadSession:
        """The tenant's unexpired session with its parts; NotFound otherwise (also for
        another tenant's session: existence does not leak)."""
        async with self.metadata.snapshot() as view:
            session = await view.sessions.session(session_id)
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
        session = await self.get(tenant_id, session_id)
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
            hold = QuotaHold(self.metadata, self.clock, tenant_id, quota_bytes, reservation_id)
            if declared_size is not None:
                await hold.cover(declared_size)  # before the body is read
        running = self.running.claim(session_id, number)
        keepalive = asyncio.ensure_future(_renew(hold)) if hold is not None else None
        replaced: SessionPart | None = None
        settled = False
        try:
            async with store.receive(
                session.storage_class, session_id, number, self.owner, running
            ) as staged:
                received = 0
                async for chunk in body:
                    received += len(chunk)
                    if received > limit:
                        raise PayloadTooLarge(f"objects are limited to {limit} bytes")
                    if hold is not None and declared_size is None:
                        await hold.cover_received(received, limit)
                    await staged.write(chunk)
                digest, size = await staged.seal()  # durable: file and folder fsynced
                if declared_size is not None and size != declared_size:
                    raise BadRequest("the body is shorter than its Content-Length")
                if expected_hash is not None and digest != expected_hash:
                    raise ChecksumMismatch("the part does not match X-Content-SHA256")
                if hold is not None:
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
                    await uow.commit()
                staged.keep()
                settled = True
                if running is not None:
                    self.running.settle(session_id, number, digest, running)
        except BaseException:
            if running is not None and not settled:
                self.running.release(session_id)
            if hold is not None and not settled:
                await hold.release()
            raise
        finally:
            if keepalive is not None:
                keepalive.cancel()
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
        """
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
        upload = NewUpload(
            id=session.id,  # the object's id is the session's: one object per session
            tenant_id=session.tenant_id,
            namespace=session.namespace,
            key=session.key,
            storage_class=session.storage_class,
            content_type=session.content_type,
            created_at=self.clock.now(),
            owner=self.owner,
        )

        async def close_session(uow: UnitOfWork) -> None:
            await uow.sessions.claim_completion(session.id, upload.id)

        try:
            if total <= self.policy.inline_max_bytes or total == 0:
                staging = self.blobs.stage(session.storage_class, upload.id, self.owner)
                async with staging as staged:
                    for part in chosen:
                        async for chunk in store.read(
                            session.storage_class, session.id, part.address
                        ):
                            await staged.write(chunk)
                    version = await self._commit(session, upload, staged, close_session)
            else:
                hashed, hashed_parts = self.running.covering(session.id, chosen)
                async with store.assemble(
                    session.storage_class,
                    session.id,
                    [p.address for p in chosen],
                    upload.id,
                    self.owner,
                    hashed,
                    hashed_parts,
                ) as staged:
                    version = await self._commit(session, upload, staged, close_session)
        except NotFound:
            # Completed meanwhile by a concurrent request (the same object), or gone.
            again = await self.get(tenant_id, session_id)
            if again.state is SessionState.COMPLETED:
                return Completion(await self._object_of(again), created=False)
            raise
        self.running.forget(session.id)
        await _quietly(store.remove_session(session.storage_class, session.id))
        return Completion(version, created=True)

    async def abort(self, tenant_id: TenantId, session_id: uuid.UUID) -> None:
        """Delete the session and its parts. Raises NotFound (also for another tenant's)."""
        session = await self.get(tenant_id, session_id)
        async with self.metadata.transaction() as uow:
            removed = await uow.sessions.remove_session(session.id)
            await uow.commit()
        if removed is None:
            raise NotFound(_NO_SESSION)
        self.running.forget(session.id)
        store = self._parts(session.storage_class)
        if store is not None:
            await _quietly(store.remove_session(session.storage_class, session.id))

    async def _commit(
        self,
        session: UploadSession,
        upload: NewUpload,
        staged: StagedBlob,
        close_session: Callable[[UnitOfWork], Awaitable[None]],
    ) -> ObjectVersion:
        digest, size = await staged.seal()
        if session.expected_hash is not None and digest != session.expected_hash:
            raise ChecksumMismatch("the parts do not match the session's X-Content-SHA256")
        await staged.publish()  # durable at its address before the reference commits
        sealed = SealedUpload(
            upload,
            False,
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


async def _renew(hold: QuotaHold) -> None:
    """Keep a part's quota reservation alive while its body streams."""
    while True:
        await asyncio.sleep(HEARTBEAT_SECONDS)
        with contextlib.suppress(StorageError):  # the next beat may get through
            await hold.renew()  # and `confirm()` catches a lapse


async def _quietly(removal: Awaitable[None]) -> None:
    """Best effort, shielded: a removal that fails leaves the bytes to GC."""
    with anyio.CancelScope(shield=True):
        with contextlib.suppress(StorageError):
            await removal
