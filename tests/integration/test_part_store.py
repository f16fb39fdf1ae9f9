"""The filesystem part store on real files (SPEC §8.2), and the running hash of a
session's in-order parts: completion copies each byte once, in the kernel where it
can, and reads only the parts the running hash does not cover."""

from __future__ import annotations

import errno
import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from juststorage.adapters.blobs import filesystem_parts
from juststorage.adapters.blobs.filesystem_parts import FilesystemPartStore
from juststorage.application.blob_ports import Hasher
from juststorage.application.running_hashes import Claim, RunningHashes
from juststorage.application.session_records import DamagedPart, SessionPart
from juststorage.domain.errors import Unavailable
from juststorage.domain.model import ContentHash, StorageClass

pytestmark = pytest.mark.anyio

HOT = StorageClass.HOT


@pytest.fixture
def store(tmp_path: Path) -> FilesystemPartStore:
    (tmp_path / "hot" / "tmp").mkdir(parents=True)
    (tmp_path / "hot" / "sha256").mkdir()
    return FilesystemPartStore({HOT: tmp_path / "hot"})


async def _put(
    store: FilesystemPartStore,
    session: uuid.UUID,
    number: int,
    data: bytes,
    claim: Claim | None = None,
    hashes: RunningHashes | None = None,
) -> str:
    running = claim.hasher if claim is not None else None
    slot = claim.slot if claim is not None else None
    async with store.receive(HOT, session, number, "owner", running, slot) as staged:
        for start in range(0, len(data), 300_000):
            await staged.write(data[start : start + 300_000])
        digest, size = await staged.seal()
        assert (digest.hex, size) == (hashlib.sha256(data).hexdigest(), len(data))
        staged.keep()
        if hashes is not None:
            hashes.settle(session, number, digest, staged.address, claim)
        return staged.address


