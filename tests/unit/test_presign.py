"""application.presign: what a presigned URL's signature binds, and who may use it."""

from __future__ import annotations

import pytest

from fakes.clock import FakeClock
from fakes.metadata import FakeMetadataStore
from juststorage.application.apikeys import create_api_key, parse_bootstrap_keys, revoke_api_key
from juststorage.application.presign import Presigner, Target, jwt_credential
from juststorage.domain.auth import ANONYMOUS_ADMIN, Principal, Scope
from juststorage.domain.errors import Forbidden
from juststorage.domain.model import Namespace, ObjectKey, TenantId

pytestmark = pytest.mark.anyio

MASTER = b"m" * 64
BOOT = "b" * 40
TARGET = Target(TenantId("acme"), namespace=Namespace("files"), key=ObjectKey("a/b"))
JWT_PRINCIPAL = Principal("svc", frozenset({"acme"}), frozenset({Scope.OBJECTS_READ}))
TOKEN = "header.payload.signature"


def presigner(
    metadata: FakeMetadataStore, *, jwt_keys: tuple[str, ...] = ("s" * 40,), auth: bool = True
) -> Presigner:
    return Presigner(
        MASTER,
        metadata,
        bootstrap_keys=parse_bootstrap_keys(f"{BOOT}:acme:objects:read"),
        auth_enabled=auth,
        jwt_keys=jwt_keys,
    )


async def test_a_stored_keys_url_verifies_until_the_key_is_revoked() -> None:
    clock = FakeClock()
    metadata = FakeMetadataStore(clock)
    created = await create_api_key(metadata, clock, ["acme"], ["objects:read"])
    signer = presigner(metadata)
    principal = Principal(f"key:{created.record.id}", frozenset({"acme"}), frozenset())
    issuer = signer.issuer_of(created.key, principal, None)
    assert issuer.credential == f"key:{created.record.id}"
    signature = signer.sign("GET", TARGET, 2000, issuer)
    granted = await signer.verify("GET", TARGET, 2000, issuer.credential, signature, 1000)
    assert granted.tenants == frozenset({"acme"})
    assert granted.scopes == frozenset({Scope.OBJECTS_READ})
    with pytest.raises(Forbidden):
        await signer.verify("PUT", TARGET, 2000, issuer.credential, signature, 1000)
    with pytest.raises(Forbidden):
        await signer.verify("GET", TARGET, 2000, issuer.credential, signature, 2001)
    await revoke_api_key(metadata, created.record.id)
    with pytest.raises(Forbidden):
        await signer.verify("GET", TARGET, 2000, issuer.credential, signature, 1000)


async def test_other_processes_with_the_same_master_key_agree() -> None:
    metadata = FakeMetadataStore(FakeClock())
    bootstrap = parse_bootstrap_keys(f"{BOOT}:acme:objects:read")[0].principal
    one, two = presigner(metadata), presigner(metadata)
    issuer = one.issuer_of(BOOT, bootstrap, None)
    signature = one.sign("GET", TARGET, 2000, issuer)
    assert await two.verify("GET", TARGET, 2000, issuer.credential, signature, 1000)
    other_master = Presigner(b"x" * 64, metadata, bootstrap_keys=[], auth_enabled=True, jwt_keys=())
    with pytest.raises(Forbidden):
        await other_master.verify("GET", TARGET, 2000, issuer.credential, signature, 1000)


async def test_a_jwts_url_ends_with_its_exp_and_with_its_signing_keys() -> None:
    metadata = FakeMetadataStore(FakeClock())
    signer = presigner(metadata)
    issuer = signer.issuer_of(TOKEN, JWT_PRINCIPAL, 1500)
    assert (issuer.credential, issuer.not_after) == (jwt_credential("svc"), 1500)
    signature = signer.sign("GET", TARGET, 1500, issuer)
    assert await signer.verify("GET", TARGET, 1500, issuer.credential, signature, 1000)
    rotated = presigner(metadata, jwt_keys=("t" * 40,))
    without = presigner(metadata, jwt_keys=())
    for verifier in (rotated, without):
        with pytest.raises(Forbidden):
            await verifier.verify("GET", TARGET, 1500, issuer.credential, signature, 1000)


async def test_a_jwt_naming_a_bootstrap_subject_is_still_a_jwt() -> None:
    metadata = FakeMetadataStore(FakeClock())
    signer = presigner(metadata)
    posing = Principal("bootstrap-key-1", frozenset({"acme"}), frozenset({Scope.ADMIN}))
    credential = signer.issuer_of(TOKEN, posing, 1500).credential
    assert credential == jwt_credential("bootstrap-key-1") and credential.startswith("jwt:")


def test_a_jwt_issuer_is_named_by_a_fixed_length_digest_of_its_subject() -> None:
    names = {jwt_credential(s) for s in ("svc", "svc ", "s" * 5000, "\ud800", "\udfff")}
    assert len(names) == 5
    assert all(len(n) == len("jwt:") + 22 and n.isascii() for n in names)
    # base64url of SHA-256("svc"), the first 22 characters: fixed across versions.
    assert jwt_credential("svc") == "jwt:" + "NIxlhoKuhwHT6dIfGRhySR"


async def test_an_anonymous_url_works_only_while_authentication_is_off() -> None:
    metadata = FakeMetadataStore(FakeClock())
    open_store = presigner(metadata, auth=False)
    issuer = open_store.issuer_of(None, ANONYMOUS_ADMIN, None)
    signature = open_store.sign("GET", TARGET, 2000, issuer)
    assert await open_store.verify("GET", TARGET, 2000, "anonymous", signature, 1000)
    with pytest.raises(Forbidden):
        await presigner(metadata).verify("GET", TARGET, 2000, "anonymous", signature, 1000)
