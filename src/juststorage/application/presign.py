"""Presigned URLs (SPEC §8.5): one method on one object until an expiry, no credential.

    signing key = HMAC-SHA256(master key, "juststorage-presign-v1")
    signature   = base64url(HMAC-SHA256(signing key, canonical)), unpadded
    canonical   = the length-prefixed fields: method, target, expiry (Unix seconds),
                  issuing credential, and the credential's binding

The master key is the S3 one (`bootstrap.s3_master_key`: every process sharing the
database has it, the database does not), under its own label. The target is
`key` + namespace + tenant + key bytes, or `id` + tenant + object id. The credential
is named in the URL (`key:<id>`, `bootstrap-key-<n>`, `jwt:<digest of sub>` or
`anonymous`); its binding, which the URL does not carry, is the stored hash of an
API key: a key revoked (or replaced by another with the same name) no longer
verifies. A stored
key's row is read through a cache that keeps the /v1 key cache's rule: reused only
while the store's revocation stamp is unchanged. A JWT cannot be asked again at
use: its URL expires no later than its `exp`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from uuid import UUID

from juststorage.application.apikeys import BootstrapKey, hash_key, key_id_of
from juststorage.application.authentication import KEY_CACHE_ENTRIES, KEY_CACHE_SECONDS
from juststorage.application.ports import MetadataStore
from juststorage.application.records import ApiKeyRecord
from juststorage.domain.auth import ANONYMOUS_ADMIN, Principal, Scope
from juststorage.domain.errors import BadRequest, Forbidden
from juststorage.domain.model import Namespace, ObjectKey, TenantId

_LABEL = b"juststorage-presign-v1"
MAX_EXPIRES_IN = 604800
DEFAULT_EXPIRES_IN = 3600
METHODS = ("GET", "HEAD", "PUT")
SCOPE_OF_METHOD = {
    "GET": Scope.OBJECTS_READ,
    "HEAD": Scope.OBJECTS_READ,
    "PUT": Scope.OBJECTS_WRITE,
}
ANONYMOUS = "anonymous"
_JWT = "jwt:"
_KEY = "key:"
_BOOTSTRAP = "bootstrap-key-"


@dataclass(frozen=True, slots=True)
class Target:
    """The one object a URL names: by key (namespace and key set) or by id."""

    tenant: TenantId
    namespace: Namespace | None = None
    key: ObjectKey | None = None
    object_id: UUID | None = None

    def fields(self) -> list[bytes]:
        if self.object_id is not None:
            return [b"id", self.tenant.encode(), str(self.object_id).encode()]
        assert self.namespace is not None and self.key is not None
        return [b"key", self.namespace.encode(), self.tenant.encode(), self.key.encode()]


@dataclass(frozen=True, slots=True)
class Issuer:
    """The credential that signs: its name in the URL, its binding, the end of its
    validity (a JWT's `exp`) if it has one."""

    credential: str
    binding: bytes
    not_after: int | None = None


def _canonical(method: str, target: Target, expires: int, issuer: Issuer) -> bytes:
    fields = [
        _LABEL,
        method.encode("ascii"),
        *target.fields(),
        str(expires).encode("ascii"),
        issuer.credential.encode("utf-8", "surrogatepass"),
        issuer.binding,
    ]
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


@dataclass(frozen=True, slots=True)
class _Cached:
    stamp: Hashable
    until: float
    record: ApiKeyRecord


class Presigner:
    """Signs and checks presigned URLs for every process holding `master_key`."""

    def __init__(
        self,
        master_key: bytes,
        metadata: MetadataStore,
        *,
        bootstrap_keys: list[BootstrapKey],
        auth_enabled: bool,
        jwt_keys: tuple[str, ...],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = hmac.digest(master_key, _LABEL, hashlib.sha256)
        # A JWT's URLs are bound to the keys that verify JWTs: replacing them (a
        # rotated JWT_SECRET) ends every URL a JWT signed; none configured, none works.
        self._jwt_binding = (
            b"jwt:" + hashlib.sha256("\0".join(jwt_keys).encode("utf-8")).digest()
            if jwt_keys
            else None
        )
        self._metadata = metadata
        self._bootstrap = {k.principal.subject: k for k in bootstrap_keys}
        self._auth_enabled = auth_enabled
        self._monotonic = monotonic
        self._records: dict[str, _Cached] = {}

    def issuer_of(
        self, credential: str | None, principal: Principal, jwt_exp: int | None
    ) -> Issuer:
        """The issuer behind an authenticated `credential` (the bearer value) whose
        principal is `principal`; `jwt_exp` is the token's `exp` when it is a JWT."""
        if principal is ANONYMOUS_ADMIN or credential is None:
            return Issuer(ANONYMOUS, b"")
        digest = hash_key(credential)
        bootstrap = self._bootstrap.get(principal.subject)
        if bootstrap is not None and hmac.compare_digest(bootstrap.key_hash, digest):
            return Issuer(principal.subject, digest.encode("ascii"))
        key_id = key_id_of(credential)
        if key_id is not None and principal.subject == f"{_KEY}{key_id}":
            return Issuer(principal.subject, digest.encode("ascii"))
        if self._jwt_binding is None:
            raise Forbidden("this credential cannot presign")
        return Issuer(jwt_credential(principal.subject), self._jwt_binding, jwt_exp)

    def sign(self, method: str, target: Target, expires: int, issuer: Issuer) -> str:
        """The signature of a URL for `method` on `target` until `expires` (Unix s)."""
        digest = hmac.digest(self._key, _canonical(method, target, expires, issuer), hashlib.sha256)
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    async def verify(
        self,
        method: str,
        target: Target,
        expires: int,
        credential: str,
        signature: str,
        now: float,
    ) -> Principal:
        """A principal for exactly this method and tenant, if the URL is genuine,
        unexpired and its issuer still valid.

        Raises:
            Forbidden: anything else (tampered, expired, revoked), one answer for all.
        """
        named = await self._issuer_named(credential)
        scope = SCOPE_OF_METHOD.get(method)
        if named is None or scope is None:
            raise Forbidden("the presigned URL is invalid")
        issuer, holder = named
        expected = self.sign(method, target, expires, issuer)
        if not hmac.compare_digest(expected.encode(), signature.encode("ascii", "replace")):
            raise Forbidden("the presigned URL is invalid")
        if now > expires:
            raise Forbidden("the presigned URL has expired")
        if holder is not None and not (
            holder.has_scope(scope) and holder.holds_tenant(target.tenant)
        ):
            raise Forbidden("the presigned URL's credential no longer grants this")
        return Principal(f"presigned:{credential}", frozenset({target.tenant}), frozenset({scope}))

    async def _issuer_named(self, credential: str) -> tuple[Issuer, Principal | None] | None:
        """The issuer a URL names, and the principal that must still hold its grant;
        None for an unknown, revoked or no longer configured issuer."""
        if credential == ANONYMOUS:
            return None if self._auth_enabled else (Issuer(ANONYMOUS, b""), None)
        if credential.startswith(_JWT):
            if self._jwt_binding is None:
                return None
            return Issuer(credential, self._jwt_binding), None
        if credential.startswith(_BOOTSTRAP):
            found = self._bootstrap.get(credential)
            if found is None:
                return None
            return Issuer(credential, found.key_hash.encode("ascii")), found.principal
        if credential.startswith(_KEY):
            record = await self._active_record(credential[len(_KEY) :])
            if record is None:
                return None
            principal = Principal(credential, record.tenants, record.scopes)
            return Issuer(credential, record.key_hash.encode("ascii")), principal
        return None

    async def _active_record(self, key_id: str) -> ApiKeyRecord | None:
        if not key_id or len(key_id) > 64 or not key_id.isascii() or not key_id.isalnum():
            return None
        # The stamp before the row: a revocation committed after this read changes it.
        stamp = self._metadata.revocation_stamp()
        now = self._monotonic()
        cached = self._records.get(key_id)
        fresh = cached is not None and stamp is not None and now < cached.until
        if fresh and cached is not None and cached.stamp == stamp:
            return cached.record
        async with self._metadata.snapshot() as view:
            record = await view.api_keys.get(key_id)
        if record is None or record.revoked_at is not None:
            self._records.pop(key_id, None)
            return None
        if stamp is not None:
            if len(self._records) >= KEY_CACHE_ENTRIES:
                self._records.clear()
            self._records[key_id] = _Cached(stamp, now + KEY_CACHE_SECONDS, record)
        return record


def jwt_credential(subject: str) -> str:
    """The URL's name for a JWT issuer: `jwt:` and 22 base64url characters of the
    SHA-256 of its `sub`, a fixed length whatever the subject (a long one would
    overflow `js-credential`, a lone surrogate could not be put in a URL at all)."""
    digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).digest()
    return _JWT + base64.urlsafe_b64encode(digest).decode("ascii")[:22]


def expires_in_of(value: object) -> int:
    """`expires_in` of a presign request: an integer 1–604800, default 3600.

    Raises:
        BadRequest: anything else.
    """
    if value is None:
        return DEFAULT_EXPIRES_IN
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPIRES_IN:
        raise BadRequest(f"expires_in must be an integer from 1 to {MAX_EXPIRES_IN}")
    return value
