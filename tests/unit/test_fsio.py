"""The durable file-system primitives: which directories get fsynced, on real files.

fsync itself cannot be observed without pulling the power, so these record the
calls to `fsync_dir` (the real one still runs) and check what is on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from juststorage.adapters.blobs import fsio


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
