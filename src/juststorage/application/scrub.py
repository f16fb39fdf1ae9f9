"""Scrub (SPEC §8.9): re-hash every stored blob at a fixed byte rate, pass after pass.

One scrubber runs at a time across every process sharing the database: the one
holding the `scrub` lease, renewed while it runs and taken over from a dead
holder as GC's is (gc.py). A pass walks the blob rows in (storage_class,
content_hash) order, files, S3 objects and inline rows alike (the BlobStore port
reads them all), and saves where it stands every few seconds or blobs in
`scrub_progress`, so that a restart resumes the pass instead of beginning anew.

A blob is read in ranged pieces, each its own request to the store, small enough
to be read at the scrub rate well within a request's timeout (`request_seconds`),
and the pacing charges at least `blob_cost_bytes` per blob, so a store of tiny
blobs is not opened thousands of times a second. Pacing sleeps in slices and
renews the lease between them, so no rate is too low to keep it.

A blob whose bytes do not hash to its name, that is missing, or that cannot be
read (an I/O error, shorter than its row) gets a row in `corrupt_blobs` when an
object still holds it (an unreferenced blob is GC's, not damage); the row leaves
when the blob reads back good (a re-check of the known rows at every pass start
and every `recheck_seconds`, or fsck) or when its blob row is removed (GC).
`scrub_step` is one bounded step; worker/scrub.py loops it, logs the findings and
counts the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import anyio.to_thread

from juststorage.application.blob_ports import BlobStore
from juststorage.application.ports import Clock, MetadataStore, ProcessLiveness
from juststorage.application.records import BlobAudit, BlobLocation
from juststorage.application.scrub_records import SCRUB_NAME, BlobReference, ScrubPosition
from juststorage.domain.errors import NotFound, StorageError, Unavailable
from juststorage.domain.model import ContentHash

SCRUB_LEASE = SCRUB_NAME
_HASH_IN_THREAD_BYTES = 64 * 1024
_MIN_PIECE_BYTES = 64 * 1024
_MIN_BURST_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ScrubPolicy:
    bytes_per_second: float
    lease_seconds: float = 60.0
    # A step ends (and saves its position) after this long or this many blobs.
    save_every_seconds: float = 5.0
    save_every_blobs: int = 200
    # The known-corrupt rows are read again at least this often (and at pass start).
    recheck_seconds: float = 60.0
    # A pass takes at least this long: an empty or tiny store is not re-read in a spin.
    min_pass_seconds: float = 1.0
    references_reported: int = 10
    # One read request (a ranged GET on S3) covers at most this long at the rate, so
    # that none outlives the store's request timeout (the worker: a quarter of it).
    request_seconds: float = 15.0
    # Each blob costs at least this many bytes of the rate: many tiny blobs are not
    # opened (or, on S3, requested) thousands of times a second.
    blob_cost_bytes: int = 64 * 1024
    # A blob whose reads fail as Unavailable this many steps running, while its
    # store answers its probe, is recorded unreadable instead of retried forever.
    unavailable_tries: int = 3

    @property
    def piece_bytes(self) -> int:
        """The bytes one read request of a blob covers."""
        return max(_MIN_PIECE_BYTES, int(min(self.bytes_per_second * self.request_seconds, 2**62)))

    @property
    def sleep_slice_seconds(self) -> float:
        """The longest single sleep: the lease is renewed between slices."""
        return self.lease_seconds / 6


@dataclass(frozen=True, slots=True)
class Finding:
    """A blob found corrupt (`detail` says how) or no longer corrupt (`detail` is ""):
    read back good, or with `gone` no longer stored."""

    location: BlobLocation
    detail: str
    references: tuple[BlobReference, ...] = ()
    new: bool = True  # not known corrupt before this finding
    gone: bool = False  # good: the blob's row was removed, not its bytes repaired

    @property
    def good(self) -> bool:
        return not self.detail


@dataclass(slots=True)
class ScrubReport:
    """What one step did. `ran` is False when another process holds the lease."""

    ran: bool = True
    blobs_checked: int = 0
    bytes_read: int = 0
    findings: list[Finding] = field(default_factory=list)
    passes_completed: int = 0
    position: ScrubPosition | None = None


class _LeaseLost(Exception):
    """The lease lapsed and another process took it: this step stops at once."""


class TokenBucket:
    """Paces reads at `rate` bytes per second. A chunk read takes its size in tokens,
    and a bucket in debt sleeps until it is even: the bucket holds at most `burst`
    tokens, so nothing reads more than that ahead of the rate; that credit absorbs
    the time reads themselves take."""

    def __init__(
        self,
        rate: float,
        burst: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._sleep = sleep
        self._tokens = 0.0  # no credit at start: a pass's first chunk is paced too
        self._at = monotonic()

    async def take(
        self,
        amount: int,
        *,
        slice_seconds: float = math.inf,
        between: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Take `amount` tokens, sleeping off any debt in sleeps of at most
        `slice_seconds`, with `between` awaited between them (the lease's renewal)."""
        now = self._monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= amount
        left = -self._tokens / self.rate
        while left > 0:
            nap = min(left, slice_seconds)
            await self._sleep(nap)
            left -= nap
            if left > 0 and between is not None:
                await between()


