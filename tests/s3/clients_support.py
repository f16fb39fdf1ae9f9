"""What the real-client tests of the S3 gateway share: a server with the S3 listener
(over HTTP, or HTTPS with a fresh self-signed certificate), S3 key pairs made with
the CLI, the 100 MiB file, /v1 reads and writes that check the bytes, and the three
command-line and SDK clients (aws-cli, rclone, boto3, minio-py) pointed at the
gateway with throw-away configuration (never the user's ~/.aws or rclone.conf).

Every server listens on 127.0.0.1 and is stopped by PID (juststorage.testing).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from juststorage.testing import BIN, START_TIMEOUT_S, Server, clean_env, free_port, spawn
from support.debian_tools import debian_tool
from support.private_ca import self_signed

MIB = 1024 * 1024
BIG_BYTES = 100 * MIB
REGION = "us-east-1"
VENV_BIN = Path(sys.executable).parent
CLIENT_TIMEOUT_S = 300.0
# Scopes of the keys the clients use: everything an S3 user does, nothing admin.
RWD = ("objects:read", "objects:write", "objects:delete")


# ------------------------------------------------------------------ the gateway
@dataclass(frozen=True)
class S3Key:
    """An API key with its S3 pair: the access key id is the API key's id, the
    secret is derived by the server (`keys create --s3`)."""

    key_id: str
    secret: str
    bearer: str  # the API key itself, for /v1
    tenants: tuple[str, ...]


@dataclass
class Gateway:
    """A running server with `JUSTSTORAGE_S3_ADDR` set."""

    server: Server
    s3_port: int
    ca: Path | None  # the self-signed certificate when both listeners speak TLS
    tmp: Path
    v1: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.v1 = httpx.Client(
            base_url=self.server.url, timeout=60.0, trust_env=False, verify=self.verify()
        )

    @property
    def scheme(self) -> str:
        return "http" if self.ca is None else "https"

    @property
    def s3_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.s3_port}"

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    def verify(self) -> ssl.SSLContext | bool:
        return True if self.ca is None else ssl.create_default_context(cafile=str(self.ca))

    def admin(self) -> dict[str, str]:
        return self.server.admin_headers()

    def s3_key(self, tenants: tuple[str, ...], scopes: tuple[str, ...] = RWD) -> S3Key:
        """A new API key with its S3 secret, made by `juststorage keys create --s3`."""
        args = ["keys", "create", "--s3", "--json"]
        for tenant in tenants:
            args += ["--tenant", tenant]
        for scope in scopes:
            args += ["--scope", scope]
        done = self.server.cli(*args)
        assert done.returncode == 0, done.stderr
        doc = json.loads(done.stdout.strip().splitlines()[-1])
        return S3Key(*_s3_pair(doc), bearer=doc["key"], tenants=tenants)

    def revoke(self, key: S3Key) -> None:
        done = self.server.cli("keys", "revoke", key.key_id)
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        self.v1.close()
        self.server.stop()


def _s3_pair(doc: Mapping[str, Any]) -> tuple[str, str]:
    """(access key id, secret) from `keys create --s3 --json`."""
    s3 = doc.get("s3") if isinstance(doc.get("s3"), dict) else doc
    assert isinstance(s3, Mapping)
    key_id = s3.get("access_key_id") or s3.get("aws_access_key_id") or doc["id"]
    secret = s3.get("secret_access_key") or s3.get("aws_secret_access_key") or s3.get("s3_secret")
    assert key_id and secret, f"no S3 pair in {sorted(doc)}"
    return str(key_id), str(secret)


def _wait_for_port(port: int, server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    log = server.log()
    server.stop()
    raise RuntimeError(f"the S3 listener on {port} never answered:\n{log}")


def start_gateway(
    tmp: Path, *, tls: bool = False, extra_env: Mapping[str, str] | None = None
) -> Gateway:
    """`juststorage serve` with the S3 listener on a free port of 127.0.0.1 (SQLite, a
    fresh data dir); with `tls`, both listeners serve a fresh self-signed certificate."""
    tmp.mkdir(parents=True, exist_ok=True)
    data_dir = tmp / f"data-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir()
    s3_port, port = free_port(), free_port()
    env_extra = {"JUSTSTORAGE_S3_ADDR": f"127.0.0.1:{s3_port}", **dict(extra_env or {})}
    ca = None
    if tls:
        ca, key = self_signed(tmp)
        env_extra |= {"JUSTSTORAGE_TLS_CERT": str(ca), "JUSTSTORAGE_TLS_KEY": str(key)}
    env = clean_env(data_dir, env_extra)
    argv = [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log_path = tmp / f"server-{port}.log"
    process = spawn(argv, env, log_path, port, marker=b"juststorage", tls_ca=ca)
    server = Server(data_dir, env, process)
    _wait_for_port(s3_port, server)
    return Gateway(server, s3_port, ca, tmp)


def adopt(started: Any, tmp: Path) -> Gateway:
    """Our view of a gateway started by tests/s3/conftest.py's `s3_start` (plain
    HTTP; that fixture stops it)."""
    port = int(started.s3_url.rsplit(":", 1)[1])
    return Gateway(started.server, port, None, tmp)


@contextlib.contextmanager
def gateway_of(s3_start: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway from the `s3_start` fixture (its factory), for one test module."""
    gw = adopt(s3_start(), tmp_path_factory.mktemp("gw"))
    try:
        yield gw
    finally:
        gw.v1.close()


