"""JWT claim rules of the PyJWT adapter (SPEC §3): tenant, audience, lifetime, secret."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from juststorage.adapters.auth.jwt import PyJwtVerifier, issue_token
from juststorage.bootstrap import build_jwt_verifier, sign_token
from juststorage.config import DEFAULT_JWT_MAX_TTL_SECONDS, MIN_JWT_SECRET_BYTES, Settings
from juststorage.domain.auth import ALL_TENANTS
from juststorage.domain.errors import BadRequest, Unauthorized

SECRET = "unit-jwt-secret-" + "x" * 32
HOUR = 3600


def _token(**claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "svc", "iat": now, "exp": now + 600, "scope": "objects:read"}
    return jwt.encode({**base, **claims}, SECRET, algorithm="HS256")


def _verifier(**options: Any) -> PyJwtVerifier:
    options.setdefault("max_ttl_seconds", DEFAULT_JWT_MAX_TTL_SECONDS)
    return PyJwtVerifier(secret=SECRET, public_key_pem=None, **options)


@pytest.mark.parametrize("tenant", ["*", "Acme", "", "a" * 64, "-x", 7, None, ["acme"]])
def test_tenant_claim_must_name_one_valid_tenant(tenant: object) -> None:
    with pytest.raises(Unauthorized, match="tenant claim"):
        _verifier().verify(_token(tenant=tenant))


def test_only_tenants_star_means_every_tenant() -> None:
    assert _verifier().verify(_token(tenant="acme")).tenants == {"acme"}
    assert _verifier().verify(_token(tenants=["*"])).tenants == {ALL_TENANTS}


def test_token_with_an_audience_is_refused_when_none_is_configured() -> None:
    with pytest.raises(Unauthorized):
        _verifier().verify(_token(tenant="acme", aud="another-service"))
    with pytest.raises(Unauthorized):
        _verifier().verify(_token(tenant="acme", aud=["another-service"]))
    configured = _verifier(audience="juststorage")
    assert configured.verify(_token(tenant="acme", aud="juststorage")).subject == "svc"


@pytest.mark.parametrize(
    ("iat_offset", "exp_offset", "accepted"),
    [
        (0, HOUR, True),
        (-HOUR // 2, HOUR // 2, True),  # exactly the maximum
        (-HOUR // 2, HOUR // 2 + 1, False),
        (-10 * HOUR, 60, False),  # issued long ago for a long life: still too long
        (None, HOUR, True),  # no iat: the time left is what counts
        (None, HOUR + 60, False),
        (20, HOUR + 20, False),  # an iat in the future does not shorten the life counted
    ],
)
def test_token_lifetime_over_the_maximum_is_401(
    iat_offset: int | None, exp_offset: int, accepted: bool
) -> None:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": "svc", "tenant": "acme", "exp": now + exp_offset}
    if iat_offset is not None:
        claims["iat"] = now + iat_offset
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    verifier = _verifier(max_ttl_seconds=HOUR)
    if accepted:
        assert verifier.verify(token).tenants == {"acme"}
    else:
        with pytest.raises(Unauthorized, match="lifetime"):
            verifier.verify(token)


def test_issuing_a_token_longer_than_the_maximum_is_refused() -> None:
    args: dict[str, Any] = {"subject": "s", "tenants": ["acme"], "scopes": ["admin"]}
    with pytest.raises(BadRequest, match="JUSTSTORAGE_JWT_MAX_TTL_S"):
        issue_token(**args, ttl_seconds=HOUR + 1, secret=SECRET, max_ttl_seconds=HOUR)
    token = issue_token(**args, ttl_seconds=HOUR, secret=SECRET, max_ttl_seconds=HOUR)
    assert _verifier(max_ttl_seconds=HOUR).verify(token).subject == "s"


@pytest.mark.parametrize("secret", ["short", "x" * 31, "é" * 15])
def test_short_hs256_secrets_are_refused(secret: str) -> None:
    """Refused with the settings, which every secret the verifier and `token issue`
    use comes from."""
    with pytest.raises(ValidationError, match=f"at least {MIN_JWT_SECRET_BYTES} bytes"):
        Settings(jwt_secret=secret)
    settings = Settings(jwt_secret="é" * 16)  # 32 bytes of UTF-8
    token = sign_token(settings, subject="s", tenants=("a",), scopes=("admin",), ttl_seconds=60)
    verifier = build_jwt_verifier(settings)
    assert verifier is not None and verifier.verify(token).subject == "s"


def test_secret_length_and_token_lifetime_are_written_once() -> None:
    """One constant each (config.py), used by the settings, the adapters' callers and
    the CLI's help, so that the rules cannot drift apart."""
    package = Path(__file__).resolve().parents[2] / "src" / "juststorage"
    sources = {path: path.read_text("utf-8") for path in package.rglob("*.py")}
    lengths = [p for p, text in sources.items() if re.search(r"^\w*SECRET_BYTES =", text, re.M)]
    lifetimes = [p for p, text in sources.items() if re.search(r"24 \* 3600|\b86400\b(?!\.)", text)]
    assert [p.name for p in lengths] == ["config.py"], lengths
    assert [p.name for p in lifetimes] == ["config.py"], lifetimes
    assert Settings().jwt_max_ttl_seconds == DEFAULT_JWT_MAX_TTL_SECONDS == 24 * 3600
