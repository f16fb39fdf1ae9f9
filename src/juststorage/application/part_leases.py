"""Leases on multipart upload parts being written (SPEC §8.2).

A part's bytes are stored before the row that names them, so while a part streams
in, GC and `fsck --repair` find bytes no row names. Its writer holds a lease
(`part:<session id>:<attempt>`, held by the writing process) from before the first
byte is stored until the transaction that commits the part row, which releases it
in the same step; the lease is renewed while the body streams, however slowly the
client sends it. A lease is valid until it expires, unless its holder is known to
be dead: a part of a session whose lease is valid and held by the part's owner is
never taken for leaked. This works the same wherever the bytes are (a file, an
object, an unfinished multipart upload of S3) and whoever writes them (this
process, another one, another machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta

import anyio

from juststorage.application.ports import Clock, MetadataStore, ProcessLiveness, UnitOfWork
from juststorage.domain.errors import StorageError, Unavailable

LEASE_PREFIX = "part:"
# A writer renews its lease every RENEW_SECONDS, for LEASE_SECONDS: a few renewals
# may fail (a busy database) before GC may take its part for leaked.
LEASE_SECONDS = 300.0
RENEW_SECONDS = 60.0
_LAPSED = "the part's lease lapsed while it was written; send the part again"


class PartLease:
    """The lease of one attempt at storing a part: `take()` before its bytes are
    stored, `end(uow)` in the transaction of its row, `close()` once done."""

    def __init__(
        self, metadata: MetadataStore, clock: Clock, session_id: uuid.UUID, holder: str
    ) -> None:
        self._metadata = metadata
        self._clock = clock
        self._name = f"{LEASE_PREFIX}{session_id}:{uuid.uuid4()}"
        self._holder = holder
        self._renewals: asyncio.Task[None] | None = None

    async def take(self) -> None:
        """Hold the lease (and renew it until `close()`). Raises StorageError."""
        until = self._clock.now() + timedelta(seconds=LEASE_SECONDS)
        async with self._metadata.transaction(durable=False) as uow:
            await uow.leases.claim(self._name, self._holder, until)
            await uow.commit()
        self._renewals = asyncio.ensure_future(self._renew())

    async def end(self, uow: UnitOfWork) -> None:
        """Release the lease in `uow`: the part row committed with it names the bytes.

        Raises:
            Unavailable: the lease lapsed (or was removed as stale): GC may have taken
                the bytes for leaked, so no row may name them.
        """
        if not await uow.leases.release_valid(self._name, self._holder):
            raise Unavailable(_LAPSED)

    async def close(self, *, ended: bool) -> None:
        """Stop renewing; release the lease unless `end()`'s transaction committed (best
        effort, shielded: a lease left behind expires, and GC removes it)."""
        if self._renewals is not None:
            self._renewals.cancel()
        if ended:
            return
        with anyio.CancelScope(shield=True), contextlib.suppress(StorageError):
            async with self._metadata.transaction(durable=False) as uow:
                await uow.leases.release(self._name, self._holder)
                await uow.commit()

    async def _renew(self) -> None:
        # An UPDATE, never an INSERT: a renewal still in flight when the part row's
        # transaction released the lease must not bring it back (GC would leave that
        # writer's leaked bytes of the session alone for another lease), and a lease
        # that lapsed stays lapsed (`end()` then refuses the row).
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            until = self._clock.now() + timedelta(seconds=LEASE_SECONDS)
            with contextlib.suppress(StorageError):  # the next renewal may get through
                # Not durable: after a crash its holder is dead, and the lease with it.
                async with self._metadata.transaction(durable=False) as uow:
                    renewed = await uow.leases.renew(self._name, self._holder, until)
                    await uow.commit()
                if not renewed:
                    return  # released or lapsed: nothing to renew any more


def part_writers(
    leases: list[tuple[str, str, datetime]], liveness: ProcessLiveness, now: datetime
) -> dict[uuid.UUID, set[str]]:
    """For each session, the processes holding a valid lease on a part of it."""
    writers: dict[uuid.UUID, set[str]] = {}
    for name, holder, expires_at in leases:
        session = _session_of(name)
        if session is not None and expires_at >= now and not liveness.is_dead(holder):
            writers.setdefault(session, set()).add(holder)
    return writers


def stale_leases(
    leases: list[tuple[str, str, datetime]], liveness: ProcessLiveness, now: datetime
) -> list[tuple[str, str]]:
    """(name, holder) of the part leases that are no longer valid: GC removes them."""
    return [
        (name, holder)
        for name, holder, expires_at in leases
        if expires_at < now or liveness.is_dead(holder)
    ]


def _session_of(name: str) -> uuid.UUID | None:
    session, _, _ = name.removeprefix(LEASE_PREFIX).partition(":")
    try:
        return uuid.UUID(session)
    except ValueError:
        return None
