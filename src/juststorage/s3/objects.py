"""Object operations: PutObject, GetObject/HeadObject, DeleteObject, DeleteObjects,
CopyObject, through the same use cases as /v1."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from urllib.parse import unquote

from starlette.responses import Response

from juststorage.api.rendering import DOWNLOAD_CONTENT_SECURITY_POLICY, http_date
from juststorage.api.responses import BlobResponse
from juststorage.application.blob_ports import BlobReader
from juststorage.application.by_hash import commit_reference
from juststorage.application.deletes import delete_versions
from juststorage.application.downloads import find_by_id, find_newest, open_blob
from juststorage.application.records import LocatedVersion
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services
from juststorage.domain.auth import Scope
from juststorage.domain.conditions import WritePrecondition, parse_range
from juststorage.domain.errors import ChecksumMismatch, NotFound, StorageError, TooManyRequests
from juststorage.domain.model import ContentHash, Namespace, ObjectKey, ObjectVersion, TenantId
from juststorage.s3.addressing import bucket_of, decode_path, object_key
from juststorage.s3.attributes import (
    DEFAULT_CONTENT_TYPE,
    STORAGE_CLASS_OUT,
    content_type_of,
    metadata_headers,
    storage_class_of,
    user_metadata,
)
from juststorage.s3.call import S3Call
from juststorage.s3.common import (
    admit,
    empty_reply,
    iso_time,
    key_of,
    refuse_version_id,
    s3_etag,
    served,
    xml_reply,
)
from juststorage.s3.conditions import Outcome, evaluate
from juststorage.s3.errors import (
    S3Error,
    access_denied,
    from_domain,
    invalid_argument,
    malformed_xml,
    no_such_key,
    not_implemented,
)
from juststorage.s3.header_values import MAX_HEADER_VALUE_CHARS, header_value
from juststorage.s3.signing import VerifiedBody
from juststorage.s3.xml_bodies import child_text, element, parse

MAX_DELETE_KEYS = 1000

_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
_SSE_HEADERS = (
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-aws-kms-key-id",
)
_CANNED_ACLS_IGNORED = frozenset({"private", "bucket-owner-full-control"})


def signed_sha256(body: VerifiedBody) -> ContentHash | None:
    """The SHA-256 the request signed for its body, when it signed one."""
    return ContentHash(body.sha256_to_check) if body.sha256_to_check else None


def sha256_mismatch() -> S3Error:
    return S3Error(
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
    )


def precondition_failed() -> S3Error:
    return S3Error(
        "PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412
    )


def refuse_unsupported_write_headers(headers: dict[str, str]) -> None:
    """Headers asking for what this gateway does not do (SSE, ACL grants, tagging,
    object lock) are refused, never silently dropped."""
    for name in _SSE_HEADERS:
        if name in headers:
            raise not_implemented("Server-side encryption")
    acl = headers.get("x-amz-acl")
    if acl is not None and acl.strip() not in _CANNED_ACLS_IGNORED:
        raise not_implemented("ACLs")
    if any(name.startswith("x-amz-grant-") for name in headers):
        raise not_implemented("ACLs")
    if "x-amz-tagging" in headers:
        raise not_implemented("Tagging")
    if any(name.startswith("x-amz-object-lock-") for name in headers):
        raise not_implemented("Object lock")


async def write_precondition(
    call: S3Call, tenant: TenantId, namespace: Namespace, key: ObjectKey
) -> WritePrecondition:
    """S3's conditional writes: `If-None-Match: *` (create only) and `If-Match: <etag>`
    (replace only that version), as the store's precondition."""
    if_none_match = call.headers.get("if-none-match")
    if_match = call.headers.get("if-match")
    if if_none_match is not None and if_none_match.strip() != "*":
        raise not_implemented("If-None-Match other than * on writes")
    if if_match is None:
        return WritePrecondition(create_only=if_none_match is not None)
    if if_none_match is not None:
        raise invalid_argument("If-None-Match and If-Match cannot be combined")
    async with call.services.metadata.snapshot() as view:
        current = await view.objects.newest(tenant, namespace, key)
    if current is None:
        raise no_such_key()
    if not _etag_is(if_match, current):
        raise precondition_failed()
    # The commit checks again that the key's current bytes are still these.
    return WritePrecondition(expected=current.content_hash)


