"""Delimited listings (SPEC §8.4) on SQLite and PostgreSQL against a brute-force model,
with keys, delimiters, prefixes, page sizes, versions and class filters drawn by
Hypothesis: every page, followed cursor by cursor, adds up to the model's listing.

Keys are drawn from characters that sit at the edges of the orderings involved:
ASCII around `/`, two- three- and four-byte UTF-8, and U+10FFFF (whose prefixes have
no upper bound to jump to).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.clock import FakeClock
from juststorage.adapters.metadata.postgres import PostgresMetadataStore
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.application.listing import list_objects
from juststorage.application.ports import MetadataStore
from juststorage.application.records import ListQuery
from juststorage.domain.cursor import ListCursor
from juststorage.domain.model import (
    ContentHash,
    Namespace,
    NewUpload,
    ObjectKey,
    StorageClass,
    TenantId,
    rolled_up,
)

TENANT = TenantId("acme")
ALPHABET = ["a", "b", "/", ".", "0", ":", "é", "日", "\U0001f600", "\U0010ffff"]
DELIMITERS = ["/", ":", "::", "a/", "é", "日", "\U0010ffff", "/\U0010ffff", "ab"]
_counter = itertools.count()

keys = st.text(alphabet=ALPHABET, min_size=1, max_size=6)
versions = st.tuples(keys, st.sampled_from([StorageClass.HOT, StorageClass.COLD]))


@dataclass(frozen=True)
class Case:
    rows: list[tuple[str, StorageClass]]  # in upload order: a key again is a newer version
    prefix: str
    delimiter: str
    limit: int
    all_versions: bool
    storage_class: StorageClass | None


@st.composite
def cases(draw: st.DrawFn) -> Case:
    rows = draw(st.lists(versions, max_size=14))
    # A prefix from the keys (so that it matters) or drawn freely.
    starts = [key[:n] for key, _ in rows for n in range(len(key))]
    prefix = draw(st.sampled_from(starts) if starts else st.just("")) if draw(st.booleans()) else ""
    if not prefix and draw(st.booleans()):
        prefix = draw(st.text(alphabet=ALPHABET, max_size=2))
    return Case(
        rows=rows,
        prefix=prefix,
        delimiter=draw(st.sampled_from(DELIMITERS)),
        limit=draw(st.integers(min_value=1, max_value=5)),
        all_versions=draw(st.booleans()),
        storage_class=draw(st.sampled_from([None, StorageClass.HOT, StorageClass.COLD])),
    )


def model(case: Case, seqs: list[int]) -> list[tuple[str, int | None]]:
    """(key, commit_seq) per listed version and (prefix, None) per common prefix."""
    rows = [(key, cls, seq) for (key, cls), seq in zip(case.rows, seqs, strict=True)]
    rows = [r for r in rows if r[0].startswith(case.prefix)]
    if not case.all_versions:
        newest = {}
        for row in rows:
            if row[0] not in newest or row[2] > newest[row[0]][2]:
                newest[row[0]] = row
        rows = list(newest.values())
    rows.sort(key=lambda r: (r[0].encode("utf-8"), -r[2]))
    entries: list[tuple[str, int | None]] = []
    for key, cls, seq in rows:
        common = rolled_up(key, case.prefix, case.delimiter)
        if common is not None:
            if (common, None) not in entries:
                entries.append((common, None))
        elif case.storage_class is None or cls is case.storage_class:
            entries.append((key, seq))
    return entries


async def _seed(store: MetadataStore, namespace: Namespace, case: Case) -> list[int]:
    clock = FakeClock()
    uploads = [
        (
            NewUpload(uuid4(), TENANT, namespace, ObjectKey(key), cls, "text/plain", clock.now()),
            ContentHash(hashlib.sha256(key.encode()).hexdigest()),
            1,
        )
        for key, cls in case.rows
    ]
    if not uploads:
        return []
    async with store.transaction() as uow:
        inserted = await uow.objects.insert_committed_many(uploads)
        await uow.commit()
    return [v.commit_seq for v in inserted]


async def _pages(
    store: MetadataStore, namespace: Namespace, case: Case
) -> list[tuple[str, int | None]]:
    got: list[tuple[str, int | None]] = []
    after = None
    for _ in range(200):
        query = ListQuery(
            TENANT,
            namespace,
            case.limit,
            after=after,
            prefix=case.prefix,
            all_versions=case.all_versions,
            storage_class=case.storage_class,
            delimiter=case.delimiter,
        )
        page = await list_objects(store, query)
        entries = sorted(
            [(s["key"], -1) for s in page.items] + [(p, None) for p in page.common_prefixes],
            key=lambda e: e[0].encode("utf-8"),
        )
        if page.next_cursor is not None:
            assert len(entries) == case.limit
        got += entries
        if page.next_cursor is None:
            return got
        after = ListCursor.decode(page.next_cursor)
    raise AssertionError("still paging after 200 pages")


async def _check(store: MetadataStore, case: Case) -> None:
    namespace = Namespace(f"n{next(_counter)}")
    seqs = await _seed(store, namespace, case)
    expected = [(key, None if seq is None else -1) for key, seq in model(case, seqs)]
    assert await _pages(store, namespace, case) == expected


SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples on every run (CI and local)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def sqlite_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("delimited-model") / "meta.db"

    async def migrate() -> None:
        store = SqliteMetadataStore(path, FakeClock())
        await store.migrate()
        await store.close()

    asyncio.run(migrate())
    yield path


@SETTINGS
@given(case=cases())
def test_sqlite_pages_match_the_model(sqlite_path: Path, case: Case) -> None:
    async def run() -> None:
        store = SqliteMetadataStore(sqlite_path, FakeClock())
        try:
            await _check(store, case)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def postgres_model_url(postgres_server_url: str) -> Iterator[str]:
    from support.pg_databases import fresh_database

    with fresh_database(postgres_server_url) as url:

        async def migrate() -> None:
            store = PostgresMetadataStore(url, FakeClock())
            await store.migrate()
            await store.close()

        asyncio.run(migrate())
        yield url


@pytest.mark.postgres
@SETTINGS
@given(case=cases())
def test_postgres_pages_match_the_model(postgres_model_url: str, case: Case) -> None:
    async def run() -> None:
        store = PostgresMetadataStore(postgres_model_url, FakeClock())
        try:
            await _check(store, case)
        finally:
            await store.close()

    asyncio.run(run())