class _Reads:
    """Counts bytes read with os.pread from part files (the parts folder)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bytes = 0
        self.copied = 0
        real_read, real_copy = os.pread, os.copy_file_range

        def read(fd: int, n: int, offset: int) -> bytes:
            data = real_read(fd, n, offset)
            if "/parts/" in os.readlink(f"/proc/self/fd/{fd}"):
                self.bytes += len(data)
            return data

        def copy(src: int, dst: int, count: int, *args: int) -> int:
            done = real_copy(src, dst, count, *args)
            self.copied += done
            return done

        monkeypatch.setattr(filesystem_parts.os, "pread", read)
        monkeypatch.setattr(filesystem_parts.os, "copy_file_range", copy)


async def _assembled(
    store: FilesystemPartStore,
    session: uuid.UUID,
    rows: list[SessionPart],
    hashed: Hasher | None,
    hashed_parts: int,
    reuse_stream: bool = True,
) -> tuple[str, bytes]:
    async with store.assemble(
        HOT,
        session,
        rows,
        uuid.uuid4(),
        "owner",
        hashed,
        hashed_parts,
        reuse_stream=reuse_stream,
    ) as staged:
        digest, _ = await staged.seal()
        temp = staged.temp_path  # type: ignore[attr-defined]
        return digest.hex, Path(temp).read_bytes()


async def test_parts_sent_in_order_become_the_blob_without_a_copy(
    store: FilesystemPartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, hashes = uuid.uuid4(), RunningHashes()
    parts = [os.urandom(1_000_000 + n) for n in range(3)]
    addresses = []
    for number, data in enumerate(parts, 1):
        claim = hashes.claim(session, number, len(parts[number - 1]), _reader(store, session))
        assert claim is not None
        addresses.append(await _put(store, session, number, data, claim, hashes))
    assert len({a.partition("@")[0] for a in addresses}) == 1  # one stream file
    covering = await hashes.covering(session, _rows(parts, addresses))
    assert covering.parts == 3 and covering.quiet
    reads = _Reads(monkeypatch)
    digest, whole = await _assembled(store, session, _rows(parts, addresses), covering.hasher, 3)
    assert whole == b"".join(parts)
    assert digest == hashlib.sha256(whole).hexdigest()
    assert reads.bytes == 0 and reads.copied == 0  # the stream file is the blob
    assert os.listdir(store.folder(HOT, session)) != []  # kept until the commit


async def test_a_stream_with_more_than_the_parts_is_copied_once(
    store: FilesystemPartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, hashes = uuid.uuid4(), RunningHashes()
    parts = [os.urandom(700_000) for _ in range(3)]
    addresses = []
    for number, data in enumerate(parts, 1):
        claim = hashes.claim(session, number, len(parts[number - 1]), _reader(store, session))
        assert claim is not None
        addresses.append(await _put(store, session, number, data, claim, hashes))
    # Completing parts 1..2 only: the stream holds part 3 too.
    covering = await hashes.covering(session, _rows(parts[:2], addresses[:2]))
    assert covering.parts == 0  # the state after all three is kept, not after two
    reads = _Reads(monkeypatch)
    digest, whole = await _assembled(store, session, _rows(parts[:2], addresses[:2]), None, 0)
    assert whole == parts[0] + parts[1] and digest == hashlib.sha256(whole).hexdigest()
    assert reads.bytes == len(whole)  # read once to hash, no more


async def test_parts_out_of_order_are_read_once_at_completion(
    store: FilesystemPartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, hashes = uuid.uuid4(), RunningHashes()
    parts = [os.urandom(500_000) for _ in range(3)]
    addresses: dict[int, str] = {}
    for number in (1, 3, 2):  # 1 extends the prefix; 3 cannot; 2 can, 3 then is unhashed
        # Part 3 without a declared length (chunked): no slot, a file of its own.
        declared = None if number == 3 else len(parts[number - 1])
        claim = hashes.claim(session, number, declared, _reader(store, session))
        assert (claim is not None) == (number != 3)
        addresses[number] = await _put(store, session, number, parts[number - 1], claim, hashes)
    ordered = [addresses[n] for n in (1, 2, 3)]
    covering = await hashes.covering(session, _rows(parts, ordered))
    assert covering.parts == 2
    reads = _Reads(monkeypatch)
    digest, whole = await _assembled(store, session, _rows(parts, ordered), covering.hasher, 2)
    assert whole == b"".join(parts) and digest == hashlib.sha256(whole).hexdigest()
    assert reads.bytes == len(parts[2])  # only the part the prefix did not cover
    assert reads.copied == len(parts[0]) + len(parts[1])  # ranges of the stream file


async def test_a_replaced_part_is_not_taken_from_the_running_hash(
    store: FilesystemPartStore,
) -> None:
    session, hashes = uuid.uuid4(), RunningHashes()
    first, second, replacement = os.urandom(1000), os.urandom(1000), os.urandom(1000)
    reader = _reader(store, session)
    for number, data in ((1, first), (2, second)):
        claim = hashes.claim(session, number, len(data), reader)
        assert claim is not None
        await _put(store, session, number, data, claim, hashes)
    # Part 2 sent again without the running hash seeing it (another process got it).
    rows = _rows([first, replacement], ["a", "b"])
    covering = await hashes.covering(session, rows)
    assert (covering.hasher, covering.parts) == (None, 0)
    # Sent again here: a stored part is never placed in the stream, nor hashed, again.
    assert hashes.claim(session, 2, 1000, reader) is None
    assert hashes.claim(session, 1, 1000, reader) is None


async def test_parts_sent_in_parallel_land_back_to_back_and_are_caught_up(
    store: FilesystemPartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, hashes = uuid.uuid4(), RunningHashes()
    parts = [os.urandom(600_000), os.urandom(600_000), os.urandom(1234)]
    reader = _reader(store, session)
    by_number = {n: hashes.claim(session, n, len(parts[n - 1]), reader) for n in (1, 3, 2)}
    claims = [by_number[n] for n in (1, 2, 3)]
    assert [c is not None and c.slot is not None for c in claims] == [True] * 3
    assert [c.hasher is not None for c in claims if c is not None] == [True, False, False]
    # Written at once, finished in reverse order; claimed 1, 3, 2 (3 overtook 2).
    addresses = {}
    for number in (3, 2, 1):
        addresses[number] = await _put(
            store, session, number, parts[number - 1], claims[number - 1], hashes
        )
    ordered = [addresses[n] for n in (1, 2, 3)]
    assert ordered[1] == ordered[0].replace("@0:600000", "@600000:600000")
    covering = await hashes.covering(session, _rows(parts, ordered))  # waits for catch-up
    assert covering.parts == 3 and covering.quiet
    reads = _Reads(monkeypatch)
    digest, whole = await _assembled(store, session, _rows(parts, ordered), covering.hasher, 3)
    assert whole == b"".join(parts) and digest == hashlib.sha256(whole).hexdigest()
    assert reads.bytes == 0 and reads.copied == 0  # the stream is the blob


async def test_a_stream_being_written_is_never_the_blob(
    store: FilesystemPartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, hashes = uuid.uuid4(), RunningHashes()
    parts = [os.urandom(300_000), os.urandom(300_000)]
    reader = _reader(store, session)
    addresses = []
    for number, data in enumerate(parts, 1):
        claim = hashes.claim(session, number, len(data), reader)
        addresses.append(await _put(store, session, number, data, claim, hashes))
    assert hashes.claim(session, 3, 10, reader) is not None  # part 3 in flight
    covering = await hashes.covering(session, _rows(parts, addresses))
    assert covering.parts == 2 and not covering.quiet
    reads = _Reads(monkeypatch)
    async with store.assemble(
        HOT,
        session,
        _rows(parts, addresses),
        uuid.uuid4(),
        "owner",
        covering.hasher,
        2,
        reuse_stream=covering.quiet,
    ) as staged:
        assert "/tmp/" in str(staged.temp_path)  # type: ignore[attr-defined]
    assert reads.copied == 600_000


async def test_a_stream_replaced_under_its_parts_is_refused_not_published(
    store: FilesystemPartStore,
) -> None:
    """The running hash stands only for the stream file it was fed from: a file put
    in its place (same name and size, other bytes) is read again, and each part's
    bytes must still hash to its row's sha256: part 1's do not, so nothing is staged
    (the wrong bytes are never published under a digest of their own)."""
    session, hashes = uuid.uuid4(), RunningHashes()
    parts = [os.urandom(1_000_000), os.urandom(500_000)]
    addresses = []
    for number, data in enumerate(parts, 1):
        claim = hashes.claim(session, number, len(data), _reader(store, session))
        addresses.append(await _put(store, session, number, data, claim, hashes))
    stream = store.folder(HOT, session) / addresses[0].partition("@")[0]
    os.unlink(stream)
    stream.write_bytes(bytes(len(parts[0])) + parts[1])
    covering = await hashes.covering(session, _rows(parts, addresses))
    assert covering.parts == 2 and covering.quiet
    with pytest.raises(DamagedPart) as refused:
        await _assembled(store, session, _rows(parts, addresses), covering.hasher, 2)
    assert refused.value.number == 1 and "send part 1 again" in refused.value.message
    assert os.listdir(store.roots[HOT] / "tmp") == []  # the temp file went with it
    assert os.listdir(store.roots[HOT] / "sha256") == []


@pytest.mark.parametrize("declared", [True, False], ids=["stream", "own-file"])
async def test_a_part_changed_on_disk_is_refused_when_read_back(
    store: FilesystemPartStore, monkeypatch: pytest.MonkeyPatch, declared: bool
) -> None:
    """No running hash (a restart, another process): every part is read, once, and
    each is checked against its row in that pass. One byte of part 2 flipped after
    its 200 makes the assembly DamagedPart, naming part 2."""
    session = uuid.uuid4()
    hashes = RunningHashes()
    parts = [os.urandom(600_000), os.urandom(600_000), os.urandom(1234)]
    addresses = []
    for number, data in enumerate(parts, 1):
        reader = _reader(store, session)
        claim = hashes.claim(session, number, len(data), reader) if declared else None
        addresses.append(await _put(store, session, number, data, claim, hashes))
    name, _, span = addresses[1].partition("@")
    at = int(span.partition(":")[0]) if span else 0
    path = store.folder(HOT, session) / name
    with open(path, "r+b") as file:
        file.seek(at + 4321)
        flipped = bytes([file.read(1)[0] ^ 0x01])
        file.seek(at + 4321)
        file.write(flipped)
    reads = _Reads(monkeypatch)
    with pytest.raises(DamagedPart) as refused:
        await _assembled(store, session, _rows(parts, addresses), None, 0)
    assert refused.value.number == 2
    assert hashlib.sha256(parts[1]).hexdigest() in refused.value.details
    assert reads.bytes == len(parts[0]) + len(parts[1])  # one pass, stopped at part 2
    assert os.listdir(store.roots[HOT] / "tmp") == []


async def test_catch_up_does_not_take_a_part_changed_on_disk(
    store: FilesystemPartStore,
) -> None:
    """A part caught up from the stream (sent in parallel) is hashed on its own too:
    bytes that no longer match its row are left out of the running hash, so
    completion reads them again, and refuses them."""
    session, hashes = uuid.uuid4(), RunningHashes()
    parts = [os.urandom(300_000), os.urandom(300_000)]
    reader = _reader(store, session)
    first = hashes.claim(session, 1, len(parts[0]), reader)
    second = hashes.claim(session, 2, len(parts[1]), reader)
    assert first is not None and second is not None
    # Part 2 is stored while part 1 feeds the state: it is caught up from the stream.
    address2 = await _put(store, session, 2, parts[1], second, hashes)
    name, _, span = address2.partition("@")
    with open(store.folder(HOT, session) / name, "r+b") as file:
        file.seek(int(span.partition(":")[0]))
        file.write(bytes(16))  # after its 200, before the catch-up reads it
    address1 = await _put(store, session, 1, parts[0], first, hashes)
    rows = _rows(parts, [address1, address2])
    covering = await hashes.covering(session, rows)
    assert covering.parts == 1  # part 2 was not taken into the state
    with pytest.raises(DamagedPart):
        await _assembled(store, session, rows, covering.hasher, covering.parts)


async def test_a_part_never_makes_a_removed_stream_again(store: FilesystemPartStore) -> None:
    """Part 2 of a stream whose file is gone is refused (nothing stored, no file made
    under the stream's name); sent again, it goes to a file of its own."""
    session, hashes = uuid.uuid4(), RunningHashes()
    first, second = os.urandom(1_000_000), os.urandom(1000)
    claim = hashes.claim(session, 1, len(first), _reader(store, session))
    address = await _put(store, session, 1, first, claim, hashes)
    stream = store.folder(HOT, session) / address.partition("@")[0]
    os.unlink(stream)
    claim = hashes.claim(session, 2, len(second), _reader(store, session))
    assert claim is not None and claim.slot is not None
    with pytest.raises(Unavailable):
        await _put(store, session, 2, second, claim)
    hashes.release(session, 2, claim)
    assert not stream.exists()
    again = hashes.claim(session, 2, len(second), _reader(store, session))
    address = await _put(store, session, 2, second, again)
    assert "@" not in address and address.startswith("2.")


async def test_assembly_without_copy_file_range_falls_back_to_read_and_write(
    store: FilesystemPartStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = uuid.uuid4()
    parts = [os.urandom(200_000), os.urandom(1234)]
    addresses = [await _put(store, session, n, d) for n, d in enumerate(parts, 1)]
    hashed = hashlib.sha256(parts[0])

    def no_copy(*args: int) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(filesystem_parts.os, "copy_file_range", no_copy)
    digest, whole = await _assembled(store, session, _rows(parts, addresses), hashed, 1)
    assert whole == b"".join(parts) and digest == hashlib.sha256(whole).hexdigest()


async def test_leaving_the_block_without_keep_removes_the_part(
    store: FilesystemPartStore,
) -> None:
    session = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with store.receive(HOT, session, 1, "owner") as staged:
            await staged.write(b"x" * 2_000_000)
            await staged.seal()
            raise RuntimeError("the row was not written")
    assert os.listdir(store.folder(HOT, session)) == []
    found = await store.scan(HOT)
    assert [(f.session_id, f.address) for f in found] == [(session, "")]  # the empty folder
    await store.remove(HOT, session, "")
    assert await store.scan(HOT) == []


async def test_scan_names_the_writer_of_each_part(store: FilesystemPartStore) -> None:
    session = uuid.uuid4()
    address = await _put(store, session, 7, b"bytes")
    [found] = await store.scan(HOT)
    assert (found.session_id, found.address, found.owner, found.size_bytes) == (
        session,
        address,
        "owner",
        5,
    )
    assert address.startswith("7.")
    chunks = [c async for c in _read(store, session, address)]
    assert b"".join(chunks) == b"bytes"
    await store.remove_session(HOT, session)
    assert not store.folder(HOT, session).exists()


async def _read(
    store: FilesystemPartStore, session: uuid.UUID, address: str
) -> AsyncIterator[bytes]:
    async for chunk in store.read(HOT, session, address):
        yield chunk


def _reader(
    store: FilesystemPartStore, session: uuid.UUID
) -> Callable[[str], AsyncIterator[bytes]]:
    return lambda address: store.read(HOT, session, address)


def _rows(parts: list[bytes], addresses: list[str]) -> list[SessionPart]:
    return [
        SessionPart(
            number,
            len(data),
            ContentHash(hashlib.sha256(data).hexdigest()),
            address,
            datetime.now(UTC),
        )
        for number, (data, address) in enumerate(zip(parts, addresses, strict=True), 1)
    ]


def _deleted_files_held(root: Path) -> list[str]:
    """The files under `root` this process holds a descriptor of though they were
    removed (their space is not freed while one is held)."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue  # the descriptor os.listdir used
        if target.startswith(str(root)) and target.endswith(" (deleted)"):
            held.append(target)
    return held


async def _stream_of_one_part(store: FilesystemPartStore, session: uuid.UUID) -> Path:
    hashes, data = RunningHashes(), os.urandom(100_000)
    claim = hashes.claim(session, 1, len(data), _reader(store, session))
    address = await _put(store, session, 1, data, claim, hashes)
    assert "@" in address  # in the session's stream
    return store.folder(HOT, session) / address.partition("@")[0]


async def test_a_stream_removed_here_is_not_held_open(
    store: FilesystemPartStore, tmp_path: Path
) -> None:
    """GC (or `fsck --repair`) removing a leaked stream through the store frees its
    space: the descriptor the store held of it is closed."""
    session = uuid.uuid4()
    stream = await _stream_of_one_part(store, session)
    [found] = await store.scan(HOT)
    await store.remove(HOT, session, found.address)
    assert not stream.exists()
    assert _deleted_files_held(tmp_path) == []


@pytest.mark.parametrize("sweep", ["scan", "another stream"])
async def test_a_stream_removed_by_another_process_is_let_go(
    store: FilesystemPartStore, tmp_path: Path, sweep: str
) -> None:
    """Removed elsewhere (another process's GC, an expired session's folder): the
    next scan (each GC pass) or the next stream opened lets its descriptor go."""
    session = uuid.uuid4()
    stream = await _stream_of_one_part(store, session)
    os.unlink(stream)
    assert len(_deleted_files_held(tmp_path)) == 1
    if sweep == "scan":
        await store.scan(HOT)
    else:
        await _stream_of_one_part(store, uuid.uuid4())
    assert _deleted_files_held(tmp_path) == []
