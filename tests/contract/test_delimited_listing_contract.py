"""Delimited listings (SPEC §8.4) on every metadata adapter, against a brute-force model.

`list_delimited` through the port and `list_objects` (pages and cursors) on top of
it, for the fake, SQLite and PostgreSQL (the `backend` fixture of the metadata
contract suite).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from contract.test_metadata_contract import ACME, FILES, Backend, backend
from fakes.world import seed_version
from juststorage.application.listing import ListPage, list_objects
from juststorage.application.records import CommonPrefix, ListQuery
from juststorage.domain.cursor import ListCursor
from juststorage.domain.errors import BadRequest
from juststorage.domain.model import ObjectVersion, StorageClass

pytestmark = pytest.mark.anyio
__all__ = ["backend"]  # the fixture, imported for this module's tests

HOT, COLD = StorageClass.HOT, StorageClass.COLD

# Nested prefixes, a key equal to a prefix, a key equal to the prefix without its
# delimiter, multi-byte characters around and in delimiters, and neighbours of the
# jump targets ("b0" follows every "b/…" in byte order).
KEYS = [
    "a",
    "b",
    "b/",
    "b/1",
    "b/2",
    "b/c/3",
    "b/c/4",
    "b/d/",
    "b0",
    "b.x",
    "c::d::e",
    "c::f",
    "c:g",
    "d→1",
    "d→2→3",
    "é/1",
    "日本/1",
    "日本/2/x",
    "日本語",
    "\U0001f600/x",
    "\U0010ffff/1",
    "\U0010ffff\U0010ffff",
    "z",
]


@dataclass(frozen=True)
class Entry:
    """One entry as the tests compare them: a version (key, commit_seq) or a prefix."""

    key: str
    commit_seq: int | None = None  # None: a common prefix


def model(
    versions: list[ObjectVersion],
    *,
    prefix: str = "",
    delimiter: str,
    all_versions: bool = False,
    storage_class: StorageClass | None = None,
) -> list[Entry]:
    """Every entry of a delimited listing, computed the obvious way."""
    rows = [v for v in versions if v.key.startswith(prefix)]
    if not all_versions:
        newest: dict[str, ObjectVersion] = {}
        for v in rows:
            if v.key not in newest or v.commit_seq > newest[v.key].commit_seq:
                newest[v.key] = v
        rows = list(newest.values())
    rows.sort(key=lambda v: (v.key.encode("utf-8"), -v.commit_seq))
    entries: list[Entry] = []
    for v in rows:
        found = v.key.find(delimiter, len(prefix))
        if found >= 0:
            common = Entry(v.key[: found + len(delimiter)])
            if common not in entries:
                entries.append(common)
        elif storage_class is None or v.storage_class is storage_class:
            entries.append(Entry(v.key, v.commit_seq))
    return entries


def entries_of(page: ListPage) -> list[Entry]:
    """A page's entries in key order (items and prefixes merged back together)."""
    items = [Entry(s["key"], -1) for s in page.items]
    merged = items + [Entry(p) for p in page.common_prefixes]
    return sorted(merged, key=lambda e: (e.key.encode("utf-8"), e.commit_seq is not None))


async def seed(backend: Backend, keys: list[str] = KEYS, versions: int = 1) -> list[ObjectVersion]:
    seeded = []
    for round_ in range(versions):
        for n, key in enumerate(keys):
            storage_class = COLD if (n + round_) % 3 == 0 else HOT
            seeded.append(
                await seed_version(
                    backend.store,
                    backend.clock,
                    key,
                    data=f"{key}{round_}".encode(),
                    storage_class=storage_class,
                )
            )
    return seeded


async def delimited(backend: Backend, query: ListQuery) -> list[Entry]:
    async with backend.store.snapshot() as view:
        rows = await view.objects.list_delimited(query)
    return [
        Entry(r.prefix) if isinstance(r, CommonPrefix) else Entry(r[0]["key"], r[1]) for r in rows
    ]


