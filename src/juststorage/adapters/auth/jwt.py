"""JWT verification and issuing with PyJWT: HS256, RS256 and ES256, only as configured."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key

from juststorage.domain.auth import Principal, Scope, parse_tenants
from juststorage.domain.errors import BadRequest, Unauthorized
from juststorage.domain.model import TenantId

_LEEWAY_SECONDS = 30


def _algorithm_of_public_key(pem: str) -> str:
    try:
        key = load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise ValueError("JUSTSTORAGE_JWT_PUBLIC_KEY is not a PEM public key") from exc
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256"
    raise ValueError("JUSTSTORAGE_JWT_PUBLIC_KEY must be an RSA or EC (P-256) key")


class PyJwtVerifier:
    """Accepts exactly the algorithms whose keys are configured; `alg: none` never."""

    def __init__(
        self,
        *,
        secret: str | None,
        public_key_pem: str | None,
        audience: str | None = None,
        issuer: str | None = None,
        max_ttl_seconds: int,
    ) -> None:
        self._keys: dict[str, Any] = {}
        if secret:  # its length was checked with the settings (config.MIN_JWT_SECRET_BYTES)
            self._keys["HS256"] = secret
        if public_key_pem:
            self._keys[_algorithm_of_public_key(public_key_pem)] = public_key_pem
        if not self._keys:
            raise ValueError("a JWT verifier needs JWT_SECRET or JUSTSTORAGE_JWT_PUBLIC_KEY")
        self._audience = audience
        self._issuer = issuer
        self._max_ttl_seconds = max_ttl_seconds

    def verify(self, token: str) -> Principal:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError:
            raise Unauthorized("malformed token") from None
        if algorithm not in self._keys:
            raise Unauthorized(f"token algorithm {algorithm!r} is not accepted")
        try:
            claims = jwt.decode(
                token,
                key=self._keys[algorithm],
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=_LEEWAY_SECONDS,
                options={
                    "require": ["exp", "sub"],
                    # Always on: with no audience configured, PyJWT then refuses a
                    # token that names one (it was meant for another service).
                    "verify_aud": True,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        if self._audience is None and "aud" in claims:
            raise Unauthorized("token names an audience, and this server expects none")
        self._check_lifetime(claims)
        return _principal_from_claims(claims)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """A stolen long-lived token is a long-lived breach: cap `exp` - `iat`.

        Without `iat`, the time left (`exp` - now) is what is capped. A future `iat`
        (within the leeway) does not shorten the lifetime counted.
        """
        now = int(time.time())
        try:  # PyJWT checked both convert to int
            expires = int(claims["exp"])
            start = min(int(claims["iat"]), now) if "iat" in claims else now
        except (TypeError, ValueError):
            raise Unauthorized("token times are not integers") from None
        if expires - start > self._max_ttl_seconds:
            raise Unauthorized(f"token lifetime exceeds the maximum {self._max_ttl_seconds} s")


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    single = _one_tenant(claims["tenant"]) if "tenant" in claims else None
    if "tenants" in claims:
        tenants_claim = claims["tenants"]
    elif single is not None:
        tenants_claim = [single]
    else:
        raise Unauthorized("token names no tenant")
    scope_claim = claims.get("scope", "")
    if (
        not isinstance(tenants_claim, list)
        or not all(isinstance(t, str) for t in tenants_claim)
        or not isinstance(scope_claim, str)
        or not isinstance(claims["sub"], str)
    ):
        raise Unauthorized("token claims have the wrong types")
    try:
        return Principal(
            subject=claims["sub"],
            tenants=parse_tenants(tenants_claim),
            scopes=Scope.parse_many(scope_claim.split()),
        )
    except BadRequest as exc:
        raise Unauthorized(f"invalid token claims: {exc.message}") from None


def _one_tenant(claim: object) -> str:
    """The `tenant` claim names one tenant (SPEC §3): `"*"` there is not "every
    tenant", only `tenants: ["*"]` says that."""
    problem = "the tenant claim must name one valid tenant"
    if not isinstance(claim, str):
        raise Unauthorized(problem)
    try:
        return str(TenantId(claim))
    except BadRequest:
        raise Unauthorized(problem) from None


def issue_token(
    *,
    subject: str,
    tenants: Sequence[str],
    scopes: Sequence[str],
    ttl_seconds: int,
    secret: str | None = None,
    private_key_pem: str | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    max_ttl_seconds: int,
) -> str:
    """Sign a token with the secret (HS256) or a private key (RS256 / ES256).

    Raises:
        BadRequest: a bad tenant or scope, a lifetime over `max_ttl_seconds`, or no
            signing key.
    """
    parse_tenants(tenants)
    Scope.parse_many(scopes)
    if ttl_seconds > max_ttl_seconds:
        raise BadRequest(
            f"--ttl {ttl_seconds} is longer than the maximum token lifetime of"
            f" {max_ttl_seconds} s (JUSTSTORAGE_JWT_MAX_TTL_S); servers refuse such tokens"
        )
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": now,
        "exp": now + ttl_seconds,
        "tenants": list(tenants),
        "scope": " ".join(scopes),
    }
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    if private_key_pem is not None:
        try:
            key = load_pem_private_key(private_key_pem.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError) as exc:
            raise BadRequest("the private key is not an unencrypted PEM key") from exc
        if isinstance(key, rsa.RSAPrivateKey):
            return jwt.encode(claims, key, algorithm="RS256")
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return jwt.encode(claims, key, algorithm="ES256")
        raise BadRequest("the private key must be RSA or EC (P-256)")
    if secret:  # its length was checked with the settings (config.MIN_JWT_SECRET_BYTES)
        return jwt.encode(claims, secret, algorithm="HS256")
    raise BadRequest("no signing key: set JWT_SECRET or pass --private-key FILE")
