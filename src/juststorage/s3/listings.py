"""ListObjectsV2 and ListObjects (V1) over the keyset listing of /v1 (SPEC §2, §8.4):
the same pages, cursors and cost at any depth."""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.responses import Response

from juststorage.application.listing import MAX_PAGE, ListPage, list_objects
from juststorage.application.records import ListQuery
from juststorage.application.summaries import ObjectSummary
from juststorage.domain.auth import Scope
from juststorage.domain.cursor import ListCursor
from juststorage.domain.errors import BadRequest
from juststorage.s3.addressing import Bucket
from juststorage.s3.call import S3Call
from juststorage.s3.common import admit, served, xml_reply
from juststorage.s3.errors import invalid_argument
from juststorage.s3.xml_bodies import element, escape

STORAGE_CLASS_OUT = {"hot": "STANDARD", "cold": "STANDARD_IA"}
# What `quote(text, safe="/")` leaves unchanged: ASCII letters, digits, "_.-~" and "/".
_URL_SAFE = re.compile(r"[A-Za-z0-9_.~/-]*")


def _max_keys(call: S3Call, name: str = "max-keys") -> int:
    raw = call.query.get(name)
    if raw is None or raw == "":
        return MAX_PAGE
    if not raw.isascii() or not raw.isdigit():
        raise invalid_argument(f"Provided {name} not an integer or within integer range")
    return MAX_PAGE if len(raw) > 7 else min(int(raw), MAX_PAGE)  # S3 caps it at 1000


def _encoder(call: S3Call) -> tuple[str | None, object]:
    kind = call.query.get("encoding-type")
    if kind is None or kind == "":
        return None, lambda text: text
    if kind != "url":
        raise invalid_argument("Invalid Encoding Method specified in Request")
    return "url", _url_encoded


def _url_encoded(text: str) -> str:
    """`quote(text, safe="/")`, without its cost for the common key it leaves as is."""
    return text if _URL_SAFE.fullmatch(text) else quote(text, safe="/")


def _delimiter(call: S3Call) -> str | None:
    return call.query.get("delimiter") or None


async def _page(
    call: S3Call,
    bucket: Bucket,
    prefix: str,
    delimiter: str | None,
    limit: int,
    after: ListCursor | None,
) -> tuple[ListPage, list[str]]:
    query = ListQuery(
        tenant_id=bucket.tenant,
        namespace=bucket.namespace,
        limit=limit,
        after=after,
        prefix=prefix,
        delimiter=delimiter,
    )
    page = await list_objects(call.services.metadata, query)  # BadRequest: the delimiter
    return page, page.common_prefixes


async def _contents(call: S3Call, items: list[ObjectSummary], encode: object, owner: bool) -> str:
    async with call.services.metadata.snapshot() as view:
        etags = await view.objects.s3_etags([item["id"] for item in items])
    owner_xml = ""
    if owner:
        key_id = call.verified.key_id
        owner_xml = f"<Owner>{element('ID', key_id)}{element('DisplayName', key_id)}</Owner>"
    # What follows the Size of an entry, by storage class: the same for most rows.
    tails = {
        ours: element("StorageClass", theirs) + owner_xml + "</Contents>"
        for ours, theirs in STORAGE_CLASS_OUT.items()
    }
    other_tail = element("StorageClass", "STANDARD") + owner_xml + "</Contents>"
    # One string per entry, the values escaped (`element`'s text, inlined: a page
    # builds 1000 of them).
    return "".join(
        [
            f"<Contents><Key>{escape(encode(item['key']))}</Key>"  # type: ignore[operator]
            f"<LastModified>{escape(_iso(item['created_at']))}</LastModified>"
            "<ETag>&quot;"
            f"{escape(etags.get(item['id']) or item['content_hash'].removeprefix('sha256:'))}"
            f"&quot;</ETag><Size>{item['size_bytes']}</Size>"
            f"{tails.get(item['storage_class'], other_tail)}"
            for item in items
        ]
    )


