"""Authentication: turn `Authorization: Bearer <credential>` into a Principal."""

from __future__ import annotations

import hmac

from juststorage.application.apikeys import BootstrapKey, hash_key, key_id_of
from juststorage.application.ports import MetadataStore, TokenVerifier
from juststorage.domain.auth import ANONYMOUS_ADMIN, Principal
from juststorage.domain.errors import Unauthorized


class Authenticator:
    """Checks API keys (bootstrap and stored) and JWTs, on every call."""

    def __init__(
        self,
        metadata: MetadataStore,
        *,
        jwt: TokenVerifier | None,
        bootstrap_keys: list[BootstrapKey],
        enabled: bool = True,
    ) -> None:
        self._metadata = metadata
        self._jwt = jwt
        self._bootstrap = bootstrap_keys
        self.enabled = enabled

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
            async with self._metadata.snapshot() as view:
                record = await view.api_keys.get(key_id)
            if (
                record is not None
                and record.revoked_at is None
                and hmac.compare_digest(record.key_hash, digest)
            ):
                return Principal(f"key:{record.id}", record.tenants, record.scopes)
            raise Unauthorized("unknown or revoked API key")
        if self._jwt is not None and credential.count(".") == 2:
            return self._jwt.verify(credential)
        raise Unauthorized("unknown credential")
