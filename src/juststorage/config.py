"""Settings: read once from the environment and an optional TOML file (SPEC §7).

`load_settings()` is the only code that reads `os.environ`. The environment wins
over the file. Names: `JUSTSTORAGE_<FIELD>` in the environment (except
`DATABASE_URL`, `JWT_SECRET` and `API_KEYS`), `<field>` in lower case in the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from juststorage.config_errors import SettingsError as SettingsError  # re-exported

_UNPREFIXED = {
    "database_url": "DATABASE_URL",
    "jwt_secret": "JWT_SECRET",
    "api_keys": "API_KEYS",
    # prometheus-client's own name; `serve` sets it for its workers.
    "metrics_multiproc_dir": "PROMETHEUS_MULTIPROC_DIR",
    # s3:// roots: the names every S3 client reads (docs/scale-out.md).
    "aws_endpoint_url": "AWS_ENDPOINT_URL",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_region": "AWS_REGION",
    "aws_allow_http": "AWS_ALLOW_HTTP",
}
_PREFIX = "JUSTSTORAGE_"
# The environment names of the per-class roots and the GC policy are the SPEC's.
_ENV_NAMES = {
    "gc_interval_seconds": "GC_INTERVAL_S",
    "gc_grace_seconds": "GC_GRACE_S",
    "jwt_max_ttl_seconds": "JWT_MAX_TTL_S",
    "upload_ttl_seconds": "UPLOAD_TTL_S",
}
TIB = 1024**4
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits).
# Checked here only: every secret the verifier and `token issue` use comes from Settings.
MIN_JWT_SECRET_BYTES = 32
# An S3 master key as short as a password could be guessed from one S3 secret.
MIN_S3_MASTER_KEY_CHARS = 32
# The longest lifetime (`exp` - `iat`) a token may have by default; longer ones are refused.
DEFAULT_JWT_MAX_TTL_SECONDS = 24 * 3600


def cors_origin_list(raw: str) -> list[str]:
    """`JUSTSTORAGE_CORS_ORIGINS`: `*`, or comma-separated `scheme://host[:port]`.

    Raises:
        ValueError: an entry that is not an origin.
    """
    entries = [e.strip().rstrip("/") for e in raw.split(",") if e.strip()]
    if entries == ["*"]:
        return entries
    for entry in entries:
        parsed = urlsplit(entry)
        if (
            parsed.scheme not in ("http", "https")
            or not parsed.netloc
            or parsed.path
            or parsed.query
            or parsed.fragment
            or "*" in entry
        ):
            raise ValueError(f"{entry!r} is not an origin such as https://console.example.com")
    return [e.lower() for e in entries]


class TenantLimits(BaseModel):
    """Per-tenant overrides of the default limits (TOML `[tenants.<name>]`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate_limit_rps: float | None = Field(default=None, gt=0)
    upload_bps: int | None = Field(default=None, gt=0)
    quota_bytes: int | None = Field(default=None, ge=0)


class Settings(BaseModel):
    """Every setting of the server and the CLI, typed and validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # (configured tenant name or "" for every other, fields used) -> effective limits.
    _effective_limits: dict[tuple[object, ...], TenantLimits] = PrivateAttr(default_factory=dict)

    data_dir: Path = Path("./data")
    # A directory, or `s3://<bucket>/<prefix>` for an S3-compatible object store.
    hot_root: str | None = None
    cold_root: str | None = None
    aws_endpoint_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = Field(default=None, repr=False)
    aws_region: str = "us-east-1"
    aws_allow_http: bool = False
    # A backup target's own S3 connection (docs/backup.md): each unset one falls back
    # to its AWS_* setting, so a target can be on another endpoint than the roots.
    backup_aws_endpoint_url: str | None = None
    backup_aws_access_key_id: str | None = None
    backup_aws_secret_access_key: str | None = Field(default=None, repr=False)
    backup_aws_region: str | None = None
    backup_aws_allow_http: bool | None = None
    s3_part_bytes: int = Field(default=8 * 1024 * 1024, ge=5 * 1024 * 1024)
    s3_max_concurrency: int = Field(default=4, ge=1)
    s3_timeout_seconds: float = Field(default=60.0, gt=0)
    database_url: str | None = None
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_ttl_seconds: int = Field(default=DEFAULT_JWT_MAX_TTL_SECONDS, gt=0)
    api_keys: str | None = None
    auth: Literal["required", "disabled"] = "required"
    max_object_bytes: int = Field(default=5 * TIB, gt=0)
    gc_interval_seconds: float = Field(default=60.0, ge=0)
    gc_grace_seconds: float = Field(default=3600.0, ge=0)
    # Scrub (SPEC §8.9): bytes per second re-hashed by the one process holding the
    # scrub lease, pass after pass over every blob; 0 turns it off.
    scrub_bytes_per_s: int = Field(default=0, ge=0)
    price_hot_gb_month: float = Field(default=0.10, ge=0)
    price_cold_gb_month: float = Field(default=0.02, ge=0)
    currency: str = Field(default="USD", min_length=1)
    max_concurrent_uploads: int = Field(default=64, gt=0)
    # Each tenant's share of this process's upload slots; unset: a quarter of them.
    max_concurrent_uploads_per_tenant: int | None = Field(default=None, gt=0)
    # Failed authentications per minute from one client address before it gets 429.
    auth_failures_per_minute: int = Field(default=30, ge=0)
    rate_limit_rps: float | None = Field(default=None, gt=0)
    upload_bps: int | None = Field(default=None, gt=0)
    quota_bytes: int | None = Field(default=None, ge=0)
    tenants: dict[str, TenantLimits] = Field(default_factory=dict)
    metrics_addr: str | None = None
    # The S3-compatible gateway (SPEC §8.8): its listener's `host:port` (unset: off),
    # and the domain under which buckets are addressed as `<bucket>.<domain>`.
    s3_addr: str | None = None
    s3_domain: str | None = None
    # The web console at /console/ (and `/` redirecting there); false: both 404.
    console: bool = True
    metrics_multiproc_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    # HTTP/1.1 only unless asked: HTTP/2 is bounded like HTTP/1 (cli/listener.py).
    http2: bool = False
    # Both, or neither: TLS on the main listener, for deployments without a proxy.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"
    migrate_on_start: bool = True
    upload_chunk_bytes: int = Field(default=1024 * 1024, ge=4096)
    upload_writeback_every_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # Blobs of at most this many bytes are kept in the metadata database (SPEC §8.1);
    # 0 keeps new uploads out of it. Bounded: every upload in flight holds up to this
    # much in memory to decide (memory ~ concurrent uploads x threshold), and on SQLite
    # a GET's lookup reads the bytes on the event loop.
    inline_max_bytes: int = Field(default=64 * 1024, ge=0, le=1024 * 1024)
    # Multipart upload sessions (SPEC §8.2): idle lifetime, and the least size of
    # every part but the last (small in tests; S3's own minimum is 5 MiB).
    upload_ttl_seconds: float = Field(default=604800.0, gt=0)
    upload_part_min_bytes: int = Field(default=5 * 1024 * 1024, ge=0)
    # Whole downloads answered with X-Accel-Redirect when the proxy sends X-Accel-Mapping.
    accel_redirect: bool = False
    # The key S3 secrets are derived from (SPEC §8.8); unset: `<data dir>/s3-master.key`,
    # made on first use. Every host sharing one database needs the same one.
    s3_master_key: SecretStr | None = None
    # The server's address as clients reach it (`https://store.example.com`): presigned
    # URLs are absolute with it, else a path and query.
    public_url: str | None = None
    # Origins a browser may call the API from (SPEC §8.6): comma-separated, or `*`.
    cors_origins: str | None = None

    @field_validator(
        "jwt_secret",
        "jwt_public_key",
        "api_keys",
        "database_url",
        "metrics_addr",
        "s3_addr",
        "s3_domain",
        "hot_root",
        "cold_root",
        "aws_endpoint_url",
        "aws_access_key_id",
        "aws_secret_access_key",
        "backup_aws_endpoint_url",
        "backup_aws_access_key_id",
        "backup_aws_secret_access_key",
        "backup_aws_region",
        "public_url",
        "cors_origins",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value if value else None

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode("utf-8")) < MIN_JWT_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_JWT_SECRET_BYTES} bytes (HS256 needs a 256-bit key);"
                " generate one with `openssl rand -hex 32`"
            )
        return value

    @field_validator("metrics_addr", "s3_addr")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is not None:
            parse_host_port(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        if parsed.query or parsed.fragment:
            raise ValueError("must have no query or fragment")
        return value.strip().rstrip("/")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str | None) -> str | None:
        if value is not None:
            cors_origin_list(value)
        return value

    @property
    def cors_origin_set(self) -> frozenset[str]:
        """The allowed CORS origins (`*` alone: any); empty when unset."""
        return frozenset(cors_origin_list(self.cors_origins)) if self.cors_origins else frozenset()

    @field_validator("s3_master_key", mode="before")
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        return value if value != "" else None

    @field_validator("s3_master_key")
    @classmethod
    def _master_key_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_S3_MASTER_KEY_CHARS:
            raise ValueError(
                f"must be at least {MIN_S3_MASTER_KEY_CHARS} characters;"
                " generate one with `openssl rand -hex 32`"
            )
        return value

    @field_validator("tls_cert", "tls_key", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: object) -> object:
        return value if value != "" else None

    @model_validator(mode="after")
    def _tls_cert_and_key_together(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("JUSTSTORAGE_TLS_CERT and JUSTSTORAGE_TLS_KEY go together: set both")
        return self

    @property
    def hot_dir(self) -> Path:
        """The hot root as a directory (meaningless when `hot_root` is s3://)."""
        return Path(self.hot_root) if self.hot_root else self.data_dir / "hot"

    @property
    def cold_dir(self) -> Path:
        """The cold root as a directory (meaningless when `cold_root` is s3://)."""
        return Path(self.cold_root) if self.cold_root else self.data_dir / "cold"

    def root_url(self, storage_class: str) -> str:
        """The root of a storage class ("hot" / "cold"): a directory or an s3:// URL."""
        if storage_class == "hot":
            return self.hot_root or str(self.hot_dir)
        return self.cold_root or str(self.cold_dir)

    @property
    def uploads_per_tenant(self) -> int:
        """Each tenant's share of the process's upload slots (at least 1)."""
        share = self.max_concurrent_uploads_per_tenant
        if share is None:
            share = self.max_concurrent_uploads // 4
        return max(1, min(share, self.max_concurrent_uploads))

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'meta.db'}"

    @property
    def admin_key_path(self) -> Path:
        return self.data_dir / "admin.key"

    @property
    def s3_master_key_path(self) -> Path:
        return self.data_dir / "s3-master.key"

    def limits_for(self, tenant: str) -> TenantLimits:
        """The tenant's own limits, falling back to the defaults field by field.

        Computed once per configured tenant (and once for all others): this is on
        every request's path, and building pydantic models is not free.
        """
        # Keyed by the fields it derives from too: a model_copy shares this cache.
        key = (
            tenant if tenant in self.tenants else "",
            id(self.tenants),
            self.rate_limit_rps,
            self.upload_bps,
            self.quota_bytes,
        )
        limits = self._effective_limits.get(key)
        if limits is None:
            own = self.tenants.get(tenant, TenantLimits())
            limits = TenantLimits(
                rate_limit_rps=own.rate_limit_rps or self.rate_limit_rps,
                upload_bps=own.upload_bps or self.upload_bps,
                quota_bytes=self.quota_bytes if own.quota_bytes is None else own.quota_bytes,
            )
            self._effective_limits[key] = limits
        return limits


def parse_host_port(value: str) -> tuple[str, int]:
    """`host:port` (IPv6 hosts in brackets) of a listener such as `metrics_addr`.

    Raises:
        ValueError: not `host:port` with a port from 1 to 65535.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be host:port, not {value!r}")
    return host.strip("[]"), int(port)


def _env_name(field: str) -> str:
    if field in _UNPREFIXED:
        return _UNPREFIXED[field]
    return _PREFIX + _ENV_NAMES.get(field, field.upper())


def load_settings(
    environ: Mapping[str, str] | None = None, config_file: Path | None = None
) -> Settings:
    """Build Settings from the environment (default `os.environ`) over an optional TOML file.

    Raises:
        SettingsError: with a message naming the offending variable or key.
    """
    env = os.environ if environ is None else environ
    path = config_file or (
        Path(env["JUSTSTORAGE_CONFIG"]) if env.get("JUSTSTORAGE_CONFIG") else None
    )
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path} is not valid TOML: {exc}") from exc
    for field in Settings.model_fields:
        if field == "tenants":
            continue
        name = _env_name(field)
        if name in env:
            values[field] = env[name]
    # The SPEC names the GC settings *_S; accept the TOML spelling of both forms
    # (and of the token lifetime, named the same way).
    for short, long in (
        ("gc_interval_s", "gc_interval_seconds"),
        ("gc_grace_s", "gc_grace_seconds"),
        ("jwt_max_ttl_s", "jwt_max_ttl_seconds"),
        ("upload_ttl_s", "upload_ttl_seconds"),
    ):
        if short in values:
            values.setdefault(long, values.pop(short))
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across fields: its message names them
                problems.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            field = str(err["loc"][0])
            where = _env_name(field) if field in Settings.model_fields else field
            problems.append(f"{where}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
