"""The restore's spill file of placed blobs gives back every blob as it was added:
rows, locations (none, a filesystem address, inline) and the inline bytes exactly,
empty ones included, in pages of at most 500."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from juststorage.application.restore import PlacedBlob, RestoreFailed, _Placements

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _row(i: int) -> dict[str, object]:
    return {
        "storage_class": "hot" if i % 2 else "cold",
        "content_hash": f"{i:064x}",
        "size_bytes": i,
        "created_at": datetime(2026, 1, 1, 0, 0, i % 60, 123456, tzinfo=UTC),
    }


async def test_the_spill_gives_back_every_placement_exactly() -> None:
    added = []
    for i in range(1203):
        if i % 3 == 0:
            placed = PlacedBlob(_row(i), f"inline:{i:064x}", os.urandom(i % 700))
        elif i % 3 == 1:
            placed = PlacedBlob(_row(i), None, None)
        else:
            placed = PlacedBlob(_row(i), "other/address-é", None)
        added.append(placed)
    added.append(PlacedBlob(_row(0), "inline:" + "0" * 64, b""))  # an empty blob
    spill = _Placements()
    try:
        for placed in added:
            spill.add(placed)
        pages = [page async for page in spill.pages()]
    finally:
        spill.close()
    assert [len(p) for p in pages] == [500, 500, 204]
    assert [p for page in pages for p in page] == added


async def test_a_truncated_spill_is_a_restore_failure() -> None:
    spill = _Placements()
    try:
        spill.add(PlacedBlob(_row(1), "inline:" + "1" * 64, b"x" * 100))
        spill._file.truncate(50)
        with pytest.raises(RestoreFailed, match="truncated"):
            [page async for page in spill.pages()]
    finally:
        spill.close()
