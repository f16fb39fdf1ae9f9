"""The running SHA-256 of a multipart upload session's parts 1..k, and where in the
session's stream the next parts go (SPEC §8.2; used by `sessions.py`).

Per process and in memory: `hashlib` states cannot be stored. The state covers the
parts 1..k in order, each with the digest its row records; completion uses it only
when those digests are the rows' (so a restart, another process, or a part sent
again costs a read of the parts, never a wrong digest).

Two ways extend it:
- *feeding*: the next part in order, while nothing else feeds the state, is hashed
  into a copy of it as its bytes arrive (kept when its row commits);
- *catching up*: a part stored in the stream while another was being fed (parts
  sent in parallel) is read back from the stream once the parts before it are
  hashed, in the background, while the upload goes on (from the page cache).

The stream: a part whose length is declared is given a slot, the next offset after
the slots given before, so parts sent in parallel land back to back in one file
(filesystem part store); a part that overtakes others reserves their slots at the
length of the slots before (clients send parts of one size but the last). A slot
is given again only to a retry of a part never stored, with the same length; a
part stored, or sent with another length, goes to a file of its own. So no stored
part's bytes are ever written again.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import anyio.to_thread

from juststorage.application import twin_hashes
from juststorage.application.blob_ports import Hasher
from juststorage.application.session_records import RANGE_MARK, SessionPart, StreamSlot
from juststorage.domain.errors import StorageError
from juststorage.domain.model import ContentHash

# A part's bytes by its address (the part store's `read` for the session).
ReadPart = Callable[[str], AsyncIterator[bytes]]


@dataclass(eq=False, slots=True)
class _Prefix:
    read: ReadPart
    stream: str = field(default_factory=lambda: uuid.uuid4().hex)
    hasher: Hasher = field(default_factory=hashlib.sha256)
    digests: list[str] = field(default_factory=list)  # parts 1..len hashed, in order
    slots: list[tuple[int, int]] = field(default_factory=list)  # (offset, length) of 1..len
    stored: dict[int, tuple[str, str]] = field(default_factory=dict)  # part: (digest, address)
    in_flight: set[int] = field(default_factory=set)  # parts being written to their slot
    feeding: int | None = None  # the part whose bytes a copy of `hasher` takes now
    catching_up: asyncio.Task[None] | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """What part n may do: feed `hasher` its bytes (it extends the hashed prefix), go
    to `slot` in the session's stream; either may be None, not both."""

    hasher: Hasher | None
    slot: StreamSlot | None


@dataclass(frozen=True, slots=True)
class Covering:
    """The state after the first `parts` of a completion's parts (None: none), and
    whether nothing is being written to the stream (`quiet`): only then may the
    stream itself become the blob."""

    hasher: Hasher | None
    parts: int
    quiet: bool