async def every_page(backend: Backend, limit: int, **options: object) -> list[ListPage]:
    pages: list[ListPage] = []
    after = None
    for _ in range(500):  # a cursor that does not advance fails instead of hanging
        query = ListQuery(ACME, FILES, limit, after=after, **options)  # type: ignore[arg-type]
        pages.append(await list_objects(backend.store, query))
        if pages[-1].next_cursor is None:
            return pages
        after = ListCursor.decode(pages[-1].next_cursor)
    raise AssertionError("still paging after 500 pages")


async def test_keys_holding_the_delimiter_roll_up_once_in_key_order(backend: Backend) -> None:
    seeded = await seed(backend)
    got = await delimited(backend, ListQuery(ACME, FILES, 1000, delimiter="/"))
    assert got == model(seeded, delimiter="/")
    assert [e.key for e in got] == [
        "a",
        "b",
        "b.x",
        "b/",
        "b0",
        "c::d::e",
        "c::f",
        "c:g",
        "d→1",
        "d→2→3",
        "z",
        "é/",
        "日本/",
        "日本語",
        "\U0001f600/",
        "\U0010ffff/",
        "\U0010ffff\U0010ffff",
    ]
    assert [e.commit_seq is None for e in got].count(True) == 5


@pytest.mark.parametrize(
    ("prefix", "delimiter", "expected"),
    [
        # Nested: one level below the prefix.
        ("b/", "/", ["b/", "b/1", "b/2", "b/c/", "b/d/"]),
        ("b/c/", "/", ["b/c/3", "b/c/4"]),
        # A prefix not ending in the delimiter rolls up what follows it.
        ("b", "/", ["b", "b.x", "b/", "b0"]),
        # A key equal to the prefix is listed; a key equal to a common prefix rolls up.
        ("b/d/", "/", ["b/d/"]),
        # Multi-byte delimiters, in bytes and in characters.
        ("", "::", ["a", "b", "b.x", "b/", "b/1", "b/2", "b/c/3", "b/c/4", "b/d/", "b0",
                    "c::", "c:g", "d→1", "d→2→3", "z", "é/1", "日本/1", "日本/2/x", "日本語",
                    "\U0001f600/x", "\U0010ffff/1", "\U0010ffff\U0010ffff"]),
        ("c::", "::", ["c::d::", "c::f"]),
        ("d", "→", ["d→"]),
        ("d→", "→", ["d→1", "d→2→"]),
        ("日", "本", ["日本"]),
        ("日本", "/", ["日本/", "日本語"]),
        # The largest code point: its prefix has no upper bound to jump to.
        ("", "\U0010ffff", ["a", "b", "b.x", "b/", "b/1", "b/2", "b/c/3", "b/c/4", "b/d/",
                            "b0", "c::d::e", "c::f", "c:g", "d→1", "d→2→3", "z", "é/1", "日本/1",
                            "日本/2/x", "日本語", "\U0001f600/x", "\U0010ffff"]),
        ("\U0010ffff", "\U0010ffff", ["\U0010ffff/1", "\U0010ffff\U0010ffff"]),
        # A delimiter no key holds lists every key.
        ("b/", "#", ["b/", "b/1", "b/2", "b/c/3", "b/c/4", "b/d/"]),
    ],
)  # fmt: skip
async def test_prefix_and_delimiter(
    backend: Backend, prefix: str, delimiter: str, expected: list[str]
) -> None:
    seeded = await seed(backend)
    query = ListQuery(ACME, FILES, 1000, prefix=prefix, delimiter=delimiter)
    got = await delimited(backend, query)
    assert got == model(seeded, prefix=prefix, delimiter=delimiter)
    assert [e.key for e in got] == expected


