"""Shared fixtures of the S3 gateway tests (tests/s3/): a real `juststorage serve`
with `JUSTSTORAGE_S3_ADDR` on a free 127.0.0.1 port, S3 key pairs made with
`juststorage keys create --s3`, boto3 clients and raw signed requests.

Fixtures:
- `s3_gateway` (module): a `Gateway` on SQLite, and on PostgreSQL in the
  `postgres` run (marked `postgres`: it runs in CI).
- `s3_gateway_sqlite` (module): the same on SQLite only, for tests that do not
  depend on the database.
- `s3_start` (module): a factory `s3_start(**env)` for a gateway with extra
  settings (limits, quotas, TLS), stopped after the module.
- `s3` (function): a boto3 client of the gateway's first key (tenant `acme`, read,
  write and delete), path-style, default configuration otherwise.
- `bucket` (function): a fresh namespace of `acme` as a bucket name
  (`acme.<fresh>`), empty.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from juststorage.testing import Server, free_port, start
from support.pg_databases import fresh_database

REGION = "us-east-1"
TENANT = "acme"
OTHER_TENANT = "globex"  # held by no key of the tests but the admin's
ALL_SCOPES = ("objects:read", "objects:write", "objects:delete")


@dataclass(frozen=True)
class S3Key:
    """An S3 key pair: the access key id is the API key's id."""

    access_key: str
    secret_key: str
    api_key: str  # the /v1 bearer credential of the same key


@dataclass
class Gateway:
    """A running server with its S3 listener."""

    server: Server
    s3_url: str
    key: S3Key  # tenant `acme`, read + write + delete
    _clients: list[Any] = field(default_factory=list)

    @property
    def v1_url(self) -> str:
        return self.server.url

    def v1_headers(self, key: S3Key | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {(key or self.key).api_key}"}

    def make_key(self, tenants: list[str], scopes: list[str]) -> S3Key:
        """A new API key with its S3 secret (`keys create --s3 --json`)."""
        return make_s3_key(self.server, tenants, scopes)

    def client(self, key: S3Key | None = None, **config: Any) -> Any:
        """A boto3 S3 client of `key` (default: the gateway's), path-style unless
        `config` says otherwise; its default configuration otherwise (checksums on)."""
        key = key or self.key
        options: dict[str, Any] = {
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 1},
        }
        options.update(config)
        client = boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=key.access_key,
            aws_secret_access_key=key.secret_key,
            region_name=REGION,
            config=Config(**options),
        )
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        """Close every client `client()` made (their pooled connections)."""
        for client in self._clients:
            client.close()
        self._clients.clear()

    def stop(self) -> None:
        """Stop the server; no request may have met an unexpected error (a 500)."""
        self.close_clients()
        self.server.stop()
        assert "failed unexpectedly" not in self.server.log(), self.server.log_tail(40)

    def signed(
        self,
        method: str,
        path: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        key: S3Key | None = None,
        host: str | None = None,
    ) -> httpx.Response:
        """A raw request signed with SigV4 (botocore's signer, signed payload): for the
        exact status, headers and XML of an answer. `path` holds the query, encoded."""
        key = key or self.key
        url = self.s3_url + path
        all_headers = dict(headers or {})
        if host is not None:
            all_headers["Host"] = host
        request = AWSRequest(method=method, url=url, data=body, headers=all_headers)
        S3SigV4Auth(Credentials(key.access_key, key.secret_key), "s3", REGION).add_auth(request)
        prepared = request.prepare()
        with httpx.Client(timeout=30.0, trust_env=False) as client:
            return client.request(method, url, content=body, headers=dict(prepared.headers.items()))


def make_s3_key(server: Server, tenants: list[str], scopes: list[str]) -> S3Key:
    """A new API key with its S3 credentials: `juststorage keys create --s3 --json`."""
    args = ["keys", "create", "--s3", "--json"]
    for tenant in tenants:
        args += ["--tenant", tenant]
    for scope in scopes:
        args += ["--scope", scope]
    result = server.cli(*args)
    assert result.returncode == 0, result.stderr
    created: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return S3Key(created["access_key_id"], created["secret_access_key"], created["key"])


def start_gateway(tmp_root: Path, env: Mapping[str, str], *, workers: int = 1) -> Gateway:
    """`juststorage serve` with an S3 listener on a free port, and its first key."""
    port = free_port()
    settings = {
        "JUSTSTORAGE_S3_ADDR": f"127.0.0.1:{port}",
        "JUSTSTORAGE_UPLOAD_PART_MIN_BYTES": str(5 * 1024 * 1024),
        "JUSTSTORAGE_S3_MASTER_KEY": "test-master-key-" + "0123456789abcdef" * 2,
        **env,
    }
    server = start(tmp_root, settings, workers=workers)
    scheme = "https" if "JUSTSTORAGE_TLS_CERT" in settings else "http"
    key = make_s3_key(server, [TENANT], list(ALL_SCOPES))
    return Gateway(server, f"{scheme}://127.0.0.1:{port}", key)


@pytest.fixture(scope="module")
def s3_start(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Gateway]]:
    """A factory of gateways on SQLite with extra settings, stopped after the module."""
    started: list[Gateway] = []
    tmp_root = tmp_path_factory.mktemp("s3-servers")

    def factory(**env: str) -> Gateway:
        gateway = start_gateway(tmp_root, env)
        started.append(gateway)
        return gateway

    try:
        yield factory
    finally:
        for gateway in started:
            gateway.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def s3_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway on SQLite, and on PostgreSQL in the module's second run."""
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if request.param == "postgres":
            server_url = request.getfixturevalue("postgres_server_url")
            env["DATABASE_URL"] = stack.enter_context(fresh_database(server_url))
        gateway = start_gateway(tmp_path_factory.mktemp(f"s3-{request.param}"), env)
        try:
            yield gateway
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def s3_gateway_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("s3-sqlite"), {})
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture
def s3(s3_gateway: Gateway) -> Iterator[Any]:
    yield s3_gateway.client()
    s3_gateway.close_clients()


@pytest.fixture
def bucket() -> str:
    return f"{TENANT}.ns{uuid.uuid4().hex[:10]}"


@pytest.fixture(autouse=True)
def _close_clients(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: close the boto3 clients its gateways made, whose pooled
    connections would otherwise be collected unclosed (a ResourceWarning)."""
    yield
    for value in request.node.funcargs.values():
        if isinstance(value, Gateway):
            value.close_clients()
