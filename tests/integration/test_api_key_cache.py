"""Stored API keys checked from memory, and revocation still seen from the next check
on (SPEC §3: `keys revoke` refuses the key from the next request on).

Two `SqliteMetadataStore`s on one file stand for two processes: the server's and
the CLI's that revokes. PostgreSQL has no cross-host signal: every check reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fakes.clock import FakeClock
from juststorage.adapters.metadata.postgres import PostgresMetadataStore
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.application import authentication
from juststorage.application.apikeys import create_api_key, revoke_api_key
from juststorage.application.authentication import Authenticator
from juststorage.application.ports import MetadataStore
from juststorage.domain.errors import Unauthorized

pytestmark = pytest.mark.anyio


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[SqliteMetadataStore, SqliteMetadataStore]]:
    clock = FakeClock()
    server = SqliteMetadataStore(tmp_path / "meta.db", clock)
    cli = SqliteMetadataStore(tmp_path / "meta.db", clock)
    await server.migrate()
    try:
        yield server, cli
    finally:
        await server.close()
        await cli.close()


def _authenticator(store: MetadataStore, ticks: Ticks) -> Authenticator:
    return Authenticator(store, jwt=None, bootstrap_keys=[], monotonic=ticks)


class _CountingStore:
    """Counts the snapshots (row reads) an authenticator opens."""

    def __init__(self, store: SqliteMetadataStore) -> None:
        self.store = store
        self.snapshots = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def snapshot(self) -> object:
        self.snapshots += 1
        return self.store.snapshot()


@pytest.fixture
def counted(stores: tuple[SqliteMetadataStore, SqliteMetadataStore]) -> Iterator[_CountingStore]:
    yield _CountingStore(stores[0])


async def test_a_checked_key_is_answered_from_memory(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore], counted: _CountingStore
) -> None:
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["objects:read"])
    auth = _authenticator(counted, Ticks())  # type: ignore[arg-type]
    for _ in range(5):
        principal = await auth.authenticate(f"Bearer {created.key}")
        assert principal.subject == f"key:{created.record.id}"
    assert counted.snapshots == 1


async def test_a_key_revoked_by_another_process_is_refused_on_the_next_check(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["objects:read"])
    other = await create_api_key(cli, FakeClock(), ["acme"], ["objects:read"])
    ticks = Ticks()
    auth = _authenticator(server, ticks)
    await auth.authenticate(f"Bearer {created.key}")  # remembered
    await auth.authenticate(f"Bearer {other.key}")
    await revoke_api_key(cli, created.record.id)
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {created.key}")  # same instant: no expiry helps
    await auth.authenticate(f"Bearer {other.key}")  # the others are read again, still valid
    await revoke_api_key(cli, other.record.id)  # a second revocation changes the stamp again
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {other.key}")


async def test_a_row_changed_behind_the_store_is_seen_within_the_cache_bound(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore], tmp_path: Path
) -> None:
    """A revocation written by hand (SQL, no announcement) is seen within the bound."""
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["objects:read"])
    ticks = Ticks()
    auth = _authenticator(server, ticks)
    await auth.authenticate(f"Bearer {created.key}")
    with sqlite3.connect(tmp_path / "meta.db") as conn:
        conn.execute(
            "UPDATE api_keys SET revoked_at = created_at WHERE id = ?", (created.record.id,)
        )
    ticks.now += authentication.KEY_CACHE_SECONDS / 2
    await auth.authenticate(f"Bearer {created.key}")  # still remembered: the bound is real
    ticks.now += authentication.KEY_CACHE_SECONDS / 2
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {created.key}")


async def test_wrong_secret_with_a_remembered_id_is_refused(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore],
) -> None:
    server, cli = stores
    created = await create_api_key(cli, FakeClock(), ["acme"], ["objects:read"])
    auth = _authenticator(server, Ticks())
    await auth.authenticate(f"Bearer {created.key}")
    forged = created.key[:-4] + ("aaaa" if not created.key.endswith("aaaa") else "bbbb")
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {forged}")


@pytest.mark.postgres
async def test_postgres_reads_the_key_on_every_check(postgres_url: str) -> None:
    """No signal reaches processes on other hosts: a revocation by SQL is seen at once."""
    import asyncpg

    store = PostgresMetadataStore(postgres_url, FakeClock())
    try:
        await store.migrate()
        created = await create_api_key(store, FakeClock(), ["acme"], ["objects:read"])
        auth = _authenticator(store, Ticks())
        await auth.authenticate(f"Bearer {created.key}")
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute(
                "UPDATE api_keys SET revoked_at = created_at WHERE id = $1", created.record.id
            )
        finally:
            await conn.close()
        with pytest.raises(Unauthorized):
            await auth.authenticate(f"Bearer {created.key}")
    finally:
        await store.close()


async def test_a_link_planted_at_the_revocations_file_is_never_followed(
    stores: tuple[SqliteMetadataStore, SqliteMetadataStore], tmp_path: Path
) -> None:
    """Nothing is written through the link; the revocation is then seen within the bound."""
    server, cli = stores
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"keep")
    (tmp_path / "meta.db.revocations").symlink_to(outside)
    created = await create_api_key(cli, FakeClock(), ["acme"], ["objects:read"])
    ticks = Ticks()
    auth = _authenticator(server, ticks)
    await auth.authenticate(f"Bearer {created.key}")
    await revoke_api_key(cli, created.record.id)  # the announcement fails quietly
    assert outside.read_bytes() == b"keep"
    ticks.now += authentication.KEY_CACHE_SECONDS
    with pytest.raises(Unauthorized):
        await auth.authenticate(f"Bearer {created.key}")
