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


def test_directories_made_by_others_are_fsynced_into_their_parents_once(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    # Another thread or process created sha256/ab (and may not have fsynced it yet).
    (tmp_path / "sha256" / "ab").mkdir(parents=True)
    dirs = fsio.DurableDirs(tmp_path)
    dirs.ensure(tmp_path / "sha256" / "ab" / "cd")
    assert (tmp_path / "sha256" / "ab" / "cd").is_dir()
    assert fsynced == [tmp_path, tmp_path / "sha256", tmp_path / "sha256" / "ab"]
    dirs.ensure(tmp_path / "sha256" / "ab" / "cd")
    dirs.ensure(tmp_path / "sha256" / "ab" / "ef")
    assert fsynced[3:] == [tmp_path / "sha256" / "ab"]  # only the new one's parent


def test_a_forgotten_directory_is_made_again(tmp_path: Path, fsynced: list[Path]) -> None:
    dirs = fsio.DurableDirs(tmp_path)
    leaf = tmp_path / "sha256" / "ab" / "cd"
    dirs.ensure(leaf)
    leaf.rmdir()
    (tmp_path / "sha256" / "ab").rmdir()
    dirs.ensure(leaf)
    assert not leaf.exists()  # known, so not looked at again ...
    dirs.forget(tmp_path / "sha256")
    dirs.ensure(leaf)
    assert leaf.is_dir()  # ... until forgotten


def test_directories_existing_at_startup_are_adopted_with_one_fsync_per_parent(
    tmp_path: Path, fsynced: list[Path]
) -> None:
    top = tmp_path / "sha256"
    for shard in ("ab/cd", "ab/ef", "12/34"):
        (top / shard).mkdir(parents=True)
    dirs = fsio.DurableDirs(tmp_path)
    dirs.adopt_existing(top)
    assert sorted(fsynced) == sorted([tmp_path, top, top / "ab", top / "12"])
    for shard in ("ab/cd", "ab/ef", "12/34"):
        dirs.ensure(top / shard)
    assert len(fsynced) == 4  # nothing more for what was adopted
    dirs.ensure(top / "12" / "56")
    assert fsynced[4:] == [top / "12"]
