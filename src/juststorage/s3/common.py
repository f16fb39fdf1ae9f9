"""What every operation does first: resolve the bucket, check the scope, apply the
tenant's request rate, and name tenant and namespace for the log and metrics."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.responses import Response

from juststorage.api.errors import rate_limit_headers
from juststorage.domain.auth import Scope
from juststorage.domain.model import ObjectKey, ObjectVersion
from juststorage.s3.addressing import Bucket, bucket_of, object_key
from juststorage.s3.call import S3Call
from juststorage.s3.errors import S3Error, access_denied
from juststorage.s3.xml_bodies import document

XML = "application/xml"


async def admit(call: S3Call, scope: Scope, bucket_name: str | None = None) -> Bucket:
    """The request's bucket (or `bucket_name`), once the key may act on it with
    `scope` and the tenant's request rate lets the request through.

    Raises:
        S3Error: AccessDenied (no scope, or a tenant the key does not hold: the same
            answer whether or not the bucket holds anything), InvalidBucketName.
        TooManyRequests: over the tenant's request rate (SlowDown).
    """
    name = bucket_name if bucket_name is not None else call.target.bucket
    assert name is not None
    bucket = bucket_of(name, call.principal)
    if not call.principal.has_scope(scope):
        raise access_denied()
    call.state["tenant"] = bucket.tenant
    call.state["namespace"] = bucket.namespace
    status = await call.api.throttle.admit_request(bucket.tenant)
    if status is not None:
        call.state.setdefault("extra_headers", {}).update(rate_limit_headers(status))
    return bucket


def key_of(call: S3Call) -> ObjectKey:
    assert call.target.key is not None
    return object_key(call.target.key)


def served(call: S3Call, bucket: Bucket) -> None:
    """Count a successful answer under the bucket's namespace in the metrics."""
    call.state["metrics_namespace"] = str(bucket.namespace)


def s3_etag(version: ObjectVersion) -> str:
    """The quoted ETag S3 clients see: the recorded one (MD5, or multipart `-N`),
    else the SHA-256 hex of the bytes."""
    return f'"{version.s3_etag or version.content_hash.hex}"'


def iso_time(moment: datetime) -> str:
    """S3's timestamps in XML: `2025-01-01T12:00:00.000Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def xml_reply(call: S3Call, root: str, parts: list[str], status: int = 200) -> Response:
    return Response(
        document(root, parts),
        status_code=status,
        media_type=XML,
        headers=call.state.get("extra_headers"),
    )


def empty_reply(call: S3Call, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    merged = {**call.state.get("extra_headers", {}), **(headers or {})}
    return Response(status_code=status, headers=merged)


def refuse_version_id(call: S3Call, query_name: str = "versionId") -> None:
    """Versions are not S3's here: a request naming one is refused, never served
    with the newest version instead."""
    if call.query.get(query_name) not in (None, "", "null"):
        raise S3Error(
            "NotImplemented",
            "Object versions are not served through this S3 gateway (versionId); read"
            " older versions by id through /v1.",
            501,
        )
