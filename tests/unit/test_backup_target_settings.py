"""Which connection and which kind of target `build_backup_target` makes of its
settings and TARGET (docs/backup.md, "S3 targets"), and the errors a directory
target gives (real files in a temp directory)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from juststorage.adapters.backup import directory
from juststorage.adapters.backup.directory import DirectoryTarget
from juststorage.adapters.backup.s3 import S3Target
from juststorage.adapters.blobs import fsio
from juststorage.bootstrap import backup_s3_connection, build_backup_target
from juststorage.config import Settings, SettingsError, load_settings
from juststorage.domain.errors import BadRequest, Unavailable, details_of


def test_the_target_has_its_own_s3_connection_each_setting_falling_back_to_aws() -> None:
    settings = load_settings(
        environ={
            "AWS_ENDPOINT_URL": "http://127.0.0.1:1",
            "AWS_ACCESS_KEY_ID": "roots-key",
            "AWS_SECRET_ACCESS_KEY": "roots-secret",
            "AWS_REGION": "eu-west-1",
            "AWS_ALLOW_HTTP": "true",
            "JUSTSTORAGE_BACKUP_AWS_ENDPOINT_URL": "http://127.0.0.1:2",
            "JUSTSTORAGE_BACKUP_AWS_ACCESS_KEY_ID": "target-key",
            "JUSTSTORAGE_BACKUP_AWS_SECRET_ACCESS_KEY": "target-secret",
        }
    )
    made = build_backup_target(settings, "s3://bucket/prefix")
    assert isinstance(made, S3Target)
    connection = made.connection
    assert connection.endpoint_url == "http://127.0.0.1:2"
    assert connection.access_key_id == "target-key"
    assert connection.secret_access_key == "target-secret"
    assert connection.region == "eu-west-1"  # unset for the target: AWS_REGION's
    assert connection.allow_http is True
    only_aws = backup_s3_connection(Settings(aws_endpoint_url="http://127.0.0.1:1"))
    assert only_aws.endpoint_url == "http://127.0.0.1:1"
    off = backup_s3_connection(
        Settings(aws_allow_http=True, backup_aws_allow_http=False, backup_aws_region="x")
    )
    assert off.allow_http is False and off.region == "x"


@pytest.mark.parametrize(
    "target", ["http://host/path", "ftp://x", "S3://bucket/p", "gs://bucket", "file:///tmp/x"]
)
def test_a_url_of_another_scheme_is_refused_not_taken_for_a_directory(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError, match="not a"):
        build_backup_target(Settings(data_dir=tmp_path), target)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_named_with_a_scheme_is_written_with_dot_slash(tmp_path: Path) -> None:
    made = build_backup_target(Settings(data_dir=tmp_path), str(tmp_path / "http:" / "x"))
    assert isinstance(made, DirectoryTarget)
    assert isinstance(build_backup_target(Settings(), "./http://x"), DirectoryTarget)


def test_a_target_that_is_a_file_is_bad_usage_not_an_internal_error(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_bytes(b"x")
    for where in (afile, afile / "below"):
        made = build_backup_target(Settings(data_dir=tmp_path), str(where))
        with pytest.raises(BadRequest, match="the backup target cannot be used"):
            asyncio.run(made.put_bytes("backups/x/in-progress", b"{}"))


def test_every_directory_level_created_for_a_target_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = fsio.fsync_dir

    def recording(path: Path) -> None:
        synced.append(Path(path))
        real(path)

    monkeypatch.setattr(fsio, "fsync_dir", recording)
    monkeypatch.setattr(directory, "fsync_dir", recording)
    root = tmp_path / "a" / "b" / "c"
    made = build_backup_target(Settings(data_dir=tmp_path), str(root))
    asyncio.run(made.put_bytes("k", b"v"))
    # Each created level's name is made durable in its parent.
    assert {tmp_path, tmp_path / "a", tmp_path / "a" / "b"} <= set(synced)


def test_a_cause_of_many_lines_is_shown_as_one() -> None:
    try:
        try:
            raise OSError("Generic S3 error: refused\n\nDebug source:\nGeneric {\n  ...\n}")
        except OSError as cause:
            raise Unavailable("write x: the object store failed") from cause
    except Unavailable as exc:
        assert details_of(exc) == "OSError: Generic S3 error: refused"