def _etag_is(header: str, version: ObjectVersion) -> bool:
    tags = {t.strip().removeprefix("W/").strip('"') for t in header.split(",")}
    return (
        "*" in tags
        or (version.s3_etag or version.content_hash.hex) in tags
        or (f"sha256:{version.content_hash.hex}" in tags)
    )


async def _counted(
    body: AsyncIterator[bytes], count: Callable[[int], Awaitable[None]]
) -> AsyncIterator[bytes]:
    async for chunk in body:
        if chunk:
            await count(len(chunk))
            yield chunk


async def store(call: S3Call, request: UploadRequest, body: AsyncIterator[bytes]) -> UploadResult:
    """Stream `body` into the normal upload path under the tenant's upload limits."""
    throttle = call.api.throttle
    try:
        admitted = await throttle.admit_upload(request.tenant_id, request.declared_size)
    except TooManyRequests:
        call.services.metrics.throttled.labels(request.tenant_id).inc()
        raise
    try:
        result = await call.services.uploader.upload(request, _counted(body, admitted.count))
    finally:
        await admitted.done()
    metrics = call.services.metrics
    metrics.uploaded_bytes.inc(result.version.size_bytes)
    if result.deduplicated:
        metrics.dedup_hits.inc()
        metrics.dedup_bytes_saved.inc(result.version.size_bytes)
    return result


async def put_object(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    key = key_of(call)
    refuse_unsupported_write_headers(call.headers)
    metadata = user_metadata(call.headers)
    storage_class = storage_class_of(call.headers)
    stored_metadata = metadata if metadata != "{}" else None
    content_type = content_type_of(call.headers)
    precondition = await write_precondition(call, bucket.tenant, bucket.namespace, key)
    # A signed SHA-256 of the body is the upload's expected hash: hashed once, by the
    # uploader, which stores nothing unless the bytes match it.
    body = call.body(defer_sha256=True)
    request = UploadRequest(
        tenant_id=bucket.tenant,
        namespace=bucket.namespace,
        key=key,
        storage_class=storage_class,
        content_type=content_type,
        declared_size=body.decoded_length,
        expected_hash=signed_sha256(body),
        precondition=precondition,
        user_metadata=stored_metadata,
        md5_of=lambda: body.md5_hex,
    )
    try:
        result = await store(call, request, aiter(body))
    except ChecksumMismatch:
        raise sha256_mismatch() from None
    served(call, bucket)
    headers = {"ETag": s3_etag(result.version)}
    for name, value in body.checksums.items():
        headers[f"x-amz-checksum-{name}"] = value
    return empty_reply(call, headers=headers)


def object_headers(version: ObjectVersion, etag: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"etag", etag.encode("latin-1")),
        (b"last-modified", http_date(version.created_at).encode("latin-1")),
        (b"accept-ranges", b"bytes"),
        (b"content-type", header_value(version.content_type) or DEFAULT_CONTENT_TYPE.encode()),
        (b"x-object-id", str(version.id).encode("latin-1")),
        (b"content-security-policy", DOWNLOAD_CONTENT_SECURITY_POLICY.encode("latin-1")),
    ]
    if version.storage_class.value != "hot":
        headers.append((b"x-amz-storage-class", STORAGE_CLASS_OUT[version.storage_class].encode()))
    return headers + metadata_headers(version)


