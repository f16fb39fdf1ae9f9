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
    ) -> None:
        self._keys: dict[str, Any] = {}
        if secret:
            self._keys["HS256"] = secret
        if public_key_pem:
            self._keys[_algorithm_of_public_key(public_key_pem)] = public_key_pem
        if not self._keys:
            raise ValueError("a JWT verifier needs JWT_SECRET or JUSTSTORAGE_JWT_PUBLIC_KEY")
        self._audience = audience
        self._issuer = issuer

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
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("token expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}") from None
        return _principal_from_claims(claims)


def _principal_from_claims(claims: dict[str, Any]) -> Principal:
    if "tenants" in claims:
        tenants_claim = claims["tenants"]
    elif "tenant" in claims:
        tenants_claim = [claims["tenant"]]
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
) -> str:
    """Sign a token with the secret (HS256) or a private key (RS256 / ES256)."""
    parse_tenants(tenants)
    Scope.parse_many(scopes)
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
    if secret:
        return jwt.encode(claims, secret, algorithm="HS256")
    raise BadRequest("no signing key: set JWT_SECRET or pass --private-key FILE")
