"""The composition root: the only code that picks adapters (from Settings)."""

from __future__ import annotations

import gc
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from juststorage.adapters.blobs.filesystem import FilesystemBlobStore
from juststorage.adapters.blobs.filesystem_parts import FilesystemPartStore
from juststorage.adapters.blobs.inline import InlineBlobStore
from juststorage.adapters.blobs.per_class import PerClassBlobStore
from juststorage.adapters.metadata.sqlite import SqliteMetadataStore, sqlite_path_from_url
from juststorage.adapters.metrics import Metrics, enable_multiprocess_metrics
from juststorage.adapters.private_files import (
    read_or_create_private_file,
    replace_private_file,
)
from juststorage.adapters.processes import LocalProcessLiveness
from juststorage.application.apikeys import (
    CreatedKey,
    create_first_admin_key,
    parse_bootstrap_keys,
)
from juststorage.application.authentication import Authenticator
from juststorage.application.backup_ports import BackupTarget, MetadataDumper
from juststorage.application.blob_ports import BlobStore, PartStore
from juststorage.application.ports import Clock, MetadataStore, ProcessLiveness, TokenVerifier
from juststorage.application.sessions import SessionPolicy, UploadSessions
from juststorage.application.uploads import RegistrationPolicy, Uploader
from juststorage.config import MIN_S3_MASTER_KEY_CHARS, Settings, SettingsError
from juststorage.domain.errors import BadRequest
from juststorage.domain.model import StorageClass

if TYPE_CHECKING:
    from juststorage.adapters.blobs.s3 import S3BlobStore
    from juststorage.adapters.blobs.s3_io import S3Connection, S3Root
    from juststorage.application.restore import MetadataLoader

# The adapters of S3 (obstore), PostgreSQL (asyncpg) and JWT (PyJWT with cryptography)
# are imported by the functions that build them: a server whose settings name none of
# them does not load them (about 20 MiB of each worker's memory).


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class Services:
    """Everything the API, the CLI and the workers use, built once per process.

    The object graph only: state one entry point keeps at run time (the API's
    rate limits and readiness checks) belongs to that entry point (`api.state`).
    """

    settings: Settings
    clock: Clock
    metadata: MetadataStore
    blobs: BlobStore
    authenticator: Authenticator
    liveness: ProcessLiveness = field(default_factory=LocalProcessLiveness)
    metrics: Metrics = field(default_factory=Metrics)
    # Where each class keeps multipart upload parts (SPEC §8.2); None: from the settings.
    parts: dict[StorageClass, PartStore] | None = None
    uploader: Uploader = field(init=False)
    sessions: UploadSessions = field(init=False)

    def __post_init__(self) -> None:
        self.uploader = build_uploader(
            self.settings, self.metadata, self.blobs, self.clock, self.liveness.identity()
        )
        if self.parts is None:
            self.parts = build_part_stores(self.settings)
        self.sessions = build_sessions(self)

    @property
    def part_stores(self) -> dict[StorageClass, PartStore]:
        return self.parts or {}

    @property
    def prices_gb_month(self) -> dict[StorageClass, float]:
        return {
            StorageClass.HOT: self.settings.price_hot_gb_month,
            StorageClass.COLD: self.settings.price_cold_gb_month,
        }


T = TypeVar("T")
# `scheme://` at the start of a backup target: only s3:// is one; others are refused.
_URL_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def build_uploader(
    settings: Settings, metadata: MetadataStore, blobs: BlobStore, clock: Clock, owner: str
) -> Uploader:
    """The process's one uploader (and so its one group committer)."""
    return Uploader(
        metadata=metadata,
        blobs=blobs,
        clock=clock,
        max_object_bytes=settings.max_object_bytes,
        quota_of=lambda tenant: settings.limits_for(tenant).quota_bytes,
        owner=owner,
        registration=RegistrationPolicy(
            always=frozenset(_s3_roots(settings)),
            # Bytes held in memory until the commit: nothing stored for GC to judge.
            inline_max_bytes=blobs.max_bytes if isinstance(blobs, InlineBlobStore) else 0,
        ),
    )


def build_part_stores(settings: Settings) -> dict[StorageClass, PartStore]:
    """The part store of each class (SPEC §8.2): beside the blobs of a directory root,
    or of an s3:// root (completed by the object store itself)."""
    s3_roots = _s3_roots(settings)
    dirs = {c: Path(settings.root_url(c.value)) for c in StorageClass if c not in s3_roots}
    stores: dict[StorageClass, PartStore] = {}
    if dirs:
        stores.update(dict.fromkeys(dirs, FilesystemPartStore(dirs)))
    if s3_roots:
        from juststorage.adapters.blobs.s3_parts import S3PartStore

        stores.update(dict.fromkeys(s3_roots, S3PartStore(_s3_store(settings, s3_roots))))
    return stores