@dataclass(slots=True)
class Scrubber:
    """What a scrubbing process keeps between steps: who it is, its pacing, and when
    it last re-read the known-corrupt blobs."""

    metadata: MetadataStore
    blobs: BlobStore
    clock: Clock
    liveness: ProcessLiveness
    policy: ScrubPolicy
    on_bytes: Callable[[int], None] | None = None
    bucket: TokenBucket | None = None
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # monotonic() at which the known-corrupt blobs are due to be read again
    next_recheck: float | None = field(default=None, init=False)
    holds_lease: bool = field(default=False, init=False)
    # The blob whose last reads failed as Unavailable, and how many times running.
    unavailable: tuple[BlobLocation, int] | None = field(default=None, init=False)
    lease_renewed: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if self.bucket is None:
            # The credit absorbs the time reads themselves take: a cold 1 MiB read
            # from a disk waits for it, and a credit smaller than the rate times
            # that wait loses the difference on every chunk. A quarter second of
            # the rate, at least one read (1 MiB): no more than that is ever read
            # ahead of the rate.
            rate = self.policy.bytes_per_second
            burst = max(_MIN_BURST_BYTES, min(rate / 4, 2.0**62))
            self.bucket = TokenBucket(rate, burst, self.monotonic, self.sleep)

    @property
    def holder(self) -> str:
        return self.liveness.identity()

    async def release(self) -> None:
        """Give the lease up (the process is stopping): another may scrub at once."""
        if self.holds_lease:
            async with self.metadata.transaction() as uow:
                await uow.leases.release(SCRUB_LEASE, self.holder)
                await uow.commit()
            self.holds_lease = False


async def scrub_step(scrubber: Scrubber) -> ScrubReport:
    """Check blobs from the saved position for up to `save_every_seconds` or
    `save_every_blobs`, then save the position; at the end of the rows, begin the next
    pass. Does nothing (`ran` False) while another live process holds the lease."""
    policy = scrubber.policy
    if not await _claim(scrubber):
        scrubber.holds_lease = False
        return ScrubReport(ran=False)
    scrubber.holds_lease = True
    report = ScrubReport()
    async with scrubber.metadata.snapshot() as view:
        position = await view.scrub.position(SCRUB_NAME)
    if position is None:
        position = ScrubPosition(pass_number=1, started_at=scrubber.clock.now())
    step_began = scrubber.monotonic()
    pass_start = position.after is None and position.blobs_done == 0
    try:
        if pass_start or scrubber.next_recheck is None or step_began >= scrubber.next_recheck:
            await _recheck_known(scrubber, report)
            # Paced like the pass, a re-read of large corrupt blobs may take longer than
            # `recheck_seconds`: the pass then gets at least as long before the next one.
            took = scrubber.monotonic() - step_began
            scrubber.next_recheck = scrubber.monotonic() + max(policy.recheck_seconds, took)
        after = BlobLocation(position.after[0], position.after[1]) if position.after else None
        async with scrubber.metadata.snapshot() as view:
            page = await view.blobs.audit(after, policy.save_every_blobs)
        for audit in page:
            await _check_row(scrubber, audit, report)
            position = replace(
                position,
                after=(audit.location.storage_class, audit.location.content_hash),
                blobs_done=position.blobs_done + 1,
                bytes_done=position.bytes_done + audit.size_bytes,
            )
            report.blobs_checked += 1
            if scrubber.monotonic() - step_began >= policy.save_every_seconds:
                break
        else:
            if len(page) < policy.save_every_blobs:
                position = await _finish_pass(scrubber, position)
                report.passes_completed += 1
    except _LeaseLost:
        scrubber.holds_lease = False
    except Unavailable:
        # A store that did not answer fails the step; what it checked before stays
        # checked (the metadata database answering, the position is saved).
        with contextlib.suppress(StorageError):
            await _save(scrubber, position)
        raise
    await _save(scrubber, position)
    report.position = position
    return report


async def _save(scrubber: Scrubber, position: ScrubPosition) -> None:
    async with scrubber.metadata.transaction() as uow:
        # Saved only under a valid lease: a holder that lost it must not move the
        # position of the one that took over.
        if await uow.leases.renew(SCRUB_LEASE, scrubber.holder, _lease_until(scrubber)):
            await uow.scrub.save_position(SCRUB_NAME, position)
            await uow.commit()
            scrubber.lease_renewed = scrubber.monotonic()
        else:
            scrubber.holds_lease = False