@pytest.mark.parametrize("storage_class", [None, HOT, COLD])
@pytest.mark.parametrize("all_versions", [False, True])
@pytest.mark.parametrize(("prefix", "delimiter"), [("", "/"), ("b", "/"), ("", "→"), ("c", ":")])
async def test_pages_of_any_size_cover_the_listing_once(
    backend: Backend,
    prefix: str,
    delimiter: str,
    all_versions: bool,
    storage_class: StorageClass | None,
) -> None:
    """Pages that end on a version or on a rolled-up prefix resume where they ended;
    versions and the class filter shape the items, not the prefixes."""
    seeded = await seed(backend, versions=3)
    options = {
        "prefix": prefix,
        "delimiter": delimiter,
        "all_versions": all_versions,
        "storage_class": storage_class,
    }
    expected = model(seeded, **options)  # type: ignore[arg-type]
    assert await delimited(backend, ListQuery(ACME, FILES, 1000, **options)) == expected  # type: ignore[arg-type]
    for limit in (1, 2, 3, 7):
        pages = await every_page(backend, limit, **options)
        assert all(len(p.items) + len(p.common_prefixes) == limit for p in pages[:-1])
        got = list(itertools.chain.from_iterable(entries_of(p) for p in pages))
        assert got == [Entry(e.key, -1 if e.commit_seq is not None else None) for e in expected]


async def test_a_cursor_past_a_prefix_resumes_after_all_of_it(backend: Backend) -> None:
    seeded = await seed(backend)
    past = ListCursor.past("b/")
    got = await delimited(backend, ListQuery(ACME, FILES, 3, after=past, delimiter="/"))
    assert [e.key for e in got] == ["b0", "c::d::e", "c::f"]
    # Without a delimiter too (a client that dropped it between pages).
    async with backend.store.snapshot() as view:
        rows = await view.objects.list_page(ListQuery(ACME, FILES, 2, after=past))
    assert [s["key"] for s, _ in rows] == ["b0", "c::d::e"]
    async with backend.store.snapshot() as view:
        rows = await view.objects.list_page(ListQuery(ACME, FILES, 2, after=past, prefix="b"))
    assert [s["key"] for s, _ in rows] == ["b0"]
    assert seeded


async def test_cursor_after_the_largest_code_point_prefix(backend: Backend) -> None:
    await seed(backend)
    past = ListCursor.past("\U0010ffff")
    assert await delimited(backend, ListQuery(ACME, FILES, 5, after=past, delimiter="/")) == []


async def test_a_page_ending_on_a_prefix_gives_a_cursor_past_it(backend: Backend) -> None:
    await seed(backend)
    page = await list_objects(backend.store, ListQuery(ACME, FILES, 4, delimiter="/"))
    assert [s["key"] for s in page.items] == ["a", "b", "b.x"]
    assert page.common_prefixes == ["b/"]
    assert page.next_cursor is not None
    assert ListCursor.decode(page.next_cursor) == ListCursor.past("b/")
    after = ListCursor.decode(page.next_cursor)
    rest = await list_objects(backend.store, ListQuery(ACME, FILES, 2, after=after, delimiter="/"))
    assert [s["key"] for s in rest.items] == ["b0", "c::d::e"]
    assert rest.common_prefixes == []


async def test_other_tenants_and_namespaces_and_uncommitted_rows_are_not_listed(
    backend: Backend,
) -> None:
    await seed_version(backend.store, backend.clock, "x/1", tenant="other")
    await seed_version(backend.store, backend.clock, "y/1", namespace="kb")
    mine = await seed_version(backend.store, backend.clock, "w/1")
    got = await delimited(backend, ListQuery(ACME, FILES, 10, delimiter="/"))
    assert got == [Entry("w/")]
    async with backend.store.transaction() as uow:
        await uow.objects.mark_deleting(ACME, mine.id)
        await uow.commit()
    assert await delimited(backend, ListQuery(ACME, FILES, 10, delimiter="/")) == []


@pytest.mark.parametrize("bad", ["", "x" * 17, "é" * 9, "\x00", "/\x1f", "\x7f", "\ud800"])
async def test_a_bad_delimiter_is_refused(backend: Backend, bad: str) -> None:
    with pytest.raises(BadRequest):
        await list_objects(backend.store, ListQuery(ACME, FILES, 10, delimiter=bad))