@contextlib.contextmanager
def running_gateway(tmp: Path, *, tls: bool = False) -> Iterator[Gateway]:
    gw = start_gateway(tmp, tls=tls)
    try:
        yield gw
    finally:
        gw.stop()


# ------------------------------------------------------------------ files and /v1
@dataclass(frozen=True)
class BigFile:
    path: Path
    sha256: str
    size: int


def make_file(path: Path, size: int) -> BigFile:
    """`size` random bytes at `path`, written 1 MiB at a time; with their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            block = os.urandom(min(MIB, left))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return BigFile(path, digest.hexdigest(), size)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(MIB):
            digest.update(block)
    return digest.hexdigest()


def by_key_path(tenant: str, namespace: str, key: str) -> str:
    return f"/v1/objects/by-key/{namespace}/{tenant}/{quote(key, safe='/')}"


def v1_read(gw: Gateway, tenant: str, namespace: str, key: str, token: str) -> tuple[str, int]:
    """GET by key through /v1, streamed: (SHA-256 hex, size) of the bytes."""
    digest, size = hashlib.sha256(), 0
    headers = {"Authorization": f"Bearer {token}"}
    with gw.v1.stream("GET", by_key_path(tenant, namespace, key), headers=headers) as response:
        assert response.status_code == 200, response.read()[:300]
        for chunk in response.iter_bytes(MIB):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def v1_write(
    gw: Gateway, tenant: str, namespace: str, key: str, token: str, body: Path | bytes
) -> dict[str, Any]:
    """An upload through /v1 (`POST /v1/objects`; a file is streamed); the object JSON."""
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/octet-stream",
        "X-Tenant": tenant,
        "X-Namespace": namespace,
        "X-Key": quote(key, safe=""),
        "X-Key-Encoding": "percent",
    }
    if isinstance(body, bytes):
        response = gw.v1.post("/v1/objects", content=body, headers=headers)
    else:
        with body.open("rb") as f:
            response = gw.v1.post("/v1/objects", content=_chunks(f), headers=headers)
    assert response.status_code == 201, response.text[:300]
    doc: dict[str, Any] = response.json()
    return doc


def _chunks(f: Any) -> Iterator[bytes]:
    while block := f.read(MIB):
        yield block


def v1_status(gw: Gateway, tenant: str, namespace: str, key: str) -> int:
    """The status of an admin HEAD by key through /v1 (200, or 404 when there is none)."""
    return gw.v1.head(by_key_path(tenant, namespace, key), headers=gw.admin()).status_code


def stored_files(gw: Gateway) -> set[Path]:
    """Every file under the data directory's storage roots (blobs, temp files, parts)."""
    found: set[Path] = set()
    for root in ("hot", "cold"):
        base = gw.data_dir / root
        if base.exists():
            found |= {p for p in base.rglob("*") if p.is_file()}
    return found


