"""S3 secrets of API keys: derived from a master key on demand, never stored.

    secret = base64url(HMAC-SHA256(master key, "juststorage-s3-secret-v1" NUL key id
                                   NUL the key's stored SHA-256 hash)), unpadded

The database holds only the API key's hash (as for /v1), so a copy of it alone
yields no S3 secret; the master key (`JUSTSTORAGE_S3_MASTER_KEY`, or a 0600 file in
the data directory) is needed too. Revoking the API key revokes its S3 access: the
key's row is checked on every request, answered from memory only while the store's
revocation stamp is unchanged (the /v1 key cache's guarantee).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from juststorage.application.authentication import KEY_CACHE_ENTRIES, KEY_CACHE_SECONDS
from juststorage.application.ports import MetadataStore
from juststorage.application.records import ApiKeyRecord
from juststorage.domain.auth import Principal
from juststorage.domain.errors import NotFound

_LABEL = b"juststorage-s3-secret-v1"
# Access key ids are API key ids (16 hex digits today); anything else is unknown
# without a database read.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def derive_s3_secret(master_key: bytes, key_id: str, key_hash: str) -> str:
    """The S3 secret access key of the API key `key_id` whose stored hash is `key_hash`."""
    message = b"\0".join((_LABEL, key_id.encode("ascii"), key_hash.encode("ascii")))
    digest = hmac.digest(master_key, message, hashlib.sha256)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def principal_of(record: ApiKeyRecord) -> Principal:
    """The caller an API key stands for (the same subject as through /v1)."""
    return Principal(f"key:{record.id}", record.tenants, record.scopes)


@dataclass(frozen=True, slots=True)
class S3Key:
    """An active API key as an S3 credential."""

    key_id: str
    principal: Principal
    secret: str = field(repr=False)


class S3Keys(Protocol):
    async def find(self, key_id: str) -> S3Key | None:
        """The active key `key_id` with its secret, or None if unknown or revoked."""
        ...


@dataclass(frozen=True, slots=True)
class _Cached:
    stamp: Hashable
    until: float
    key: S3Key


class S3KeyStore:
    """Finds the active API key behind an access key id, with its derived secret.

    A key found is remembered for `KEY_CACHE_SECONDS` together with the store's
    revocation stamp read before its row: it is reused only while the stamp is
    unchanged, so a key revoked through the store is refused from the next request
    on. Unknown and revoked keys are never remembered.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        master_key: bytes,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata = metadata
        self._master_key = master_key
        self._monotonic = monotonic
        self._keys: dict[str, _Cached] = {}

    async def find(self, key_id: str) -> S3Key | None:
        """The active key `key_id`, or None if it is unknown or revoked."""
        if not _KEY_ID.fullmatch(key_id):
            return None
        # The stamp before the row: a revocation committed after this read changes it.
        stamp = self._metadata.revocation_stamp()
        now = self._monotonic()
        cached = self._keys.get(key_id)
        if (
            cached is not None
            and stamp is not None
            and cached.stamp == stamp
            and now < cached.until
        ):
            return cached.key
        async with self._metadata.snapshot() as view:
            record = await view.api_keys.get(key_id)
        if record is None or record.revoked_at is not None:
            self._keys.pop(key_id, None)
            return None
        key = S3Key(
            record.id, principal_of(record), derive_s3_secret(self._master_key, *_ids(record))
        )
        if stamp is not None:
            if len(self._keys) >= KEY_CACHE_ENTRIES:
                self._keys.clear()
            self._keys[key_id] = _Cached(stamp, now + KEY_CACHE_SECONDS, key)
        return key


def _ids(record: ApiKeyRecord) -> tuple[str, str]:
    return record.id, record.key_hash


async def s3_secret_of(metadata: MetadataStore, master_key: bytes, key_id: str) -> str:
    """The S3 secret of the active API key `key_id` (`juststorage keys s3-secret`).

    Raises:
        NotFound: no active API key has that id.
    """
    async with metadata.snapshot() as view:
        record = await view.api_keys.get(key_id)
    if record is None or record.revoked_at is not None:
        raise NotFound(f"no active API key with id {key_id!r}")
    return derive_s3_secret(master_key, record.id, record.key_hash)
