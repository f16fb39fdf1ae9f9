"""Large transfers on asyncio: parallel resumable downloads and multipart uploads.

`_transfers_sync.py` is generated from this file by `sdks/python/unasync.py`; edit here.

Downloads: the object (pinned by id) is fetched as ranges in parallel into a
temporary file beside the destination (`.<name>.<random>.juststorage-part`, made
with O_EXCL, so no other key and no user file owns it); each range is fsynced
before the download's state file under `state_dir` records it, so a later run
skips every recorded range, but only for the same version (id, hash and size) and
the same temporary file. The whole file is hashed at the end, fsynced, and renamed
over the destination only if it matches the ETag.

Uploads: one multipart session (SPEC §8.2) with parts sent in parallel. The
state file keeps the session id and the digest of each acknowledged part; a
later run of the same upload asks the server which parts it holds and skips
those whose SHA-256 matches the file's bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx

from juststorage_client._errors import (
    ChecksumMismatch,
    Conflict,
    IntegrityError,
    MethodNotAllowed,
    NotFound,
    TransportError,
)
from juststorage_client._models import ObjectHead, ObjectInfo
from juststorage_client._protocol import (
    CHUNK_BYTES,
    Progress,
    Target,
    sha256_of_file,
    upload_headers,
)
from juststorage_client._sessions import UploadSession
from juststorage_client._transfer_state import (
    RANGE_BYTES,
    Counter,
    DownloadState,
    UploadState,
    download_state_path,
    fsync_dir,
    part_size_for,
    read_json,
    sha256_of_span,
    spans,
    upload_state_path,
)
from juststorage_client._workers import run_async

if TYPE_CHECKING:
    from juststorage_client._async import AsyncClient

_RAW_BODY = {"Accept-Encoding": "identity"}
_WRITE_BYTES = 1024 * 1024  # gather a range's body into writes of this size


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    # Blocking file I/O stays off the event loop.
    return await asyncio.to_thread(function, *args)


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


# -- downloads --------------------------------------------------------------------


async def download_ranges(
    client: AsyncClient,
    final: Path,
    head: ObjectHead,
    tenant: str,
    *,
    parallel: int,
    state_dir: Path,
    range_bytes: int = RANGE_BYTES,
    progress: Progress | None = None,
    on_resume: Progress | None = None,
) -> ObjectHead:
    """Download the version `head` names into `final` in parallel ranges, resumably."""
    state_path = download_state_path(state_dir, final)
    state, resumed = await _in_thread(
        DownloadState.load_or_new,
        state_path,
        final,
        head.id,
        head.content_hash,
        head.size_bytes,
        range_bytes,
    )
    partial = final.with_name(state.temp)
    fd = os.open(partial, os.O_RDWR | os.O_NOFOLLOW)
    try:
        if not resumed:
            os.ftruncate(fd, head.size_bytes)
            state.save()
        elif on_resume is not None and state.done_bytes():
            on_resume(state.done_bytes())
        counter = Counter(progress)
        ranges = state.ranges()
        target = Target(tenant=tenant, id=head.id)

        async def fetch(index: int) -> None:
            offset, length = ranges[index]
            await _fetch_range(client, target, head, fd, offset, length, counter)
            # The bytes are durable before the state file says so.
            await _in_thread(os.fdatasync, fd)
            await _in_thread(state.mark_done, index)

        todo = [i for i in range(len(ranges)) if i not in state.done]
        await run_async(parallel, todo, fetch)
        actual, _ = await _in_thread(sha256_of_file, partial, CHUNK_BYTES)
        if actual != head.sha256:
            # Start over next time: these bytes are not the object's.
            partial.unlink(missing_ok=True)
            state_path.unlink(missing_ok=True)
            raise IntegrityError(
                f"downloaded bytes hash to sha256:{actual}, the object is {head.content_hash}",
                expected=head.sha256,
                actual=actual,
            )
        await _in_thread(os.fsync, fd)
    finally:
        os.close(fd)
    os.replace(partial, final)
    fsync_dir(final.parent)
    state_path.unlink(missing_ok=True)
    return head


async def _fetch_range(
    client: AsyncClient,
    target: Target,
    head: ObjectHead,
    fd: int,
    offset: int,
    length: int,
    counter: Counter,
) -> None:
    """One range into `fd` at `offset`; a broken connection resumes where it stopped."""
    if length == 0:
        return
    received = 0
    resumes = 0
    policy = client.retry
    while True:
        headers = {
            **target.headers(),
            "Range": f"bytes={offset + received}-{offset + length - 1}",
            **_RAW_BODY,
        }
        response = await client.send("GET", target.path(), headers=headers)
        try:
            etag = response.headers.get("etag", "").strip('"')
            if response.status_code != 206 or etag != head.content_hash:
                raise TransportError("the object changed while it was downloaded")
            buffer = bytearray()
            async for chunk in response.aiter_raw():
                buffer += chunk
                if len(buffer) >= _WRITE_BYTES:
                    await _in_thread(_pwrite_all, fd, bytes(buffer), offset + received)
                    received += len(buffer)
                    counter(len(buffer))
                    buffer.clear()
            if buffer:
                await _in_thread(_pwrite_all, fd, bytes(buffer), offset + received)
                received += len(buffer)
                counter(len(buffer))
            if received < length:
                raise httpx.RemoteProtocolError("the body ended early")
            return
        except httpx.TransportError as exc:
            if resumes >= policy.max_resumes:
                raise TransportError(f"download broke after {received} bytes: {exc}") from exc
            resumes += 1
            delay = policy.backoff(resumes)
            client.notify_retry("GET", target.path(), resumes, delay, None, exc)
            await _sleep(delay)
        finally:
            await response.aclose()


# -- upload sessions ----------------------------------------------------------------


def _json_body(data: Any) -> Callable[[], AsyncIterator[bytes]]:
    payload = json.dumps(data).encode()

    async def body() -> AsyncIterator[bytes]:
        yield payload

    return body


async def create_upload(
    client: AsyncClient,
    *,
    tenant: str,
    namespace: str,
    key: str,
    storage_class: str | None = None,
    content_type: str | None = None,
    if_none_match: Literal["*"] | None = None,
    if_match: str | None = None,
    sha256: str | None = None,
) -> UploadSession:
    headers = upload_headers(
        tenant=tenant,
        namespace=namespace,
        key=key,
        storage_class=storage_class,
        content_type=content_type,
        sha256=sha256,
        if_none_match=if_none_match,
        if_match=if_match,
        size=None,
    )
    # Retried after a broken connection too: at worst that leaves one empty session
    # behind, which expires and is reaped; failing the whole upload would cost more.
    data = await client._json("POST", "/v1/uploads", headers=headers)
    return UploadSession.from_json(data)


async def get_upload(client: AsyncClient, upload_id: str) -> UploadSession:
    return UploadSession.from_json(await client._json("GET", _session_path(upload_id)))


async def upload_part(
    client: AsyncClient,
    upload_id: str,
    number: int,
    body: Callable[[], AsyncIterator[bytes]],
    *,
    size: int,
    sha256: str | None = None,
) -> dict[str, Any]:
    """Send part `number` (replacing any earlier one); the server's `{part, size_bytes, sha256}`."""
    headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
    if sha256 is not None:
        headers["X-Content-SHA256"] = sha256
    data: dict[str, Any] = await client._json(
        "PUT", f"{_session_path(upload_id)}/parts/{number}", headers=headers, body=body
    )
    return data


