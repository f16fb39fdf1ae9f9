"""Authentication: turn `Authorization: Bearer <credential>` into a Principal."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from juststorage.application.apikeys import BootstrapKey, hash_key, key_id_of
from juststorage.application.ports import MetadataStore, TokenVerifier
from juststorage.domain.auth import ANONYMOUS_ADMIN, Principal
from juststorage.domain.errors import Unauthorized

# A stored key's check is answered from memory for at most this long when the store
# signals revocations (`MetadataStore.revocation_stamp`): a revocation made through
# the store is seen at once, any other change to the key's row within this bound.
KEY_CACHE_SECONDS = 1.0
KEY_CACHE_ENTRIES = 1024  # distinct valid keys remembered; all forgotten when full


@dataclass(frozen=True, slots=True)
class _CachedKey:
    stamp: Hashable
    until: float
    principal: Principal


class Authenticator:
    """Checks API keys (bootstrap and stored) and JWTs, on every call.

    A stored key that checked out is remembered by its hash for `KEY_CACHE_SECONDS`,
    together with the store's revocation stamp read before its row was: a later
    check reuses it only while the stamp is unchanged, so a key revoked through
    the store (`revoke_api_key`, which changes the stamp after its commit) is
    refused from the next check on. Unknown, revoked and malformed keys are never
    remembered.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        *,
        jwt: TokenVerifier | None,
        bootstrap_keys: list[BootstrapKey],
        enabled: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata = metadata
        self._jwt = jwt
        self._bootstrap = bootstrap_keys
        self.enabled = enabled
        self._monotonic = monotonic
        self._keys: dict[str, _CachedKey] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        """Raises Unauthorized for a missing, malformed, unknown, revoked or expired credential."""
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if not authorization:
            raise Unauthorized("send Authorization: Bearer <API key or JWT>")
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthorized("send Authorization: Bearer <API key or JWT>")
        digest = hash_key(credential)
        match = None
        for candidate in self._bootstrap:  # compare with every key: no early exit
            if hmac.compare_digest(candidate.key_hash, digest):
                match = candidate.principal
        if match is not None:
            return match
        key_id = key_id_of(credential)
        if key_id is not None:
            return await self._stored_key(key_id, digest)
        if self._jwt is not None and credential.count(".") == 2:
            return self._jwt.verify(credential)
        raise Unauthorized("unknown credential")

    async def _stored_key(self, key_id: str, digest: str) -> Principal:
        # The stamp before the row: a revocation committed after this read changes it.
        stamp = self._metadata.revocation_stamp()
        now = self._monotonic()
        cached = self._keys.get(digest)
        fresh = cached is not None and stamp is not None and now < cached.until
        if fresh and cached is not None and cached.stamp == stamp:
            return cached.principal
        async with self._metadata.snapshot() as view:
            record = await view.api_keys.get(key_id)
        if (
            record is None
            or record.revoked_at is not None
            or not hmac.compare_digest(record.key_hash, digest)
        ):
            self._keys.pop(digest, None)
            raise Unauthorized("unknown or revoked API key")
        principal = Principal(f"key:{record.id}", record.tenants, record.scopes)
        if stamp is not None:
            if len(self._keys) >= KEY_CACHE_ENTRIES:
                self._keys.clear()
            self._keys[digest] = _CachedKey(stamp, now + KEY_CACHE_SECONDS, principal)
        return principal