async def _finish_pass(scrubber: Scrubber, position: ScrubPosition) -> ScrubPosition:
    """The end of the rows: wait out `min_pass_seconds`, then the next pass begins."""
    now = scrubber.clock.now()
    elapsed = (now - position.started_at).total_seconds()
    if elapsed < scrubber.policy.min_pass_seconds:
        await _wait(scrubber, scrubber.policy.min_pass_seconds - elapsed)
        now = scrubber.clock.now()
    return ScrubPosition(
        pass_number=position.pass_number + 1,
        started_at=now,
        passes_completed=position.passes_completed + 1,
        last_pass_started_at=position.started_at,
        last_pass_ended_at=now,
    )


async def _wait(scrubber: Scrubber, seconds: float) -> None:
    """Sleep, renewing the lease meanwhile."""
    deadline = scrubber.monotonic() + seconds
    while (left := deadline - scrubber.monotonic()) > 0:
        await scrubber.sleep(min(left, scrubber.policy.sleep_slice_seconds))
        await _keep_lease(scrubber)


def _lease_until(scrubber: Scrubber) -> datetime:
    return scrubber.clock.now() + timedelta(seconds=scrubber.policy.lease_seconds)


async def _claim(scrubber: Scrubber) -> bool:
    holder = scrubber.holder
    until = _lease_until(scrubber)
    async with scrubber.metadata.transaction() as uow:
        claimed = await uow.leases.claim(SCRUB_LEASE, holder, until)
        if not claimed:
            # A scrubber killed mid-pass leaves its lease behind; take it over if its
            # holder is certainly dead rather than wait for it to expire.
            current = await uow.leases.holder_of(SCRUB_LEASE)
            if current is not None and scrubber.liveness.is_dead(current):
                claimed = await uow.leases.claim(SCRUB_LEASE, holder, until, replacing=current)
        await uow.commit()
    if claimed:
        scrubber.lease_renewed = scrubber.monotonic()
    return claimed


async def _keep_lease(scrubber: Scrubber) -> None:
    """Renew the lease once a third of its time has gone by; raise _LeaseLost if it
    lapsed meanwhile (another process may be scrubbing now)."""
    if scrubber.monotonic() - scrubber.lease_renewed < scrubber.policy.lease_seconds / 3:
        return
    async with scrubber.metadata.transaction() as uow:
        renewed = await uow.leases.renew(SCRUB_LEASE, scrubber.holder, _lease_until(scrubber))
        await uow.commit()
    if not renewed:
        raise _LeaseLost
    scrubber.lease_renewed = scrubber.monotonic()


async def _pace(scrubber: Scrubber, amount: int) -> None:
    """Wait until `amount` more bytes fit the rate, keeping the lease meanwhile."""
    bucket = scrubber.bucket
    assert bucket is not None

    async def keep() -> None:
        await _keep_lease(scrubber)

    await bucket.take(amount, slice_seconds=scrubber.policy.sleep_slice_seconds, between=keep)
    await _keep_lease(scrubber)


async def _paced_digest(scrubber: Scrubber, location: BlobLocation, size: int) -> ContentHash:
    """The blob's SHA-256, read at the scrub rate in pieces of at most `piece_bytes`,
    each its own read request.

    Raises:
        NotFound: the blob is gone.
        Unavailable: its store did not answer.
        StorageError: it could not be read (an I/O error, shorter than its row says).
    """
    hasher = hashlib.sha256()
    piece = scrubber.policy.piece_bytes
    offset = 0
    while True:
        length = min(piece, size - offset)
        reader = await scrubber.blobs.open(location, first=offset, length=length, background=True)
        try:
            async for chunk in reader.chunks(offset, length):
                if len(chunk) >= _HASH_IN_THREAD_BYTES:
                    await anyio.to_thread.run_sync(hasher.update, chunk)
                else:
                    hasher.update(chunk)
                if scrubber.on_bytes is not None:
                    scrubber.on_bytes(len(chunk))
                await _pace(scrubber, len(chunk))
        finally:
            await reader.close()
        offset += length
        if offset >= size:
            break
    if size < scrubber.policy.blob_cost_bytes:
        await _pace(scrubber, scrubber.policy.blob_cost_bytes - size)
    return ContentHash(hasher.hexdigest())


