"""FakeLeaseRepository and FakeApiKeyRepository over `State`."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from fakes.clock import FakeClock
from fakes.state import State
from juststorage.application.records import ApiKeyRecord
from juststorage.domain.errors import StorageError


class FakeLeaseRepository:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def claim(
        self, name: str, holder: str, until: datetime, *, replacing: str | None = None
    ) -> bool:
        current = self._state.leases.get(name)
        if (
            current is not None
            and current[0] not in (holder, replacing)
            and current[1] >= self._clock.now()
        ):
            return False
        self._state.leases[name] = (holder, until)
        return True

    async def holder_of(self, name: str) -> str | None:
        current = self._state.leases.get(name)
        return current[0] if current else None

    async def release(self, name: str, holder: str) -> None:
        current = self._state.leases.get(name)
        if current is not None and current[0] == holder:
            del self._state.leases[name]

    async def renew(self, name: str, holder: str, until: datetime) -> bool:
        current = self._state.leases.get(name)
        if current is None or current[0] != holder or current[1] < self._clock.now():
            return False
        self._state.leases[name] = (holder, until)
        return True

    async def release_valid(self, name: str, holder: str) -> bool:
        current = self._state.leases.get(name)
        if current is None or current[0] != holder or current[1] < self._clock.now():
            return False
        del self._state.leases[name]
        return True

    async def named(self, prefix: str) -> list[tuple[str, str, datetime]]:
        return [
            (name, holder, until)
            for name, (holder, until) in self._state.leases.items()
            if name.startswith(prefix)
        ]


class FakeApiKeyRepository:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def add(self, record: ApiKeyRecord) -> None:
        if record.id in self._state.api_keys:
            raise StorageError(f"duplicate API key id {record.id}")
        self._state.api_keys[record.id] = record

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        return self._state.api_keys.get(key_id)

    async def list_all(self) -> list[ApiKeyRecord]:
        return sorted(self._state.api_keys.values(), key=lambda r: r.created_at)

    async def revoke(self, key_id: str) -> bool:
        record = self._state.api_keys.get(key_id)
        if record is None or record.revoked_at is not None:
            return False
        self._state.api_keys[key_id] = dataclasses.replace(record, revoked_at=self._clock.now())
        return True

    async def count(self) -> int:
        return len(self._state.api_keys)


class FakeBackupHolds:
    def __init__(self, state: State, clock: FakeClock) -> None:
        self._state = state
        self._clock = clock

    async def take(
        self, hold_id: str, holder: str, until: datetime, started_at: datetime | None = None
    ) -> datetime:
        started_at = started_at or self._clock.now()
        self._state.holds[hold_id] = (holder, started_at, until)
        return started_at

    async def renew(self, hold_id: str, until: datetime) -> bool:
        current = self._state.holds.get(hold_id)
        if current is None:
            return False
        self._state.holds[hold_id] = (current[0], current[1], until)
        return True

    async def release(self, hold_id: str) -> None:
        self._state.holds.pop(hold_id, None)

    async def all(self) -> list[tuple[str, str, datetime, datetime]]:
        return sorted(
            ((i, h, s, e) for i, (h, s, e) in self._state.holds.items()), key=lambda t: t[2]
        )