# ------------------------------------------------------------------ the clients
def boto3_client(gw: Gateway, key: S3Key, **config: Any) -> Any:
    """A boto3 S3 client in its default configuration (checksums when supported,
    the SDK's own signing and transfer settings), only pointed at the gateway."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=gw.s3_url,
        aws_access_key_id=key.key_id,
        aws_secret_access_key=key.secret,
        region_name=REGION,
        verify=str(gw.ca) if gw.ca else None,
        config=Config(**config) if config else None,
    )


def minio_client(gw: Gateway, key: S3Key) -> Any:
    import urllib3
    from minio import Minio

    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10, read=120),
        retries=urllib3.Retry(total=0),
        **({"cert_reqs": "CERT_REQUIRED", "ca_certs": str(gw.ca)} if gw.ca else {}),
    )
    return Minio(
        f"127.0.0.1:{gw.s3_port}",
        access_key=key.key_id,
        secret_key=key.secret,
        secure=gw.ca is not None,
        region=REGION,  # else minio-py asks for the bucket's location first
        http_client=http,
    )


def _client_env(home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """This environment without any AWS_* or RCLONE_* setting, HOME in a temp dir."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RCLONE_", "JUSTSTORAGE_"))
    }
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    env.update(extra)
    return env


def aws(
    gw: Gateway, key: S3Key, home: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`aws ARGS` (aws-cli v1 of the venv) against the gateway, with a config file and
    an empty credentials file of its own in `home`."""
    config = home / "aws-config"
    if not config.exists():
        home.mkdir(parents=True, exist_ok=True)
        config.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
        (home / "aws-credentials").write_text("")
    env = _client_env(
        home,
        {
            "AWS_ACCESS_KEY_ID": key.key_id,
            "AWS_SECRET_ACCESS_KEY": key.secret,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(config),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            **({"AWS_CA_BUNDLE": str(gw.ca)} if gw.ca else {}),
        },
    )
    argv = [str(VENV_BIN / "aws"), "--endpoint-url", gw.s3_url, *args]
    done = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def aws_json(gw: Gateway, key: S3Key, home: Path, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(aws(gw, key, home, *args, "--output", "json").stdout)
    return out


def rclone_binary() -> str:
    """Debian's rclone: installed when missing and we may (skips locally, fails in CI)."""
    return debian_tool("rclone", "rclone")


REMOTE = "gw"


def rclone(
    gw: Gateway, key: S3Key, home: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`rclone ARGS` with a config file of its own in `home`: one s3 remote named
    `gw` (provider Other, path style) on the gateway."""
    conf = home / "rclone.conf"
    if not conf.exists():
        home.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"[{REMOTE}]\ntype = s3\nprovider = Other\naccess_key_id = {key.key_id}\n"
            f"secret_access_key = {key.secret}\nendpoint = {gw.s3_url}\nregion = {REGION}\n"
            "force_path_style = true\n"
        )
        conf.chmod(0o600)
    argv = [rclone_binary(), "--config", str(conf), "--retries", "1", "--low-level-retries", "1"]
    if gw.ca is not None:
        argv += ["--ca-cert", str(gw.ca)]
    done = subprocess.run(
        [*argv, *args],
        env=_client_env(home, {}),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check:
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def fresh_name(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


_BIG: dict[str, BigFile] = {}


def big_file(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    """The 100 MiB random file, made once per test process (each xdist worker has one)."""
    if "big" not in _BIG:
        base = tmp_path_factory.getbasetemp()
        _BIG["big"] = make_file(base / "big-100mib.bin", BIG_BYTES)
    return _BIG["big"]