async def _verdict(scrubber: Scrubber, location: BlobLocation, size: int) -> str | None:
    """How the blob is damaged ("" when it is good), or None when there is nothing to
    say about these bytes: its row is gone or moved meanwhile, or no object holds it
    (GC is removing it; a damaged blob nobody can download is not worth a page)."""
    try:
        digest = await _paced_digest(scrubber, location, size)
    except NotFound:
        if await _moved(scrubber, location):
            return None
        # Every blob of an unmounted or unreachable root reads as missing: only a
        # root that answers its probe makes a missing blob a finding.
        await scrubber.blobs.probe(location.storage_class)
        return "missing"
    except Unavailable as exc:
        # The store is down, not the blob: the step fails and is retried. Unless this
        # blob alone fails, again and again, while its store answers.
        if not await _gives_up_on(scrubber, location):
            raise
        if await _moved(scrubber, location):
            return None
        tries = scrubber.policy.unavailable_tries
        return f"unreadable: {exc.message} ({tries} tries, the store answering)"
    except StorageError as exc:
        if await _moved(scrubber, location):
            return None
        return f"unreadable: {exc.message}"
    if scrubber.unavailable is not None and scrubber.unavailable[0] == location:
        scrubber.unavailable = None
    if digest == location.content_hash:
        return ""
    if await _moved(scrubber, location):
        return None
    return f"bytes hash to sha256:{digest.hex}"


async def _gives_up_on(scrubber: Scrubber, location: BlobLocation) -> bool:
    """Count one more Unavailable read of `location`; True once it reached
    `unavailable_tries` in a row and the store answers its probe (which raises
    Unavailable if it does not)."""
    last = scrubber.unavailable
    count = last[1] + 1 if last is not None and last[0] == location else 1
    scrubber.unavailable = (location, count)
    if count < scrubber.policy.unavailable_tries:
        return False
    await scrubber.blobs.probe(location.storage_class)
    scrubber.unavailable = None
    return True


async def _moved(scrubber: Scrubber, location: BlobLocation) -> bool:
    """Whether the blob row is gone or now records another address (GC removed it,
    migrate-blobs moved it) since the pass read it, or no reference holds it (GC
    unlinks an unreferenced blob before it commits the row's removal)."""
    async with scrubber.metadata.snapshot() as view:
        row = await view.scrub.blob_row(location)
    return row is None or row[1] != location.address or row[2] == 0


async def _check_row(scrubber: Scrubber, audit: BlobAudit, report: ScrubReport) -> None:
    location = audit.location
    detail = await _verdict(scrubber, location, audit.size_bytes)
    report.bytes_read += audit.size_bytes
    if detail is None:
        return
    if detail:
        finding = await _record_corrupt(scrubber, location, detail)
        if finding is not None:
            report.findings.append(finding)
    else:
        await _record_good(scrubber, location, report)


async def _record_corrupt(
    scrubber: Scrubber, location: BlobLocation, detail: str
) -> Finding | None:
    """Record the blob corrupt: None if its row went away since the re-check."""
    async with scrubber.metadata.transaction() as uow:
        new = await uow.scrub.mark_corrupt(location, detail, scrubber.clock.now())
        references = await uow.scrub.referencing(location, scrubber.policy.references_reported)
        await uow.commit()
    if new is None:
        return None
    return Finding(location, detail, tuple(references), new)


async def _record_good(scrubber: Scrubber, location: BlobLocation, report: ScrubReport) -> None:
    async with scrubber.metadata.transaction() as uow:
        known = await uow.scrub.clear_corrupt(location)
        await uow.commit()
    if known:
        report.findings.append(Finding(location, "", new=False))


async def _recheck_known(scrubber: Scrubber, report: ScrubReport) -> None:
    """Read the known-corrupt blobs again: a repaired one (fsck --repair, an upload
    that put the bytes back) leaves `corrupt_blobs`, one whose row is gone too."""
    async with scrubber.metadata.snapshot() as view:
        known = await view.scrub.corrupt(1000)
    for corrupt in known:
        location = BlobLocation(corrupt.storage_class, corrupt.content_hash)
        async with scrubber.metadata.snapshot() as view:
            row = await view.scrub.blob_row(location)
        if row is None:
            async with scrubber.metadata.transaction() as uow:
                await uow.scrub.clear_corrupt(location)
                await uow.commit()
            report.findings.append(Finding(location, "", new=False, gone=True))
            continue
        size, address, _ = row
        location = BlobLocation(corrupt.storage_class, corrupt.content_hash, address)
        detail = await _verdict(scrubber, location, size)
        report.bytes_read += size
        if detail == "":
            await _record_good(scrubber, location, report)
        elif detail is None:
            # Moved (the next pass reads it where it is now) or no longer referenced
            # (nothing to restore): not a known corrupt blob any more.
            async with scrubber.metadata.transaction() as uow:
                await uow.scrub.clear_corrupt(location)
                await uow.commit()
        else:
            async with scrubber.metadata.transaction() as uow:
                await uow.scrub.mark_corrupt(location, detail, corrupt.found_at)
                await uow.commit()
