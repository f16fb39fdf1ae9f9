"""The durable file-system primitives: which directories get fsynced, on real files.

fsync itself cannot be observed without pulling the power, so these record the
calls to `fsync_dir` (the real one still runs) and check what is on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.adapters.blobs import fsio
from juststorage.adapters.blobs.filesystem import FilesystemBlobStore
from juststorage.application.records import BlobLocation
from juststorage.domain.model import ContentHash, StorageClass


@pytest.fixture
def fsynced(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = fsio.fsync_dir

    def recording(path: Path) -> None:
        calls.append(path)
        real(path)

    monkeypatch.setattr(fsio, "fsync_dir", recording)
    return calls


def test_a_link_to_an_existing_name_still_makes_that_name_durable(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    # The name may be another upload's that has linked but not yet fsynced it.
    (tmp_path / "a").write_bytes(b"x")
    (tmp_path / "b").write_bytes(b"x")
    os.link(tmp_path / "a", tmp_path / "blob")
    assert fsio.durable_link(tmp_path / "b", tmp_path / "blob") is False
    assert fsynced == [tmp_path]
    assert fsio.durable_link(tmp_path / "b", tmp_path / "new") is True
    assert fsynced == [tmp_path, tmp_path]


HEX = "abcd" + "0" * 60
OTHER_LEAF = "abef" + "0" * 60
OTHER_TOP = "1234" + "0" * 60


def test_shard_directories_made_by_others_are_made_durable_on_first_use(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    shards = tmp_path / "sha256"
    (shards / "ab" / "cd").mkdir(parents=True)  # by another process, maybe not yet fsynced
    dirs = fsio.DurableShardDirs(shards)
    assert dirs.ensure(HEX) == shards / "ab" / "cd"
    # sha256/ for ab's name, then ab (listed first) for cd's: no mkdir needed.
    assert fsynced == [shards, shards / "ab"]
    assert dirs.ensure(HEX) == shards / "ab" / "cd"
    assert len(fsynced) == 2  # known now: nothing more
    assert dirs.ensure(OTHER_LEAF) == shards / "ab" / "ef"  # created, fsynced into ab
    assert (shards / "ab" / "ef").is_dir() and fsynced[2:] == [shards / "ab"]
    assert dirs.ensure(OTHER_TOP) == shards / "12" / "34"
    assert fsynced[3:] == [shards, shards / "12", shards / "12"]


def test_a_forgotten_store_makes_removed_directories_again(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    shards = tmp_path / "sha256"
    shards.mkdir()
    dirs = fsio.DurableShardDirs(shards)
    leaf = dirs.ensure(HEX)
    leaf.rmdir()
    leaf.parent.rmdir()
    assert dirs.ensure(HEX) == leaf and not leaf.exists()  # known: not looked at again
    dirs.forget()
    assert dirs.ensure(HEX) == leaf and leaf.is_dir()  # ... until forgotten


# --- a dedup hit costs what new bytes cost --------------------------------------------

Event = tuple[str, Path]


def _traced(monkeypatch: pytest.MonkeyPatch, events: list[Event]) -> None:
    """Record every fsync (by path) and every change to a directory's entries or times."""
    real_fsync, real_link, real_utime = os.fsync, os.link, os.utime

    def fsync(fd: int) -> None:
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}"))))
        real_fsync(fd)

    def link(source: str | Path, target: str | Path) -> None:
        real_link(source, target)
        events.append(("change", Path(target).parent))

    def utime(path: str | Path, *args: Any, **kwargs: Any) -> None:
        real_utime(path, *args, **kwargs)
        events.append(("change", Path(path)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "utime", utime)


async def _store(store: FilesystemBlobStore, data: bytes) -> None:
    digest = ContentHash(hashlib.sha256(data).hexdigest())
    async with store.stage(StorageClass.HOT, uuid4()) as staged:
        await staged.write(data)
        await staged.seal()
        await staged.publish()
        async with FakeMetadataStore(FakeClock()).transaction() as uow:
            await staged.confirm(BlobLocation(StorageClass.HOT, digest), uow=uow)


def _same_leaf_as(data: bytes) -> bytes:
    """Other bytes whose blob goes in the same `<hh>/<hh>` directory (about 2^16 tries)."""
    leaf = hashlib.sha256(data).hexdigest()[:4]
    for number in itertools.count():
        other = b"other %d" % number
        if hashlib.sha256(other).hexdigest()[:4] == leaf:
            return other
    raise AssertionError("unreachable")


def _unflushed_fsyncs(events: list[Event]) -> list[Path]:
    """Directories fsynced with no change to them since their last fsync: such an fsync
    returns at once, so it is faster than one that commits a change."""
    changed: set[Path] = set()
    idle = []
    for kind, path in events:
        if kind == "change":
            changed.add(path)
        elif path.is_dir():
            if path not in changed:
                idle.append(path)
            changed.discard(path)
    return idle


def test_a_dedup_hit_fsyncs_and_flushes_what_new_bytes_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another tenant timing its upload must not learn whether the bytes were stored
    # already (SPEC §5): same fsyncs, each with a change to commit.
    store = FilesystemBlobStore({StorageClass.HOT: tmp_path / "hot"})
    asyncio.run(store.prepare())
    stored = b"already stored by another tenant"
    asyncio.run(_store(store, stored))  # also makes and learns its shard directories
    dedup: list[Event] = []
    fresh: list[Event] = []
    with monkeypatch.context() as patch:
        _traced(patch, dedup)
        asyncio.run(_store(store, stored))
    with monkeypatch.context() as patch:
        _traced(patch, fresh)
        asyncio.run(_store(store, _same_leaf_as(stored)))
    leaf = store.path_of(
        BlobLocation(StorageClass.HOT, ContentHash(hashlib.sha256(stored).hexdigest()))
    ).parent
    assert [e for e in fresh if e[0] == "fsync" and e[1].is_dir()] == [("fsync", leaf)]
    assert len([e for e in dedup if e[0] == "fsync"]) == len([e for e in fresh if e[0] == "fsync"])
    assert [e for e in dedup if e[1] == leaf] == [("change", leaf), ("fsync", leaf)]
    assert _unflushed_fsyncs(dedup) == _unflushed_fsyncs(fresh) == []