class RunningHashes:
    """Bounded: the least recently used sessions are dropped (their completion then
    reads their parts)."""

    def __init__(self, capacity: int = 256) -> None:
        self._capacity = capacity
        self._prefixes: OrderedDict[uuid.UUID, _Prefix] = OrderedDict()

    def claim(
        self, session_id: uuid.UUID, number: int, declared: int | None, read: ReadPart
    ) -> Claim | None:
        """Where part `number` goes and whether it feeds the state; None: neither (a
        file of its own, read at completion)."""
        prefix = self._prefixes.get(session_id)
        if prefix is None:
            if number != 1 and declared is None:
                return None
            prefix = self._prefixes[session_id] = _Prefix(read)
            while len(self._prefixes) > self._capacity:
                _, dropped = self._prefixes.popitem(last=False)
                _stop(dropped)
        self._prefixes.move_to_end(session_id)
        fresh = number not in prefix.stored and number not in prefix.in_flight
        slot = None
        if declared is not None and fresh:
            if number > len(prefix.slots) + 1:
                # Parts sent in parallel overtake each other: the parts before this
                # one are taken to be as long as those before (clients send parts of
                # one size but the last); one that is not goes to a file of its own.
                size = prefix.slots[0][1] if prefix.slots else declared
                if all(length == size for _, length in prefix.slots):
                    while len(prefix.slots) < number - 1:
                        end = sum(prefix.slots[-1]) if prefix.slots else 0
                        prefix.slots.append((end, size))
            if number == len(prefix.slots) + 1:
                end = sum(prefix.slots[-1]) if prefix.slots else 0
                prefix.slots.append((end, declared))
            if number <= len(prefix.slots) and prefix.slots[number - 1][1] == declared:
                slot = StreamSlot(prefix.stream, prefix.slots[number - 1][0])
                prefix.in_flight.add(number)
        hasher = None
        if prefix.feeding is None and len(prefix.digests) == number - 1 and fresh:
            prefix.feeding = number
            hasher = prefix.hasher.copy()
        if slot is None and hasher is None:
            return None
        return Claim(hasher, slot)

    def settle(
        self,
        session_id: uuid.UUID,
        number: int,
        digest: ContentHash,
        address: str,
        claim: Claim | None,
    ) -> None:
        """Part `number` is stored (its row committed) at `address` with `digest`."""
        prefix = self._prefixes.get(session_id)
        if prefix is None:
            return
        prefix.stored[number] = (digest.hex, address)
        prefix.in_flight.discard(number)
        if claim is not None and claim.hasher is not None and prefix.feeding == number:
            prefix.feeding = None
            if len(prefix.digests) == number - 1:
                prefix.hasher = claim.hasher
                prefix.digests.append(digest.hex)
        self._catch_up(prefix)

    def release(self, session_id: uuid.UUID, number: int, claim: Claim) -> None:
        """A claimed part failed: its slot waits for a retry, the state stays."""
        prefix = self._prefixes.get(session_id)
        if prefix is None:
            return
        if claim.slot is not None:
            prefix.in_flight.discard(number)
        if claim.hasher is not None and prefix.feeding == number:
            prefix.feeding = None
        self._catch_up(prefix)

    async def covering(self, session_id: uuid.UUID, parts: list[SessionPart]) -> Covering:
        """How much of `parts` (numbered 1..) the state covers, once the parts already
        stored are caught up. Only the state after all hashed parts is kept, so it
        covers none unless their digests are the first of `parts`'."""
        prefix = self._prefixes.get(session_id)
        if prefix is None:
            return Covering(None, 0, False)
        while prefix.catching_up is not None and not prefix.catching_up.done():
            await asyncio.wait([prefix.catching_up])
        quiet = not prefix.in_flight and prefix.feeding is None
        matched = 0
        for part, digest in zip(parts, prefix.digests, strict=False):
            if part.sha256.hex != digest:
                break
            matched += 1
        if matched == 0 or matched != len(prefix.digests):
            return Covering(None, 0, quiet)
        return Covering(prefix.hasher.copy(), matched, quiet)

    def forget(self, session_id: uuid.UUID) -> None:
        """No part of this prefix is placed or hashed any more (completion, abort)."""
        prefix = self._prefixes.pop(session_id, None)
        if prefix is not None:
            _stop(prefix)

    def _catch_up(self, prefix: _Prefix) -> None:
        if prefix.catching_up is None or prefix.catching_up.done():
            prefix.catching_up = asyncio.ensure_future(_advance(prefix))


async def _advance(prefix: _Prefix) -> None:
    """Hash the stream's stored parts that follow the hashed prefix, in order."""
    while prefix.feeding is None:
        number = len(prefix.digests) + 1
        stored = prefix.stored.get(number)
        if stored is None or RANGE_MARK not in stored[1]:
            return  # not stored yet, or not in the local stream (read at completion)
        prefix.feeding = number
        hasher = prefix.hasher.copy()
        own = hashlib.sha256()  # the part alone: its bytes must still be its row's
        try:
            async for chunk in prefix.read(stored[1]):
                await anyio.to_thread.run_sync(twin_hashes.update_both, own, hasher, chunk)
        except StorageError:
            return  # completion reads it
        finally:
            prefix.feeding = None
        if own.hexdigest() != stored[0]:
            return  # changed since its 200: completion reads it again and refuses it
        if prefix.stored.get(number) == stored and len(prefix.digests) == number - 1:
            prefix.hasher = hasher
            prefix.digests.append(stored[0])


def _stop(prefix: _Prefix) -> None:
    task = prefix.catching_up
    if task is not None:
        task.cancel()
        task.add_done_callback(_observe)


def _observe(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: nobody waits for a dropped prefix