def _iso(text: str) -> str:
    """RFC 3339 with whole seconds (`…Z`) as S3 writes it (`….000Z`)."""
    return text[:-1] + ".000Z" if text.endswith("Z") and "." not in text else text


def _common(prefixes: list[str], encode: object) -> str:
    return "".join(
        f"<CommonPrefixes>{element('Prefix', encode(p))}</CommonPrefixes>"  # type: ignore[operator]
        for p in prefixes
    )


def _cursor(token: str, what: str) -> ListCursor:
    try:
        return ListCursor.decode(token)
    except BadRequest:
        raise invalid_argument(f"The {what} provided is incorrect") from None


async def list_objects_v2(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_READ)
    prefix = call.query.get("prefix", "")
    delimiter = _delimiter(call)
    limit = _max_keys(call)
    encoding, encode = _encoder(call)
    token = call.query.get("continuation-token")
    start_after = call.query.get("start-after") or None
    after = None
    if token is not None:
        if token == "":
            raise invalid_argument("The continuation token provided is incorrect")
        after = _cursor(token, "continuation token")
    elif start_after is not None:
        after = ListCursor(start_after, 0)
    head = [
        element("Name", bucket.name),
        element("Prefix", encode(prefix)),  # type: ignore[operator]
        element("Delimiter", encode(delimiter) if delimiter else None),  # type: ignore[operator]
        element("MaxKeys", limit),
        element("EncodingType", encoding),
        element("ContinuationToken", token),
        element("StartAfter", encode(start_after) if start_after else None),  # type: ignore[operator]
    ]
    if limit == 0:
        served(call, bucket)
        return xml_reply(
            call, "ListBucketResult", [*head, element("KeyCount", 0), element("IsTruncated", False)]
        )
    page, prefixes = await _page(call, bucket, prefix, delimiter, limit, after)
    body = [
        *head,
        element("KeyCount", len(page.items) + len(prefixes)),
        element("IsTruncated", page.next_cursor is not None),
        element("NextContinuationToken", page.next_cursor),
        await _contents(call, page.items, encode, call.query.get("fetch-owner") == "true"),
        _common(prefixes, encode),
    ]
    if page.items:
        served(call, bucket)
    return xml_reply(call, "ListBucketResult", body)


async def list_objects_v1(call: S3Call) -> Response:
    bucket = await admit(call, Scope.OBJECTS_READ)
    prefix = call.query.get("prefix", "")
    delimiter = _delimiter(call)
    limit = _max_keys(call)
    encoding, encode = _encoder(call)
    marker = call.query.get("marker") or None
    head = [
        element("Name", bucket.name),
        element("Prefix", encode(prefix)),  # type: ignore[operator]
        element("Marker", encode(marker or "")),  # type: ignore[operator]
        element("MaxKeys", limit),
        element("Delimiter", encode(delimiter) if delimiter else None),  # type: ignore[operator]
        element("EncodingType", encoding),
    ]
    if limit == 0:
        return xml_reply(call, "ListBucketResult", [*head, element("IsTruncated", False)])
    after = None
    if marker is not None:
        # A marker that is a common prefix this listing returned resumes after every
        # key under it.
        rolled_up = delimiter is not None and marker.endswith(delimiter)
        after = ListCursor.past(marker) if rolled_up else ListCursor(marker, 0)
    page, prefixes = await _page(call, bucket, prefix, delimiter, limit, after)
    truncated = page.next_cursor is not None
    next_marker = None
    if truncated:
        # The greatest key or common prefix of the page: listing resumes after it.
        last_key = page.items[-1]["key"] if page.items else ""
        last_prefix = prefixes[-1] if prefixes else ""
        next_marker = max(last_key, last_prefix)
    body = [
        *head,
        element("IsTruncated", truncated),
        element("NextMarker", encode(next_marker) if next_marker else None),  # type: ignore[operator]
        await _contents(call, page.items, encode, True),
        _common(prefixes, encode),
    ]
    if page.items:
        served(call, bucket)
    return xml_reply(call, "ListBucketResult", body)