async def get_object(call: S3Call) -> Response | BlobResponse:
    bucket = await admit(call, Scope.OBJECTS_READ)
    key = key_of(call)
    refuse_version_id(call)
    if call.query.get("partNumber") not in (None, ""):
        raise not_implemented("Reading one part of an object (partNumber)")
    await call.drain()
    head = call.method == "HEAD"
    found = await find_newest(
        call.services.metadata, bucket.tenant, bucket.namespace, key, with_bytes=not head
    )
    version = found.version
    served(call, bucket)
    etag = s3_etag(version)
    h = call.headers
    outcome = evaluate(
        h.get("if-match"),
        h.get("if-none-match"),
        h.get("if-modified-since"),
        h.get("if-unmodified-since"),
        (etag, f'"sha256:{version.content_hash.hex}"'),
        version.created_at,
    )
    if outcome is Outcome.FAILED:
        raise precondition_failed()
    if outcome is Outcome.NOT_MODIFIED:
        return BlobResponse(304, _not_modified_headers(version, etag), None)
    headers = object_headers(version, etag)
    headers = _overridden(call, headers)
    byte_range = parse_range(h.get("range"), version.size_bytes)
    status = 200
    first, length = 0, version.size_bytes
    if byte_range is not None:
        status = 206
        first, length = byte_range.first, byte_range.length
        headers.append(
            (b"content-range", byte_range.content_range(version.size_bytes).encode("latin-1"))
        )
    headers.append((b"content-length", str(length).encode("latin-1")))
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in call.state.get("extra_headers", {}).items()
    ]
    if head:
        return BlobResponse(status, headers, None)
    reader = await open_blob(call.services.blobs, found, first=first, length=length)
    return BlobResponse(
        status,
        headers,
        reader,
        first=first,
        length=length,
        whole=byte_range is None,
        on_sent=call.services.metrics.downloaded_bytes.inc,
    )


def _not_modified_headers(version: ObjectVersion, etag: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"etag", etag.encode("latin-1")),
        (b"last-modified", http_date(version.created_at).encode("latin-1")),
    ]


