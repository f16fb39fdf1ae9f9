"""Bucket operations. Buckets are never created or removed (SPEC §8.8): every valid
namespace of a tenant the key holds exists, empty until written."""

from __future__ import annotations

from starlette.responses import Response

from juststorage.application.listing import list_objects
from juststorage.application.records import ListQuery
from juststorage.domain.auth import Scope
from juststorage.domain.model import ObjectState
from juststorage.s3.call import S3Call
from juststorage.s3.common import admit, empty_reply, iso_time, served, xml_reply
from juststorage.s3.errors import S3Error, access_denied
from juststorage.s3.xml_bodies import element

REGION = "us-east-1"  # what GetBucketLocation and x-amz-bucket-region answer


async def list_buckets(call: S3Call) -> Response:
    """The namespaces that hold committed objects of the key's tenants, as
    `<tenant>.<namespace>` buckets (from the census counters: no object scan)."""
    principal = call.principal
    if not principal.has_scope(Scope.OBJECTS_READ):
        raise access_denied()
    await call.drain()
    async with call.services.metadata.snapshot() as view:
        census = await view.objects.census()
    names = sorted(
        {
            f"{row.tenant_id}.{row.namespace}"
            for row in census
            if row.state is ObjectState.COMMITTED
            and row.objects > 0
            and principal.holds_tenant(row.tenant_id)
        }
    )
    created = iso_time(call.services.clock.now())
    listed = "".join(
        f"<Bucket>{element('Name', name)}{element('CreationDate', created)}</Bucket>"
        for name in names
    )
    owner = call.verified.key_id
    return xml_reply(
        call,
        "ListAllMyBucketsResult",
        [
            f"<Owner>{element('ID', owner)}{element('DisplayName', owner)}</Owner>",
            f"<Buckets>{listed}</Buckets>",
        ],
    )


async def head_bucket(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_READ)
    served(call, bucket)
    return empty_reply(call, headers={"x-amz-bucket-region": REGION})


async def get_bucket_location(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_READ)
    served(call, bucket)
    # us-east-1 is answered as an empty LocationConstraint, as S3 does.
    return xml_reply(call, "LocationConstraint", [])


async def create_bucket(call: S3Call) -> Response:
    """200 for a bucket the key may write to: it exists already; nothing changes."""
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    await call.read_body(64 * 1024)  # a CreateBucketConfiguration, if any: not used
    served(call, bucket)
    return empty_reply(call, headers={"Location": f"/{bucket.name}"})


async def delete_bucket(call: S3Call) -> Response:
    """Refused: BucketNotEmpty while the namespace holds objects, else
    MethodNotAllowed (a namespace is not removed)."""
    bucket = await admit(call, Scope.OBJECTS_DELETE)
    page = await list_objects(
        call.services.metadata,
        ListQuery(tenant_id=bucket.tenant, namespace=bucket.namespace, limit=1),
    )
    if page.items:
        raise S3Error("BucketNotEmpty", "The bucket you tried to delete is not empty", 409)
    raise S3Error(
        "MethodNotAllowed",
        "Buckets are namespaces of a tenant here: they are never removed.",
        405,
    )
