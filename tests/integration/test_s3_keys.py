"""S3 credentials of real API keys in a real SQLite store: derived secrets, the
master key file, and revocation seen from the next request on."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fakes.clock import FakeClock
from juststorage.adapters.metadata.postgres import PostgresMetadataStore
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.application.apikeys import CreatedKey, create_api_key, revoke_api_key
from juststorage.bootstrap import s3_master_key
from juststorage.config import Settings, SettingsError, load_settings
from juststorage.domain.auth import Scope
from juststorage.s3.request import RequestHead
from juststorage.s3.secrets import S3KeyStore, derive_s3_secret
from juststorage.s3.signing import S3Authenticator, S3AuthError
from support.s3_requests import head_of

pytestmark = pytest.mark.anyio
MASTER = b"m" * 64


class Ticks:
    """A monotonic clock that stands still unless the test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteMetadataStore, SqliteMetadataStore]]:
    """The server's store and the CLI's, one database file (two processes)."""
    clock = FakeClock()
    server = SqliteMetadataStore(tmp_path / "meta.db", clock)
    cli = SqliteMetadataStore(tmp_path / "meta.db", clock)
    await server.migrate()
    try:
        yield server, cli
    finally:
        await server.close()
        await cli.close()


def _request(key_id: str, secret: str, path: str = "/acme.docs/k") -> RequestHead:
    request = AWSRequest("GET", "http://127.0.0.1:9000" + path)
    S3SigV4Auth(Credentials(key_id, secret), "s3", "eu-central-1").add_auth(request)
    return head_of(request)


def _secret(created: CreatedKey, master: bytes = MASTER) -> str:
    return derive_s3_secret(master, created.record.id, created.record.key_hash)


def _authenticator(store: SqliteMetadataStore, ticks: Ticks) -> S3Authenticator:
    keys = S3KeyStore(store, MASTER, monotonic=ticks)
    return S3Authenticator(keys, FakeClock(datetime.now(UTC)))


async def test_an_api_keys_derived_secret_signs_as_that_key(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme", "beta"], ["objects:read"])
    verified = await _authenticator(server, Ticks()).verify(
        _request(created.record.id, _secret(created))
    )
    assert verified.key_id == created.record.id
    assert verified.principal.subject == f"key:{created.record.id}"
    assert verified.principal.tenants == frozenset({"acme", "beta"})
    assert verified.principal.scopes == frozenset({Scope.OBJECTS_READ})


async def test_the_secret_of_one_key_does_not_sign_for_another(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, cli = stores
    first = await create_api_key(cli, FakeClock(), ["acme"], ["admin"])
    second = await create_api_key(cli, FakeClock(), ["beta"], ["admin"])
    assert _secret(first) != _secret(second)
    with pytest.raises(S3AuthError) as caught:
        await _authenticator(server, Ticks()).verify(_request(second.record.id, _secret(first)))
    assert caught.value.code == "SignatureDoesNotMatch"


async def test_another_master_key_makes_every_secret_another(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["admin"])
    assert _secret(created, b"n" * 64) != _secret(created)
    with pytest.raises(S3AuthError) as caught:
        await _authenticator(server, Ticks()).verify(
            _request(created.record.id, _secret(created, b"n" * 64))
        )
    assert caught.value.code == "SignatureDoesNotMatch"


async def test_no_s3_secret_is_in_the_database(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore], tmp_path: Path
) -> None:
    _, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["admin"])
    secret = _secret(created).encode()
    for path in tmp_path.glob("meta.db*"):
        assert secret not in path.read_bytes()


async def test_a_revoked_key_is_refused_from_the_next_request_on(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["admin"])
    ticks = Ticks()  # stands still: any refusal below is not the cache expiring
    auth = _authenticator(server, ticks)
    head = _request(created.record.id, _secret(created))
    await auth.verify(head)
    await auth.verify(head)  # remembered now
    await revoke_api_key(cli, created.record.id)
    with pytest.raises(S3AuthError) as caught:
        await auth.verify(head)
    assert (caught.value.code, caught.value.status) == ("InvalidAccessKeyId", 403)


async def test_an_unknown_key_id_is_invalid(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, _ = stores
    for key_id in ("0123456789abcdef", "not:a-key!"):
        with pytest.raises(S3AuthError) as caught:
            await _authenticator(server, Ticks()).verify(_request(key_id, "x"))
        assert caught.value.code == "InvalidAccessKeyId"


class _CountingStore:
    def __init__(self, store: SqliteMetadataStore) -> None:
        self.store = store
        self.snapshots = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def snapshot(self) -> object:
        self.snapshots += 1
        return self.store.snapshot()


async def test_a_checked_key_is_answered_from_memory_until_its_time_runs_out(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["admin"])
    counted = _CountingStore(server)
    ticks = Ticks()
    keys = S3KeyStore(counted, MASTER, monotonic=ticks)  # type: ignore[arg-type]
    auth = S3Authenticator(keys, FakeClock(datetime.now(UTC)))
    head = _request(created.record.id, _secret(created))
    for _ in range(3):
        await auth.verify(head)
    assert counted.snapshots == 1
    ticks.now += 5
    await auth.verify(head)
    assert counted.snapshots == 2


def _settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"JUSTSTORAGE_DATA_DIR": str(tmp_path / "data"), **env})


def test_the_master_key_file_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = s3_master_key(settings)
    path = settings.s3_master_key_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) == 64
    assert s3_master_key(settings) == first


def test_processes_making_the_master_key_together_agree_on_one(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def make() -> None:
        barrier.wait()
        keys.append(s3_master_key(settings))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["s3-master.key"]


def test_the_setting_wins_over_the_file_and_a_short_one_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path, JUSTSTORAGE_S3_MASTER_KEY="k" * 40)
    assert s3_master_key(settings) == b"k" * 40
    assert not settings.s3_master_key_path.exists()
    assert "k" * 40 not in repr(settings)
    with pytest.raises(SettingsError, match="JUSTSTORAGE_S3_MASTER_KEY"):
        _settings(tmp_path, JUSTSTORAGE_S3_MASTER_KEY="short")


def test_a_damaged_master_key_file_is_refused_not_used(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    fd = os.open(settings.s3_master_key_path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    with pytest.raises(SettingsError, match="s3-master.key"):
        s3_master_key(settings)


def test_a_link_planted_at_the_master_key_path_is_not_followed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.write_text("a" * 64)
    settings.s3_master_key_path.symlink_to(target)
    with pytest.raises(OSError):
        s3_master_key(settings)


@pytest.mark.postgres
async def test_on_postgres_a_revocation_by_another_host_is_seen_at_once(
    postgres_url: str,
) -> None:
    """PostgreSQL gives no revocation signal across hosts: every request reads the row."""
    server = PostgresMetadataStore(postgres_url, FakeClock())
    other_host = PostgresMetadataStore(postgres_url, FakeClock())
    try:
        await server.migrate()
        created = await create_api_key(other_host, FakeClock(), ["acme"], ["admin"])
        auth = S3Authenticator(
            S3KeyStore(server, MASTER, monotonic=Ticks()), FakeClock(datetime.now(UTC))
        )
        head = _request(created.record.id, _secret(created))
        assert (await auth.verify(head)).key_id == created.record.id
        await revoke_api_key(other_host, created.record.id)
        with pytest.raises(S3AuthError) as caught:
            await auth.verify(head)
        assert caught.value.code == "InvalidAccessKeyId"
    finally:
        await server.close()
        await other_host.close()
