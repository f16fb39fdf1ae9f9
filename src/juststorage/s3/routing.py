"""Which S3 operation a request is: by method, bucket, key and sub-resource."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

from juststorage.api.responses import BlobResponse
from juststorage.s3 import buckets, listings, multipart, objects
from juststorage.s3.call import S3Call
from juststorage.s3.errors import S3Error, not_implemented

Handler = Callable[[S3Call], Awaitable[Response | BlobResponse]]

# Sub-resources of buckets and objects this gateway does not serve: their operations
# answer NotImplemented (never the plain operation of the same method).
UNSUPPORTED = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "encryption",
        "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "logging",
        "metadataTable", "metrics", "notification", "object-lock", "ownershipControls",
        "policy", "policyStatus", "publicAccessBlock", "replication", "requestPayment",
        "restore", "retention", "select", "session", "tagging", "torrent", "versioning",
        "versions", "website",
    }
)  # fmt: skip
_NAMES = {
    "acl": "ACLs",
    "versioning": "Bucket versioning",
    "versions": "Listing object versions",
    "lifecycle": "Lifecycle configuration",
    "policy": "Bucket policies",
    "tagging": "Tagging",
    "encryption": "Server-side encryption configuration",
    "website": "Website hosting",
    "cors": "Bucket CORS configuration",
}


def route(call: S3Call) -> tuple[Handler, str]:
    """The handler of the request and its S3 operation name (for logs and metrics).

    Raises:
        S3Error: NotImplemented for an operation this gateway does not serve,
            MethodNotAllowed for a method S3 does not have there.
    """
    method = call.method
    bucket, key = call.target.bucket, call.target.key
    query = call.query
    unsupported = UNSUPPORTED.intersection(query)
    if unsupported:
        name = sorted(unsupported)[0]
        raise not_implemented(_NAMES.get(name, f"The ?{name} sub-resource"))
    if bucket is None:
        if method == "GET":
            return buckets.list_buckets, "ListBuckets"
        raise _not_allowed()
    if key is None:
        return _bucket_route(method, query)
    return _object_route(call, method, query)


def _bucket_route(method: str, query: dict[str, str]) -> tuple[Handler, str]:
    if method == "GET":
        if "location" in query:
            return buckets.get_bucket_location, "GetBucketLocation"
        if "uploads" in query:
            return multipart.list_multipart_uploads, "ListMultipartUploads"
        if query.get("list-type") == "2":
            return listings.list_objects_v2, "ListObjectsV2"
        if "list-type" in query:
            raise S3Error("InvalidArgument", "list-type must be 2", 400)
        return listings.list_objects_v1, "ListObjects"
    if method == "HEAD":
        return buckets.head_bucket, "HeadBucket"
    if method == "PUT":
        return buckets.create_bucket, "CreateBucket"
    if method == "DELETE":
        return buckets.delete_bucket, "DeleteBucket"
    if method == "POST" and "delete" in query:
        return objects.delete_objects, "DeleteObjects"
    raise _not_allowed()


def _object_route(call: S3Call, method: str, query: dict[str, str]) -> tuple[Handler, str]:
    if method in ("GET", "HEAD"):
        if "uploadId" in query and method == "GET":
            return multipart.list_parts, "ListParts"
        return objects.get_object, "GetObject" if method == "GET" else "HeadObject"
    if method == "PUT":
        if "uploadId" in query or "partNumber" in query:
            if "x-amz-copy-source" in call.headers:
                raise not_implemented("UploadPartCopy")
            return multipart.upload_part, "UploadPart"
        if "x-amz-copy-source" in call.headers:
            return objects.copy_object, "CopyObject"
        return objects.put_object, "PutObject"
    if method == "POST":
        if "uploads" in query:
            return multipart.create_multipart_upload, "CreateMultipartUpload"
        if "uploadId" in query:
            return multipart.complete_multipart_upload, "CompleteMultipartUpload"
        raise not_implemented("POST object uploads (browser forms)")
    if method == "DELETE":
        if "uploadId" in query:
            return multipart.abort_multipart_upload, "AbortMultipartUpload"
        return objects.delete_object, "DeleteObject"
    raise _not_allowed()


def _not_allowed() -> S3Error:
    return S3Error(
        "MethodNotAllowed", "The specified method is not allowed against this resource.", 405
    )