async def complete_upload(
    client: AsyncClient, upload_id: str, parts: list[int] | None = None
) -> ObjectInfo:
    data = await client._json(
        "POST",
        f"{_session_path(upload_id)}/complete",
        headers={"Content-Type": "application/json"},
        body=_json_body({"parts": parts} if parts is not None else {}),
    )
    return ObjectInfo.from_json(data)


async def abort_upload(client: AsyncClient, upload_id: str) -> None:
    response = await client.send("DELETE", _session_path(upload_id))
    await response.aclose()


def _session_path(upload_id: str) -> str:
    return f"/v1/uploads/{quote(upload_id, safe='')}"


# -- multipart uploads ----------------------------------------------------------------


async def upload_file_parts(
    client: AsyncClient,
    path: Path,
    *,
    tenant: str,
    namespace: str,
    key: str,
    storage_class: str | None,
    content_type: str | None,
    if_none_match: Literal["*"] | None,
    if_match: str | None,
    sha256: str | None,
    checksum: bool,
    parallel: int,
    part_bytes: int | None,
    state_dir: Path,
    progress: Progress | None = None,
    on_resume: Progress | None = None,
) -> ObjectInfo | None:
    """Upload a file through a multipart session that a later run can resume.

    None when the server has no session API (`POST /v1/uploads` is 404 or 405).
    """
    stat = path.stat()
    # Not the server's URL: the same server may be reached by another name (a proxy),
    # and a session id another server does not know is simply not resumed (404).
    identity = {
        "tenant": tenant,
        "namespace": namespace,
        "key": key,
        "storage_class": storage_class,
        "content_type": content_type,
        "if_none_match": if_none_match,
        "if_match": if_match,
        "path": str(path.resolve()),
    }
    state_path = upload_state_path(state_dir, identity)
    state = UploadState.load(state_path, stat.st_size, stat.st_mtime_ns)
    if state is None:
        stale = read_json(state_path)
        if stale is not None and isinstance(stale.get("upload_id"), str):
            # The file changed since: its parts are of no use, free them at once (a
            # session completed or gone holds none: Conflict, NotFound).
            with contextlib.suppress(NotFound, Conflict):
                await abort_upload(client, stale["upload_id"])
        state = UploadState(
            state_path,
            stat.st_size,
            stat.st_mtime_ns,
            part_bytes or part_size_for(stat.st_size),
            sha256,
        )
    if state.sha256 is None and checksum:
        state.sha256, _ = await _in_thread(sha256_of_file, path, CHUNK_BYTES)
    elif sha256 is not None and state.sha256 != sha256:
        state.sha256 = sha256
    numbered = spans(stat.st_size, state.part_bytes)
    session: UploadSession | None = None
    if state.upload_id is not None:
        try:
            session = await get_upload(client, state.upload_id)
        except NotFound:
            session = None  # expired or aborted: start a new one
    if session is not None and session.state == "completed":
        info = await complete_upload(client, session.upload_id, list(range(1, len(numbered) + 1)))
        state.discard()
        return info
    if session is None or session.state != "open":
        try:
            session = await create_upload(
                client,
                tenant=tenant,
                namespace=namespace,
                key=key,
                storage_class=storage_class,
                content_type=content_type,
                if_none_match=if_none_match,
                if_match=if_match,
                sha256=state.sha256,
            )
        except (NotFound, MethodNotAllowed):
            return None  # a server without the session API: the caller sends one request
        state.upload_id = session.upload_id
        state.parts = {}
    await _in_thread(state.save)
    upload_id = session.upload_id

    held: set[int] = set()
    for part in session.parts:
        if part.part > len(numbered) or part.size_bytes != numbered[part.part - 1][1]:
            continue
        known = state.parts.get(part.part)
        if known is None:
            # Acknowledged by the server but not yet recorded here (the run stopped
            # in between): reading the part is cheaper than sending it again.
            offset, length = numbered[part.part - 1]
            known = await _in_thread(sha256_of_span, path, offset, length, CHUNK_BYTES)
        if known == part.sha256:
            held.add(part.part)
            state.parts[part.part] = known
    if held:
        await _in_thread(state.save)
        if on_resume is not None:
            on_resume(sum(numbered[n - 1][1] for n in held))
    counter = Counter(progress)
    chunk_bytes = client.chunk_bytes

    async def send(number: int) -> None:
        offset, length = numbered[number - 1]
        # No hashing pass of its own: the whole file's X-Content-SHA256, checked at
        # completion, covers every part, and a resume compares the server's digest of
        # what it stored with the one recorded here.
        answer = await upload_part(
            client,
            upload_id,
            number,
            _file_span_body(path, offset, length, chunk_bytes, counter),
            size=length,
        )
        if int(answer.get("size_bytes", length)) != length:
            raise TransportError(f"part {number} was stored with another size")
        digest = str(answer["sha256"]).removeprefix("sha256:")
        await _in_thread(state.record_part, number, digest)

    todo = [n for n in range(1, len(numbered) + 1) if n not in held]
    await run_async(parallel, todo, send)
    try:
        info = await complete_upload(client, upload_id, list(range(1, len(numbered) + 1)))
    except ChecksumMismatch:
        # The parts are not the file's bytes (it changed while it was sent): forget
        # the session, so that the next run starts over.
        with contextlib.suppress(NotFound):
            await abort_upload(client, upload_id)
        state.discard()
        raise
    state.discard()
    return info


def _file_span_body(
    path: Path, offset: int, length: int, chunk_bytes: int, counter: Counter
) -> Callable[[], AsyncIterator[bytes]]:
    async def body() -> AsyncIterator[bytes]:
        handle = await _in_thread(path.open, "rb")
        try:
            await _in_thread(handle.seek, offset)
            left = length
            while left > 0:
                data = await _in_thread(handle.read, min(chunk_bytes, left))
                if not data:
                    raise OSError("the file ended before the part did (was it truncated?)")
                left -= len(data)
                counter(len(data))
                yield data
        finally:
            handle.close()

    return body
