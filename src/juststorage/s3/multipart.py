"""Multipart uploads on the resumable sessions of SPEC §8.2: Create, UploadPart,
Complete (ETags checked against the parts), Abort, ListParts, ListMultipartUploads."""

from __future__ import annotations

import uuid

from starlette.responses import Response

from juststorage.application.session_records import SessionState, UploadSession
from juststorage.application.sessions import SessionRequest, encode_cursor
from juststorage.domain.auth import Scope
from juststorage.domain.errors import ChecksumMismatch, Conflict, TooManyRequests
from juststorage.domain.model import ObjectKey
from juststorage.s3.addressing import Bucket
from juststorage.s3.attributes import (
    STORAGE_CLASS_OUT,
    content_type_of,
    storage_class_of,
    user_metadata,
)
from juststorage.s3.call import S3Call
from juststorage.s3.common import admit, empty_reply, iso_time, key_of, s3_etag, served, xml_reply
from juststorage.s3.errors import (
    S3Error,
    invalid_argument,
    malformed_xml,
    no_such_upload,
)
from juststorage.s3.objects import (
    _counted,
    refuse_unsupported_write_headers,
    sha256_mismatch,
    signed_sha256,
    write_precondition,
)
from juststorage.s3.xml_bodies import child_text, element, parse

MAX_PAGE = 1000
_LAST_ID = uuid.UUID(int=(1 << 128) - 1)


def _upload_id(call: S3Call) -> uuid.UUID:
    call.state["not_found"] = no_such_upload()
    try:
        return uuid.UUID(call.query.get("uploadId", ""))
    except ValueError:
        raise no_such_upload() from None


async def _session(
    call: S3Call, bucket: Bucket, key: ObjectKey, *, with_parts: bool
) -> UploadSession:
    """The open or completed session the request names, of this bucket and key."""
    session = await call.services.sessions.get(
        bucket.tenant, _upload_id(call), with_parts=with_parts
    )
    if session.namespace != bucket.namespace or session.key != key:
        raise no_such_upload()
    return session


def _owner(call: S3Call, name: str) -> str:
    key_id = call.verified.key_id
    return f"<{name}>{element('ID', key_id)}{element('DisplayName', key_id)}</{name}>"


