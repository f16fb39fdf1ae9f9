"""`juststorage keys create --s3` and `keys s3-secret`, run as a user runs them, and
the printed pair signing real requests against the same store."""

from __future__ import annotations

import asyncio
import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from fakes.clock import FakeClock
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore
from juststorage.bootstrap import s3_master_key
from juststorage.config import load_settings
from juststorage.s3.secrets import S3KeyStore
from juststorage.s3.signing import S3Authenticator, S3AuthError, Verified
from juststorage.testing import clean_env, run_cli
from support.s3_requests import head_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def store_env(tmp_path: Path) -> dict[str, str]:
    env = clean_env(tmp_path / "data")
    created = run_cli(["migrate"], env)
    assert created.returncode == 0, created.stderr
    return env


def _verify(env: dict[str, str], key_id: str, secret: str) -> Verified:
    """A request signed with the pair, checked by the server's authenticator."""
    settings = load_settings(env)

    async def check() -> Verified:
        store = SqliteMetadataStore(settings.data_dir / "meta.db", FakeClock())
        try:
            keys = S3KeyStore(store, s3_master_key(settings))
            request = AWSRequest("GET", "http://127.0.0.1:9000/acme.docs/k")
            S3SigV4Auth(Credentials(key_id, secret), "s3", "us-east-1").add_auth(request)
            return await S3Authenticator(keys, FakeClock(datetime.now(UTC))).verify(
                head_of(request)
            )
        finally:
            await store.close()

    return asyncio.run(check())


def test_keys_create_s3_json_prints_a_pair_that_signs(store_env: dict[str, str]) -> None:
    args = ["keys", "create", "--tenant", "acme", "--scope", "objects:read", "--s3", "--json"]
    result = run_cli(args, store_env)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["access_key_id"] == printed["id"]
    assert len(printed["secret_access_key"]) == 43
    verified = _verify(store_env, printed["access_key_id"], printed["secret_access_key"])
    assert verified.principal.tenants == frozenset({"acme"})
    master = Path(store_env["JUSTSTORAGE_DATA_DIR"]) / "s3-master.key"
    assert stat.S_IMODE(master.stat().st_mode) == 0o600


def test_keys_create_s3_text_and_s3_secret_print_the_same_secret(
    store_env: dict[str, str],
) -> None:
    args = ["keys", "create", "--tenant", "acme", "--scope", "admin", "--s3"]
    result = run_cli(args, store_env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("jsk_")  # the key stays alone on the last line
    pair = dict(line.split(" = ", 1) for line in lines[:-1])
    key_id, secret = pair["aws_access_key_id"], pair["aws_secret_access_key"]
    again = run_cli(["keys", "s3-secret", key_id], store_env)
    assert (again.returncode, again.stdout.strip()) == (0, secret), again.stderr
    as_json = json.loads(run_cli(["keys", "s3-secret", key_id, "--json"], store_env).stdout)
    assert as_json == {"access_key_id": key_id, "secret_access_key": secret}
    assert _verify(store_env, key_id, secret).key_id == key_id
    assert run_cli(["keys", "revoke", key_id], store_env).returncode == 0
    with pytest.raises(S3AuthError) as caught:
        _verify(store_env, key_id, secret)
    assert caught.value.code == "InvalidAccessKeyId"
    revoked = run_cli(["keys", "s3-secret", key_id], store_env)
    assert revoked.returncode == 3
    assert "Traceback" not in revoked.stderr and key_id in revoked.stderr


def test_s3_secret_without_a_store_creates_nothing(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "data")
    result = run_cli(["keys", "s3-secret", "0123456789abcdef"], env)
    assert result.returncode == 2
    assert not (tmp_path / "data").exists()