def build_sessions(services: Services) -> UploadSessions:
    """The process's multipart upload sessions, sharing the uploader's group committer."""
    settings, blobs = services.settings, services.blobs
    stores = services.part_stores
    return UploadSessions(
        metadata=services.metadata,
        blobs=blobs,
        parts=stores.get,
        clock=services.clock,
        committer=services.uploader.committer,
        policy=SessionPolicy(
            ttl_seconds=settings.upload_ttl_seconds,
            part_min_bytes=settings.upload_part_min_bytes,
            max_object_bytes=settings.max_object_bytes,
            inline_max_bytes=blobs.max_bytes if isinstance(blobs, InlineBlobStore) else 0,
        ),
        quota_of=lambda tenant: settings.limits_for(tenant).quota_bytes,
        owner=services.liveness.identity(),
        registered_classes=frozenset(_s3_roots(settings)),
    )


def build_metadata_store(
    settings: Settings, clock: Clock, *, long_statements: bool = False
) -> MetadataStore:
    """The metadata store the settings name. `long_statements`: for the CLI, whose
    passes over the whole store (gc, fsck, migrate-blobs) may run statements for
    minutes; a server's requests keep the short limits."""
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        return SqliteMetadataStore(sqlite_path_from_url(url), clock)
    if url.startswith(("postgresql://", "postgres://")):
        from juststorage.adapters.metadata.postgres import (
            LONG_STATEMENT_TIMEOUT_S,
            PostgresMetadataStore,
        )

        if long_statements:
            return PostgresMetadataStore(url, clock, statement_timeout_s=LONG_STATEMENT_TIMEOUT_S)
        return PostgresMetadataStore(url, clock)
    raise SettingsError(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {url!r}")


def build_backup_target(settings: Settings, target: str) -> BackupTarget:
    """A backup target (SPEC §8.9): `s3://bucket/prefix` (with the
    JUSTSTORAGE_BACKUP_AWS_* settings, each falling back to its AWS_* one) or a
    directory, created when the first backup writes to it.

    Raises:
        SettingsError: an s3:// target without a bucket, an empty target, or one that
            looks like a URL of another scheme (`http://…`: never a directory).
    """
    if not target.strip():
        raise SettingsError("a backup target is a directory or s3://bucket/prefix")
    scheme = _URL_SCHEME.match(target)
    if scheme is not None and target[: scheme.end()] != "s3://":
        raise SettingsError(
            f"a backup target is a directory or s3://bucket/prefix, not a {scheme.group(1)}://"
            " URL (for a directory whose name has '://', start it with ./)"
        )
    if target.startswith("s3://"):
        from juststorage.adapters.backup.s3 import S3Target
        from juststorage.adapters.blobs.s3_io import S3Root

        try:
            root = S3Root.parse(target)
        except ValueError as exc:
            raise SettingsError(str(exc)) from None
        return S3Target(root, backup_s3_connection(settings))
    from juststorage.adapters.backup.directory import DirectoryTarget

    return DirectoryTarget(Path(target).expanduser().absolute())


def build_metadata_dumper(settings: Settings, clock: Clock) -> MetadataDumper:
    """Consistent snapshots of the settings' metadata database (backups)."""
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        from juststorage.adapters.metadata.dump import SqliteDumper

        return SqliteDumper(sqlite_path_from_url(url), clock)
    if url.startswith(("postgresql://", "postgres://")):
        from juststorage.adapters.metadata.dump import PostgresDumper

        return PostgresDumper(url, clock)
    raise SettingsError(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {url!r}")


def build_metadata_loader(settings: Settings) -> MetadataLoader:
    """What a restore writes the settings' metadata database with (SPEC §8.9)."""
    url = settings.effective_database_url
    if url.startswith("sqlite:///"):
        from juststorage.adapters.metadata.restore import SqliteLoader

        return SqliteLoader(sqlite_path_from_url(url))
    if url.startswith(("postgresql://", "postgres://")):
        from juststorage.adapters.metadata.restore import PostgresLoader

        return PostgresLoader(url)
    raise SettingsError(f"DATABASE_URL must start with sqlite:/// or postgresql://, not {url!r}")


def _read_public_key(value: str | None) -> str | None:
    """The PEM itself, or a path to a PEM file."""
    if value is None or value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text(encoding="ascii")
    except OSError as exc:
        raise SettingsError(
            f"JUSTSTORAGE_JWT_PUBLIC_KEY: cannot read {value}: {exc.strerror}"
        ) from None


def sign_token(
    settings: Settings,
    *,
    subject: str,
    tenants: tuple[str, ...],
    scopes: tuple[str, ...],
    ttl_seconds: int,
    private_key_pem: str | None = None,
) -> str:
    """A JWT the server built from `settings` accepts: HS256 with the configured
    secret, or RS256/ES256 with `private_key_pem`; audience and issuer as configured.

    Raises:
        BadRequest: no signing key, a bad tenant or scope, or a `ttl_seconds` over
            `jwt_max_ttl_seconds`.
    """
    from juststorage.adapters.auth.jwt import issue_token

    return issue_token(
        subject=subject,
        tenants=tenants,
        scopes=scopes,
        ttl_seconds=ttl_seconds,
        secret=settings.jwt_secret,
        private_key_pem=private_key_pem,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        max_ttl_seconds=settings.jwt_max_ttl_seconds,
    )


def share_metrics_between_processes(directory: Path) -> None:
    """Make every process started from now on count into `directory`, so that
    /metrics answers the totals of all server workers."""
    enable_multiprocess_metrics(directory)


def build_jwt_verifier(settings: Settings) -> TokenVerifier | None:
    public_key = _read_public_key(settings.jwt_public_key)
    if not settings.jwt_secret and not public_key:
        return None
    try:
        from juststorage.adapters.auth.jwt import PyJwtVerifier

        return PyJwtVerifier(
            secret=settings.jwt_secret,
            public_key_pem=public_key,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            max_ttl_seconds=settings.jwt_max_ttl_seconds,
        )
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    metadata: MetadataStore | None = None,
    blobs: BlobStore | None = None,
    long_statements: bool = False,
) -> Services:
    """Wire the object graph; keyword arguments let tests swap in other adapters.
    `long_statements`: the CLI's (see `build_metadata_store`).

    The uploader's `RegistrationPolicy` follows the roots in `settings`, also when
    `blobs` replaces the stores they name: give such a store the same kinds of root.

    Raises:
        SettingsError: a setting cannot be used (message names it).
    """
    clock = clock or SystemClock()
    metadata = metadata or build_metadata_store(settings, clock, long_statements=long_statements)
    if blobs is None:
        blobs = with_inline_blobs(settings, metadata, build_blob_store(settings))
    try:
        bootstrap_keys = parse_bootstrap_keys(settings.api_keys)
    except BadRequest as exc:
        raise SettingsError(exc.message) from None
    authenticator = Authenticator(
        metadata,
        jwt=build_jwt_verifier(settings),
        bootstrap_keys=bootstrap_keys,
        enabled=settings.auth == "required",
    )
    return Services(
        settings,
        clock,
        metadata,
        blobs,
        authenticator,
        metrics=Metrics(multiprocess_dir=settings.metrics_multiproc_dir),
    )


def build_blob_store(settings: Settings) -> BlobStore:
    """Per storage class: `s3://bucket/prefix` roots on S3BlobStore, directories on
    FilesystemBlobStore; one store if both classes share a kind.

    Raises:
        SettingsError: an s3:// root without a bucket.
    """
    s3_roots = _s3_roots(settings)
    dirs = {c: Path(settings.root_url(c.value)) for c in StorageClass if c not in s3_roots}
    stores: dict[StorageClass, BlobStore] = {}
    if dirs:
        filesystem = FilesystemBlobStore(
            dirs,
            chunk_bytes=settings.upload_chunk_bytes,
            writeback_every_bytes=settings.upload_writeback_every_bytes,
        )
        stores.update(dict.fromkeys(dirs, filesystem))
    if s3_roots:
        stores.update(dict.fromkeys(s3_roots, _s3_store(settings, s3_roots)))
    if len({id(s) for s in stores.values()}) == 1:
        return stores[StorageClass.HOT]
    return PerClassBlobStore(stores)


def with_inline_blobs(settings: Settings, metadata: MetadataStore, larger: BlobStore) -> BlobStore:
    """`larger` behind an `InlineBlobStore` keeping blobs of at most
    `inline_max_bytes` in the metadata database (SPEC §8.1). Also at 0, which only
    stops new uploads from going inline: rows kept inline before stay readable, and
    GC and fsck go on scanning them until `migrate-blobs --inline` moves them out."""
    return InlineBlobStore(metadata, larger, settings.inline_max_bytes)


def _s3_roots(settings: Settings) -> dict[StorageClass, S3Root]:
    """The classes whose root is `s3://bucket/prefix`, parsed.

    Their uploads always write a `WRITING` row (`RegistrationPolicy.always`): an S3
    object does not say which process writes it, so GC can judge an upload's object
    only by that row.

    Raises:
        SettingsError: an s3:// root without a bucket.
    """
    roots: dict[StorageClass, S3Root] = {}
    for storage_class in StorageClass:
        root = settings.root_url(storage_class.value)
        if root.startswith("s3://"):
            from juststorage.adapters.blobs.s3_io import S3Root

            try:
                roots[storage_class] = S3Root.parse(root)
            except ValueError as exc:
                raise SettingsError(f"JUSTSTORAGE_{storage_class.name}_ROOT: {exc}") from None
    return roots


def build_s3_blob_store(settings: Settings, roots: Mapping[StorageClass, str]) -> BlobStore:
    """An S3 store for these `s3://bucket/prefix` roots (a migrate-blobs target).

    Raises:
        SettingsError: a root is not s3://<bucket>[/<prefix>].
    """
    from juststorage.adapters.blobs.s3_io import S3Root

    try:
        parsed = {c: S3Root.parse(url) for c, url in roots.items()}
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return _s3_store(settings, parsed)


def _s3_store(settings: Settings, roots: Mapping[StorageClass, S3Root]) -> S3BlobStore:
    from juststorage.adapters.blobs.s3 import S3BlobStore

    return S3BlobStore(
        roots,
        _s3_connection(settings),
        part_bytes=settings.s3_part_bytes,
        max_concurrency=settings.s3_max_concurrency,
    )


def _s3_connection(settings: Settings) -> S3Connection:
    from juststorage.adapters.blobs.s3_io import S3Connection

    return S3Connection(
        endpoint_url=settings.aws_endpoint_url,
        access_key_id=settings.aws_access_key_id,
        secret_access_key=settings.aws_secret_access_key,
        region=settings.aws_region,
        allow_http=settings.aws_allow_http,
        timeout_seconds=settings.s3_timeout_seconds,
    )


def backup_s3_connection(settings: Settings) -> S3Connection:
    """A backup target's S3 connection: JUSTSTORAGE_BACKUP_AWS_*, each unset one
    taken from its AWS_* setting (the blob roots' connection)."""
    from juststorage.adapters.blobs.s3_io import S3Connection

    def pick(own: T | None, shared: T) -> T:
        return shared if own is None else own

    return S3Connection(
        endpoint_url=pick(settings.backup_aws_endpoint_url, settings.aws_endpoint_url),
        access_key_id=pick(settings.backup_aws_access_key_id, settings.aws_access_key_id),
        secret_access_key=pick(
            settings.backup_aws_secret_access_key, settings.aws_secret_access_key
        ),
        region=pick(settings.backup_aws_region, settings.aws_region),
        allow_http=pick(settings.backup_aws_allow_http, settings.aws_allow_http),
        timeout_seconds=settings.s3_timeout_seconds,
    )


def needs_first_admin_key(settings: Settings) -> bool:
    """SPEC §3: no API_KEYS, no JWT key, auth on (the database is checked separately)."""
    return (
        settings.auth == "required"
        and not settings.api_keys
        and not settings.jwt_secret
        and not settings.jwt_public_key
    )


async def start(services: Services) -> CreatedKey | None:
    """Bring storage and schema up; on first start create and save the admin key.
    Then settle the heap for serving (`_settle_heap`)."""
    created = await _start(services)
    _settle_heap()
    return created


def _settle_heap() -> None:
    """Take what start-up allocated (modules, the app, the object graph: most of the
    heap) out of the cyclic collector's scans: the collections that requests'
    allocations trigger then walk only what serving allocated. The thresholds stay
    Python's: a much higher young one measured slower, not faster."""
    gc.collect()
    gc.freeze()


async def _start(services: Services) -> CreatedKey | None:
    settings = services.settings
    if settings.migrate_on_start:
        await services.metadata.migrate()
    await services.blobs.prepare()
    if not needs_first_admin_key(settings):
        return None
    created = await create_first_admin_key(services.metadata, services.clock)
    if created is not None:
        write_secret_file(settings.admin_key_path, created.key)
    return created


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only (0600), replacing whatever is at
    `path` (a file or a link) without ever writing through it."""
    replace_private_file(path, (secret + "\n").encode("ascii"))


def s3_master_key(settings: Settings) -> bytes:
    """The key S3 secrets are derived from (`juststorage.s3.secrets`):
    `JUSTSTORAGE_S3_MASTER_KEY`, else the file `s3_master_key_path`, created (0600)
    with a random key on first use.

    Raises:
        SettingsError: the file holds no usable key.
        OSError: the file cannot be read or created.
    """
    if settings.s3_master_key is not None:
        return settings.s3_master_key.get_secret_value().encode("utf-8")
    path = settings.s3_master_key_path
    text = read_or_create_private_file(path, (secrets.token_hex(32) + "\n").encode("ascii"))
    # A file shorter than a generated key (damaged, or written by hand) is refused.
    key = text.strip()
    if len(key) < MIN_S3_MASTER_KEY_CHARS:
        raise SettingsError(
            f"{path} holds no S3 master key (at least {MIN_S3_MASTER_KEY_CHARS} characters);"
            " remove it to have a new one made (every S3 secret changes) or set"
            " JUSTSTORAGE_S3_MASTER_KEY"
        )
    return key