async def create_multipart_upload(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    key = key_of(call)
    refuse_unsupported_write_headers(call.headers)
    request = SessionRequest(
        tenant_id=bucket.tenant,
        namespace=bucket.namespace,
        key=key,
        storage_class=storage_class_of(call.headers),
        content_type=content_type_of(call.headers),
        precondition=await write_precondition(call, bucket.tenant, bucket.namespace, key),
        user_metadata=user_metadata(call.headers),
    )
    await call.drain()
    session = await call.services.sessions.create(request)
    served(call, bucket)
    return xml_reply(
        call,
        "InitiateMultipartUploadResult",
        [element("Bucket", bucket.name), element("Key", key), element("UploadId", str(session.id))],
    )


def _part_number(call: S3Call) -> int:
    raw = call.query.get("partNumber", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 5 or not 1 <= int(raw) <= 10000:
        raise invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
    return int(raw)


async def upload_part(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    key = key_of(call)
    number = _part_number(call)
    session = await _session(call, bucket, key, with_parts=False)
    if session.state is not SessionState.OPEN:
        raise no_such_upload()
    body = call.body(defer_sha256=True)
    declared = body.decoded_length
    try:
        admitted = await call.api.throttle.admit_upload(bucket.tenant, declared)
    except TooManyRequests:
        call.services.metrics.throttled.labels(bucket.tenant).inc()
        raise
    try:
        part = await call.services.sessions.put_part(
            bucket.tenant,
            session.id,
            number,
            _counted(aiter(body), admitted.count),
            declared_size=declared,
            expected_hash=signed_sha256(body),
        )
    except ChecksumMismatch:
        raise sha256_mismatch() from None
    finally:
        await admitted.done()
    call.services.metrics.uploaded_bytes.inc(part.size_bytes)
    served(call, bucket)
    headers = {"ETag": f'"{part.sha256.hex}"'}
    for name, value in body.checksums.items():
        headers[f"x-amz-checksum-{name}"] = value
    return empty_reply(call, headers=headers)


def _listed_parts(call: S3Call, body: bytes) -> list[tuple[int, str]]:
    tree = parse(body, "CompleteMultipartUpload")
    listed = []
    for part in tree.findall("Part"):
        number_text = (child_text(part, "PartNumber") or "").strip()
        etag = (child_text(part, "ETag") or "").strip()
        if not number_text.isascii() or not number_text.isdigit() or len(number_text) > 5:
            raise malformed_xml()
        listed.append((int(number_text), etag.strip('"').lower()))
    if not listed:
        raise malformed_xml()
    return listed


async def complete_multipart_upload(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    key = key_of(call)
    listed = _listed_parts(
        call, await call.read_body(2 * 1024 * 1024, check_checksum_headers=False)
    )
    session = await _session(call, bucket, key, with_parts=True)
    numbers = [n for n, _ in listed]
    if session.state is SessionState.OPEN:
        _check_parts(call, session, listed)
    try:
        done = await call.services.sessions.complete(bucket.tenant, session.id, numbers)
    except Conflict as exc:
        raise S3Error("InvalidPart", exc.message, 400) from None
    version = done.version
    served(call, bucket)
    return xml_reply(
        call,
        "CompleteMultipartUploadResult",
        [
            element("Location", f"/{bucket.name}/{key}"),
            element("Bucket", bucket.name),
            element("Key", key),
            element("ETag", s3_etag(version)),
        ],
    )


def _check_parts(call: S3Call, session: UploadSession, listed: list[tuple[int, str]]) -> None:
    """S3's checks of the listed parts, with S3's errors: ascending numbers
    (InvalidPartOrder), each received with that ETag (InvalidPart), 1..N without
    gaps (ours, InvalidPart), every part but the last at least the minimum size
    (EntityTooSmall)."""
    numbers = [n for n, _ in listed]
    if numbers != sorted(set(numbers)):
        raise S3Error(
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
            400,
        )
    stored = {p.number: p for p in session.parts}
    for number, etag in listed:
        part = stored.get(number)
        if part is None or etag != part.sha256.hex:
            raise S3Error(
                "InvalidPart",
                "One or more of the specified parts could not be found. The part may not"
                " have been uploaded, or the specified entity tag may not match the part's"
                f" entity tag (part {number}).",
                400,
            )
    if numbers != list(range(1, len(numbers) + 1)):
        raise S3Error(
            "InvalidPart", "Parts must be numbered 1..N without gaps on this gateway.", 400
        )
    minimum = call.services.sessions.policy.part_min_bytes
    for number in numbers[:-1]:
        if stored[number].size_bytes < minimum:
            raise S3Error(
                "EntityTooSmall",
                f"Your proposed upload is smaller than the minimum allowed object size:"
                f" part {number} has {stored[number].size_bytes} bytes, every part but the"
                f" last needs at least {minimum}.",
                400,
            )


async def abort_multipart_upload(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    key = key_of(call)
    session = await _session(call, bucket, key, with_parts=False)
    await call.drain()
    try:
        await call.services.sessions.abort(bucket.tenant, session.id)
    except Conflict:
        raise no_such_upload() from None  # completed: S3 knows no such upload any more
    served(call, bucket)
    return empty_reply(call, 204)


def _int_param(call: S3Call, name: str, default: int, maximum: int) -> int:
    raw = call.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise invalid_argument(f"{name} must be a non-negative integer")
    return min(int(raw), maximum)


async def list_parts(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    key = key_of(call)
    session = await _session(call, bucket, key, with_parts=True)
    if session.state is not SessionState.OPEN:
        raise no_such_upload()
    limit = _int_param(call, "max-parts", MAX_PAGE, MAX_PAGE)
    marker = _int_param(call, "part-number-marker", 0, 10000)
    after = [p for p in session.parts if p.number > marker]
    page = after[:limit]
    truncated = len(after) > len(page)
    parts = "".join(
        "<Part>"
        + element("PartNumber", p.number)
        + element("LastModified", iso_time(p.created_at))
        + element("ETag", f'"{p.sha256.hex}"')
        + element("Size", p.size_bytes)
        + "</Part>"
        for p in page
    )
    served(call, bucket)
    return xml_reply(
        call,
        "ListPartsResult",
        [
            element("Bucket", bucket.name),
            element("Key", key),
            element("UploadId", str(session.id)),
            element("PartNumberMarker", marker),
            element("NextPartNumberMarker", page[-1].number if page else marker),
            element("MaxParts", limit),
            element("IsTruncated", truncated),
            parts,
            _owner(call, "Initiator"),
            _owner(call, "Owner"),
            element("StorageClass", STORAGE_CLASS_OUT[session.storage_class]),
        ],
    )


async def list_multipart_uploads(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_WRITE)
    limit = _int_param(call, "max-uploads", MAX_PAGE, MAX_PAGE)
    prefix = call.query.get("prefix", "")
    key_marker = call.query.get("key-marker") or None
    id_marker = call.query.get("upload-id-marker") or None
    cursor = None
    if key_marker is not None:
        after_id = _LAST_ID
        if id_marker is not None:
            try:
                after_id = uuid.UUID(id_marker)
            except ValueError:
                raise invalid_argument("Invalid uploadId marker") from None
        cursor = encode_cursor(key_marker, after_id)
    uploads: list[UploadSession] = []
    sessions: list[UploadSession] = []
    truncated = False
    if limit > 0:
        sessions, next_cursor = await call.services.sessions.list_open(
            bucket.tenant, bucket.namespace, limit, cursor
        )
        uploads = [s for s in sessions if s.key.startswith(prefix)]
        truncated = next_cursor is not None
    last = sessions[-1] if sessions else None  # the markers follow the unfiltered page
    listed = "".join(
        "<Upload>"
        + element("Key", s.key)
        + element("UploadId", str(s.id))
        + _owner(call, "Initiator")
        + _owner(call, "Owner")
        + element("StorageClass", STORAGE_CLASS_OUT[s.storage_class])
        + element("Initiated", iso_time(s.created_at))
        + "</Upload>"
        for s in uploads
    )
    served(call, bucket)
    return xml_reply(
        call,
        "ListMultipartUploadsResult",
        [
            element("Bucket", bucket.name),
            element("KeyMarker", key_marker or ""),
            element("UploadIdMarker", id_marker or ""),
            element("NextKeyMarker", last.key if truncated and last else None),
            element("NextUploadIdMarker", str(last.id) if truncated and last else None),
            element("Prefix", prefix),
            element("MaxUploads", limit),
            element("IsTruncated", truncated),
            listed,
        ],
    )
