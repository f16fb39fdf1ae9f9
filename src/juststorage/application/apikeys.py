"""API keys: created once and shown once, stored only as a hash, revocable (SPEC §3)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from juststorage.application.ports import Clock, MetadataStore
from juststorage.application.records import ApiKeyRecord
from juststorage.domain.auth import ALL_TENANTS, Principal, Scope, parse_tenants
from juststorage.domain.errors import BadRequest, NotFound

KEY_PREFIX = "jsk_"


def hash_key(key: str) -> str:
    """SHA-256 of the key. Keys carry 256 random bits, so a fast unsalted hash is safe."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def key_id_of(key: str) -> str | None:
    """The id embedded in a generated key `jsk_<id>_<secret>`, or None."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    return key_id if sep and key_id and secret else None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKeyRecord
    key: str


def _new_key(clock: Clock, tenants: frozenset[str], scopes: frozenset[Scope]) -> CreatedKey:
    """A random key `jsk_<id>_<secret>` (256 random bits) and the record that stores its hash."""
    key_id = secrets.token_hex(8)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKeyRecord(
        id=key_id, key_hash=hash_key(key), tenants=tenants, scopes=scopes, created_at=clock.now()
    )
    return CreatedKey(record, key)


async def _add_key(metadata: MetadataStore, created: CreatedKey, *, first_only: bool) -> bool:
    """Store the record; with `first_only`, only into a database holding no key (count
    and insert share one transaction, so processes starting together add one)."""
    async with metadata.transaction() as uow:
        if first_only and await uow.api_keys.count() > 0:
            return False
        await uow.api_keys.add(created.record)
        await uow.commit()
    return True


async def create_api_key(
    metadata: MetadataStore, clock: Clock, tenants: list[str], scopes: list[str]
) -> CreatedKey:
    """A new random key bound to tenants and scopes. The key is returned, never stored."""
    if not scopes:
        raise BadRequest("a key needs at least one scope")
    created = _new_key(clock, parse_tenants(tenants), Scope.parse_many(scopes))
    await _add_key(metadata, created, first_only=False)
    return created


async def list_api_keys(metadata: MetadataStore) -> list[ApiKeyRecord]:
    async with metadata.snapshot() as view:
        return await view.api_keys.list_all()


async def revoke_api_key(metadata: MetadataStore, key_id: str) -> None:
    """Raises NotFound if there is no such active key."""
    async with metadata.transaction() as uow:
        revoked = await uow.api_keys.revoke(key_id)
        await uow.commit()
    if revoked:
        # After the commit: a check that sees the new stamp reads the revoked row.
        await metadata.announce_revocation()
    if not revoked:
        raise NotFound(f"no active API key with id {key_id!r}")


async def create_first_admin_key(metadata: MetadataStore, clock: Clock) -> CreatedKey | None:
    """On first start, one admin key for all tenants, unless the database holds any key."""
    created = _new_key(clock, frozenset({ALL_TENANTS}), frozenset({Scope.ADMIN}))
    return created if await _add_key(metadata, created, first_only=True) else None


@dataclass(frozen=True, slots=True)
class BootstrapKey:
    key_hash: str
    principal: Principal


# A short bootstrap key can be guessed; 32 characters hold 128 bits even as hex.
MIN_BOOTSTRAP_KEY_CHARS = 32


def parse_bootstrap_keys(raw: str | None) -> list[BootstrapKey]:
    """`API_KEYS`: comma-separated `key:tenants:scopes`, tenants `|`-separated, scopes spaced.

    Raises:
        BadRequest: an entry that does not parse, or whose key is shorter than
            `MIN_BOOTSTRAP_KEY_CHARS` (the message never contains the key).
    """
    keys = []
    for number, entry in enumerate((raw or "").split(","), start=1):
        if not entry.strip():
            continue
        parts = entry.strip().split(":", 2)
        if len(parts) != 3 or not parts[0]:
            raise BadRequest(f"API_KEYS entry {number} is not key:tenants:scopes")
        key, tenants, scopes = parts
        if len(key) < MIN_BOOTSTRAP_KEY_CHARS:
            raise BadRequest(
                f"API_KEYS entry {number}: the key must be at least"
                f" {MIN_BOOTSTRAP_KEY_CHARS} characters (e.g. `openssl rand -hex 32`)"
            )
        if not scopes.split():
            raise BadRequest(f"API_KEYS entry {number} has no scopes")
        principal = Principal(
            subject=f"bootstrap-key-{number}",
            tenants=parse_tenants(t for t in tenants.split("|") if t),
            scopes=Scope.parse_many(scopes.split()),
        )
        keys.append(BootstrapKey(hash_key(key), principal))
    return keys
