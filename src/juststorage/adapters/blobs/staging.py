"""What every store's `stage()` shares: the staged upload's cleanup cannot be skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import anyio


class _Closable(Protocol):
    async def aclose(self) -> None: ...


Staged = TypeVar("Staged", bound=_Closable)


@asynccontextmanager
async def cleaned_up(staged: Staged) -> AsyncIterator[Staged]:
    """Yield `staged`; on leaving, whatever happened, its `aclose()` removes what did
    not become the blob. Shielded, so a cancelled upload still cleans up before the
    block is left."""
    try:
        yield staged
    finally:
        with anyio.CancelScope(shield=True):
            await staged.aclose()
