"""Which bucket and key a request names (path style or virtual-host style), and which
tenant and namespace a bucket is (SPEC §8.8: `<tenant>.<namespace>`, or `<namespace>`
alone for a key bound to exactly one tenant)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from juststorage.domain.auth import ALL_TENANTS, Principal
from juststorage.domain.errors import BadRequest
from juststorage.domain.model import MAX_KEY_BYTES, Namespace, ObjectKey, TenantId
from juststorage.s3.errors import S3Error, access_denied


@dataclass(frozen=True, slots=True)
class Target:
    """The bucket (None: the service) and key (None: the bucket) a request names."""

    bucket: str | None
    key: str | None


@dataclass(frozen=True, slots=True)
class Bucket:
    """A bucket the caller holds: one tenant's namespace."""

    name: str
    tenant: TenantId
    namespace: Namespace


def invalid_bucket(name: str) -> S3Error:
    return S3Error("InvalidBucketName", f"The specified bucket is not valid: {name}", 400)


def decode_path(raw: bytes) -> str:
    """A percent-encoded path as text. Raises S3Error (InvalidURI) for bytes that are
    not UTF-8."""
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.", 400) from None


def target_of(raw_path: bytes, host: str, domains: tuple[str, ...]) -> Target:
    """The bucket and key of a request: from the Host header when it is
    `<bucket>.<domain>` for one of `domains`, else from the first path segment (split
    before decoding, so an encoded `/` stays in the bucket name, which it invalidates)."""
    if not raw_path.startswith(b"/"):
        raise S3Error("InvalidURI", "Couldn't parse the specified URI.", 400)
    hostname = _without_port(host).lower()
    for domain in domains:
        suffix = "." + domain
        if hostname.endswith(suffix) and len(hostname) > len(suffix):
            key = decode_path(raw_path[1:])
            return Target(hostname[: -len(suffix)], key or None)
    rest = raw_path[1:]
    if not rest:
        return Target(None, None)
    raw_bucket, slash, raw_key = rest.partition(b"/")
    return Target(decode_path(raw_bucket), decode_path(raw_key) if slash and raw_key else None)


def signed_resource(raw_path: bytes, target: Target, host: str, domains: tuple[str, ...]) -> bytes:
    """SigV2's resource path for the request `target_of` read as `target`:
    `/<bucket>/<key as sent>` (`/<bucket>/` for the bucket, `/` for the service),
    the same for path and virtual-host style, so a signature covers exactly the
    bucket and key that are served."""
    if target.bucket is None:
        return b"/"
    bucket = b"/" + target.bucket.encode("utf-8", "surrogatepass") + b"/"
    if _virtual(host, domains):
        return bucket + raw_path[1:]
    return bucket + raw_path[1:].partition(b"/")[2]


def _virtual(host: str, domains: tuple[str, ...]) -> bool:
    hostname = _without_port(host).lower()
    return any(hostname.endswith("." + d) and len(hostname) > len(d) + 1 for d in domains)


def _without_port(host: str) -> str:
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def bucket_of(name: str, principal: Principal) -> Bucket:
    """The tenant and namespace bucket `name` stands for.

    Raises:
        S3Error: InvalidBucketName for a name that is not `<tenant>.<namespace>` (or
            `<namespace>` for a key of one tenant); AccessDenied for a tenant the
            key does not hold, whether or not it stores anything.
    """
    tenant_text, dot, namespace_text = name.partition(".")
    if not dot:
        namespace_text = tenant_text
        held = [t for t in principal.tenants if t != ALL_TENANTS]
        if ALL_TENANTS in principal.tenants or len(held) != 1:
            raise S3Error(
                "InvalidBucketName",
                f"The specified bucket is not valid: {name} (this key holds several"
                " tenants: name the bucket <tenant>.<namespace>)",
                400,
            )
        tenant_text = held[0]
    try:
        tenant = TenantId(tenant_text)
        namespace = Namespace(namespace_text)
    except BadRequest:
        raise invalid_bucket(name) from None
    if not principal.holds_tenant(tenant):
        raise access_denied()
    return Bucket(name, tenant, namespace)


def object_key(raw: str) -> ObjectKey:
    """The key as the store keeps it. Raises S3Error: KeyTooLongError, InvalidArgument."""
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise S3Error("KeyTooLongError", "Your key is too long", 400)
    try:
        return ObjectKey(raw)
    except BadRequest as exc:
        raise S3Error("InvalidArgument", f"Invalid object key: {exc.message}", 400) from None
