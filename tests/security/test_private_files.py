"""Key and database files are readable by their owner only, and a link planted at
the admin key's path is never written through (SPEC §3, §6)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from juststorage.adapters.private_files import (
    PlantedLinkError,
    ensure_private_file,
    open_private_file,
    replace_private_file,
)
from juststorage.testing import clean_env, run_cli, start

pytestmark = pytest.mark.e2e


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Processes started meanwhile create files group- and world-readable by default."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_database_and_key_files_are_private(tmp_path: Path, permissive_umask: None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("not yours\n")
    (data_dir / "admin.key").symlink_to(victim)  # planted before the first start
    server = start(tmp_path, data_dir=data_dir)
    try:
        key = server.admin_key
        assert victim.read_text() == "not yours\n", "the key was written through the link"
        admin_key = data_dir / "admin.key"
        assert not admin_key.is_symlink()
        assert _mode(admin_key) == 0o600
        response = server.client.get(
            "/v1/usage", params={"tenant": "acme"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text
        for name in ("meta.db", "meta.db-wal", "meta.db-shm", "meta.db.migrate-lock"):
            assert _mode(data_dir / name) == 0o600, name
    finally:
        server.stop()


def test_an_older_world_readable_database_is_made_private(
    tmp_path: Path, permissive_umask: None
) -> None:
    env = clean_env(tmp_path / "data")
    assert run_cli(["migrate"], env).returncode == 0
    database = tmp_path / "data" / "meta.db"
    database.chmod(0o644)  # as an earlier version created it
    migrated = run_cli(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert _mode(database) == 0o600


def test_a_secret_replaces_links_and_never_writes_through_them(tmp_path: Path) -> None:
    target = tmp_path / "target"
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(target)
    replace_private_file(dangling, b"secret\n")
    assert not target.exists()  # a link to nothing does not create its target
    assert dangling.read_bytes() == b"secret\n" and not dangling.is_symlink()

    shared = tmp_path / "shared"
    shared.write_bytes(b"keep\n")
    hard = tmp_path / "hard.key"
    os.link(shared, hard)
    replace_private_file(hard, b"secret\n")
    assert shared.read_bytes() == b"keep\n"
    assert hard.read_bytes() == b"secret\n" and _mode(hard) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("name", ["meta.db", "meta.db-wal", "meta.db-shm", "meta.db.migrate-lock"])
def test_a_link_planted_at_a_database_file_is_refused_never_followed(
    tmp_path: Path, name: str
) -> None:
    """A symbolic link in the data directory pointing at a world-readable file
    elsewhere: `migrate` fails naming the link, the file it points at keeps its mode
    and content."""
    data_dir = tmp_path / "data"
    env = clean_env(data_dir)
    if name != "meta.db":
        assert run_cli(["migrate"], env).returncode == 0  # the database exists already
        for sidecar in ("meta.db-wal", "meta.db-shm", "meta.db.migrate-lock"):
            (data_dir / sidecar).unlink(missing_ok=True)
    data_dir.mkdir(exist_ok=True)
    victim = tmp_path / "elsewhere" / "victim.txt"
    victim.parent.mkdir()
    victim.write_text("not yours\n")
    victim.chmod(0o644)
    (data_dir / name).symlink_to(victim)
    refused = run_cli(["migrate"], env)
    assert refused.returncode != 0
    assert "symbolic link" in refused.stderr and str(data_dir / name) in refused.stderr
    assert victim.read_text() == "not yours\n" and _mode(victim) == 0o644
    assert (data_dir / name).is_symlink()


def test_private_files_are_opened_without_following_links(tmp_path: Path) -> None:
    target = tmp_path / "target"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(target)
    with pytest.raises(PlantedLinkError):
        open_private_file(dangling)
    with pytest.raises(PlantedLinkError):
        ensure_private_file(dangling)
    assert not target.exists()  # O_CREAT did not create the link's target
    made = tmp_path / "made"
    os.close(open_private_file(made))
    assert _mode(made) == 0o600
    made.chmod(0o644)
    os.close(open_private_file(made))
    assert _mode(made) == 0o600  # an existing file loses group and other bits