def _overridden(call: S3Call, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`response-content-type` and the other `response-*` query overrides."""
    overrides = {}
    for name, header in _RESPONSE_OVERRIDES.items():
        if name in call.query:
            value = header_value(call.query[name])
            if value is None:
                raise invalid_argument(
                    f"{name} must be a header value: Latin-1 text without control"
                    f" characters, at most {MAX_HEADER_VALUE_CHARS} characters"
                )
            overrides[header.encode()] = value
    if not overrides:
        return headers
    kept = [(k, v) for k, v in headers if k not in overrides]
    return kept + list(overrides.items())


async def delete_object(call: S3Call) -> Response:
    """Removes every version of the key (S3 without versioning): 204, also when the
    key has none."""
    bucket = await admit(call, Scope.OBJECTS_DELETE)
    key = key_of(call)
    refuse_version_id(call)
    await call.drain()
    try:
        await delete_versions(call.services.metadata, bucket.tenant, bucket.namespace, key)
        served(call, bucket)
    except NotFound:
        pass
    return empty_reply(call, 204)


async def delete_objects(call: S3Call) -> Response:
    """Up to 1000 keys, each deleted as DeleteObject does; per-key errors in the
    answer; `Quiet` lists only the errors."""
    bucket = await admit(call, Scope.OBJECTS_DELETE)
    tree = parse(await call.read_body(4 * 1024 * 1024), "Delete")
    quiet = (child_text(tree, "Quiet") or "").strip().lower() == "true"
    entries = tree.findall("Object")
    if not entries or len(entries) > MAX_DELETE_KEYS:
        raise malformed_xml()
    results = []
    for entry in entries:
        raw = child_text(entry, "Key")
        if raw is None:
            raise malformed_xml()
        version_id = child_text(entry, "VersionId")
        try:
            if version_id not in (None, "", "null"):
                raise not_implemented("Deleting one object version (VersionId)")
            key = object_key(raw)
            with contextlib.suppress(NotFound):
                await delete_versions(call.services.metadata, bucket.tenant, bucket.namespace, key)
        except (S3Error, StorageError) as exc:
            error = exc if isinstance(exc, S3Error) else from_domain(exc)
            results.append(
                "<Error>"
                + element("Key", raw)
                + element("Code", error.code)
                + element("Message", error.message)
                + "</Error>"
            )
            continue
        if not quiet:
            results.append(f"<Deleted>{element('Key', raw)}</Deleted>")
    served(call, bucket)
    return xml_reply(call, "DeleteResult", results)


def copy_source(call: S3Call) -> tuple[str, str]:
    """The bucket and key of `x-amz-copy-source` (`[/]bucket/key`, URL-encoded).

    Raises:
        S3Error: InvalidArgument for a malformed source; NotImplemented for a
            `versionId` other than `null` (versions are not S3's here).
    """
    raw = call.headers["x-amz-copy-source"].strip()
    path, _, query = raw.partition("?")
    if query:
        for pair in query.split("&"):
            name, _, value = pair.partition("=")
            if name == "versionId" and unquote(value) not in ("", "null"):
                raise not_implemented(
                    "Copying one object version (x-amz-copy-source with versionId)"
                )
    text = decode_path(path.encode("latin-1"))
    bucket, slash, key = text.lstrip("/").partition("/")
    if not bucket or not slash or not key:
        raise invalid_argument("Copy Source must mention the source bucket and key: bucket/key")
    return bucket, key


async def copy_object(call: S3Call) -> Response:
    """A new version of the destination key that references the source's blob: no
    bytes move (unless the storage class changes, which copies them)."""
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    key = key_of(call)
    refuse_unsupported_write_headers(call.headers)
    source_bucket_name, source_key_text = copy_source(call)
    source_bucket = bucket_of(source_bucket_name, call.principal)
    if not call.principal.has_scope(Scope.OBJECTS_READ):
        raise access_denied()
    source_key = object_key(source_key_text)
    await call.drain()
    found = await find_newest(
        call.services.metadata,
        source_bucket.tenant,
        source_bucket.namespace,
        source_key,
        with_bytes=False,
    )
    source = found.version
    _check_copy_conditions(call, source)
    directive = call.headers.get("x-amz-metadata-directive", "COPY").strip().upper()
    if directive not in ("COPY", "REPLACE"):
        raise invalid_argument("Unknown metadata directive.")
    storage_class = storage_class_of(call.headers, default=source.storage_class)
    if directive == "COPY":
        content_type, metadata = source.content_type, source.user_metadata
    else:
        replaced = user_metadata(call.headers)
        content_type, metadata = (
            content_type_of(call.headers),
            replaced if replaced != "{}" else None,
        )
    same_place = (source_bucket.tenant, source_bucket.namespace, source_key) == (
        bucket.tenant,
        bucket.namespace,
        key,
    )
    if same_place and directive == "COPY" and storage_class == source.storage_class:
        raise S3Error(
            "InvalidRequest",
            "This copy request is illegal because it is trying to copy an object to itself"
            " without changing the object's metadata, storage class, website redirect"
            " location or encryption attributes.",
            400,
        )
    request = UploadRequest(
        tenant_id=bucket.tenant,
        namespace=bucket.namespace,
        key=key,
        storage_class=storage_class,
        content_type=content_type,
        declared_size=source.size_bytes,
        precondition=await write_precondition(call, bucket.tenant, bucket.namespace, key),
        user_metadata=metadata,
    )
    if storage_class == source.storage_class:
        result = await commit_reference(
            call.services.uploader,
            request,
            source.content_hash,
            source.size_bytes,
            s3_etag=source.s3_etag,
        )
    else:
        result = await _copy_bytes(call, found, request)
    served(call, bucket)
    version = result.version
    return xml_reply(
        call,
        "CopyObjectResult",
        [element("LastModified", iso_time(version.created_at)), element("ETag", s3_etag(version))],
    )


async def open_copy_source(services: Services, found: LocatedVersion) -> BlobReader:
    """A reader of the bytes of exactly the version `found` names (by its id), the
    one whose conditions and metadata a copy checked, even when the key has a newer
    version by now.

    Raises:
        NotFound: that version is gone (deleted since).
    """
    source = found.version
    located = await find_by_id(services.metadata, source.tenant_id, source.id)
    return await open_blob(services.blobs, located, length=source.size_bytes)


async def _copy_bytes(call: S3Call, found: LocatedVersion, request: UploadRequest) -> UploadResult:
    """A copy into another storage class: the bytes are read and stored again there."""
    source = found.version
    reader = await open_copy_source(call.services, found)
    try:
        chunks = reader.chunks(0, source.size_bytes)
        etag = source.s3_etag
        return await store(call, replace(request, md5_of=lambda: etag), chunks)
    finally:
        await reader.close()


def _check_copy_conditions(call: S3Call, source: ObjectVersion) -> None:
    h = call.headers
    outcome = evaluate(
        h.get("x-amz-copy-source-if-match"),
        h.get("x-amz-copy-source-if-none-match"),
        h.get("x-amz-copy-source-if-modified-since"),
        h.get("x-amz-copy-source-if-unmodified-since"),
        (s3_etag(source), f'"sha256:{source.content_hash.hex}"'),
        source.created_at,
    )
    if outcome is not Outcome.PROCEED:
        raise precondition_failed()  # a copy answers 412 where a GET would answer 304
