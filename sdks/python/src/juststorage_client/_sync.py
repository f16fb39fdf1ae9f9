"""`Client`: the JustStorage API, blocking.

Generated from `_async.py` by `sdks/python/unasync.py`: do not edit.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Literal, overload

import httpx

from juststorage_client._errors import TransportError
from juststorage_client._models import (
    CommonPrefix,
    Health,
    ListPage,
    ObjectHead,
    ObjectInfo,
    PresignedUrl,
    Usage,
)
from juststorage_client._protocol import (
    CHUNK_BYTES,
    DEFAULT_TIMEOUT,
    ByteRange,
    Progress,
    Target,
    Verifier,
    auth_headers,
    by_hash_digest,
    error_from,
    range_header,
    remaining_size,
    seekable_position,
    sha256_of_file,
    upload_headers,
    upload_is_idempotent,
    user_agent,
)
from juststorage_client._retry import RetryEvent, RetryPolicy
from juststorage_client._sessions import UploadSession
from juststorage_client._tls import CAFile, ssl_context
from juststorage_client._transfer_state import (
    PARALLEL,
    PARALLEL_THRESHOLD_BYTES,
    RANGE_BYTES,
    default_state_dir,
    fsync_dir,
    temp_beside,
)
from juststorage_client._transfers_sync import (
    abort_upload,
    complete_upload,
    create_upload,
    download_ranges,
    get_upload,
    upload_file_parts,
    upload_part,
)

BodyFactory = Callable[[], Iterator[bytes]]


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    # Blocking file I/O stays off the event loop.
    return function(*args)


# Downloads read the raw body: ask for it unencoded, so that a compressing proxy
# cannot hand us bytes that differ from the object's.
_RAW_BODY = {"Accept-Encoding": "identity"}


class Download:
    """An open download: `head`, then the body from `iter_bytes()`.

    The body resumes with `Range` (by object id, so it cannot switch versions)
    when the connection breaks, and a whole-object download is checked against
    the ETag after its last byte (`IntegrityError` on a mismatch).
    """

    def __init__(
        self,
        client: Client,
        target: Target,
        response: httpx.Response,
        byte_range: ByteRange | None,
        progress: Progress | None,
    ) -> None:
        self._client = client
        self._response = response
        self.status = response.status_code
        self.head = ObjectHead.from_headers(response.headers)
        self._target = target.pinned(self.head.id) if self.head.id else target
        self._progress = progress
        self._first = byte_range[0] if byte_range else 0
        self._whole = byte_range is None
        content_length = int(response.headers.get("content-length", "-1"))
        self.length = content_length if content_length >= 0 else None
        """Bytes the body will have (of the range, when one was asked)."""

    def iter_bytes(self) -> Iterator[bytes]:
        verifier = Verifier(self.head.content_hash) if self._whole else None
        received = 0
        resumes = 0
        response = self._response
        policy = self._client.retry
        while True:
            try:
                # The body as it arrives (identity-encoded, see _RAW_BODY): httpx's
                # re-chunking to a fixed size copied every byte once more, the largest
                # cost of a download after h11 itself (profiled).
                for chunk in response.iter_raw():
                    received += len(chunk)
                    if verifier is not None:
                        verifier.update(chunk)
                    if self._progress is not None:
                        self._progress(len(chunk))
                    yield chunk
                if self.length is not None and received < self.length:
                    raise httpx.RemoteProtocolError("the body ended early")
                break
            except httpx.TransportError as exc:
                response.close()
                if resumes >= policy.max_resumes or self.length is None:
                    raise TransportError(f"download broke after {received} bytes: {exc}") from exc
                resumes += 1
                delay = policy.backoff(resumes)
                self._client.notify_retry("GET", self._target.path(), resumes, delay, None, exc)
                _sleep(delay)
                response = self._resume(received)
        response.close()
        if verifier is not None:
            verifier.check()

    def _resume(self, received: int) -> httpx.Response:
        assert self.length is not None
        last = self._first + self.length - 1
        headers = {
            **self._target.headers(),
            "Range": f"bytes={self._first + received}-{last}",
            **_RAW_BODY,
        }
        response = self._client.send("GET", self._target.path(), headers=headers)
        if response.status_code != 206 or response.headers.get("etag", "").strip('"') != (
            self.head.content_hash
        ):
            response.close()
            raise TransportError("the object changed while its download was resumed")
        self._response = response
        return response

    def read(self) -> bytes:
        buffer = bytearray()
        for chunk in self.iter_bytes():
            buffer += chunk
        return bytes(buffer)

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Client:
    """A JustStorage client. `token` is an API key or a JWT (sent as Bearer).

    Retries follow `retry` (see `RetryPolicy`); `transport` lets tests plug in
    an `httpx.MockTransport`. Use as a context manager, or call `close()`.

    TLS and proxies follow the platform: the system's certificates (and
    `SSL_CERT_FILE` / `SSL_CERT_DIR`), `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY`
    and `NO_PROXY`. `ca_cert` names a PEM file of the CAs to trust instead (a
    private CA); `verify=False` turns verification off.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        transport: httpx.BaseTransport | None = None,
        ca_cert: CAFile | None = None,
        verify: bool = True,
    ) -> None:
        self.retry = retry or RetryPolicy()
        self.chunk_bytes = chunk_bytes
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"User-Agent": user_agent(), **auth_headers(token)},
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            transport=transport,
            verify=ssl_context(ca_cert, verify),
            # The proxy variables (and NO_PROXY); certificates come from `verify`.
            trust_env=True,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the request loop -------------------------------------------------------

    def notify_retry(
        self,
        method: str,
        path: str,
        attempt: int,
        delay: float,
        status: int | None,
        error: BaseException | str,
    ) -> None:
        if self.retry.on_retry is not None:
            event = RetryEvent(method, path, attempt, delay, status, str(error))
            self.retry.on_retry(event)

    def send(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        body: BodyFactory | None = None,
        replayable: bool = True,
        idempotent: bool = True,
        accept: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request with retries; an open (streaming) response, or an ApiError.

        429/503 are retried when the body can be sent again (`replayable`): the
        server refused the request, so nothing was stored. A connection failure is
        retried when the call is `idempotent`, or when the connection was never
        made (nothing was sent). Statuses in `accept` are returned, not raised.
        """
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(
                method,
                path,
                headers=headers,
                params=params,
                content=body() if body is not None else None,
            )
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                if attempt >= policy.max_attempts or not (idempotent or never_sent):
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
                if not (replayable or body is None):
                    raise TransportError(f"{method} {path}: {exc!r}") from exc
                delay = policy.backoff(attempt)
                self.notify_retry(method, path, attempt, delay, None, exc)
                _sleep(delay)
                continue
            if response.status_code < 400 or response.status_code in accept:
                return response
            delay_s = policy.delay_for(response, attempt) if replayable or body is None else None
            response.read()
            response.close()
            if delay_s is None:
                raise error_from(response)
            self.notify_retry(method, path, attempt, delay_s, response.status_code, "")
            _sleep(delay_s)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.send(method, path, **kwargs)
        try:
            response.read()
        finally:
            response.close()
        return response.json()

    # -- uploads ----------------------------------------------------------------

    def upload(
        self,
        data: bytes | bytearray | memoryview,
        *,
        tenant: str,
        namespace: str,
        key: str,
        storage_class: str | None = None,
        content_type: str | None = None,
        if_none_match: Literal["*"] | None = None,
        if_match: str | None = None,
        sha256: str | None = None,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        """Upload bytes (their SHA-256 is sent as X-Content-SHA256)."""
        view = memoryview(data).cast("B")
        digest = sha256 or hashlib.sha256(view).hexdigest()
        chunk_bytes = self.chunk_bytes

        def body() -> Iterator[bytes]:
            for start in range(0, len(view), chunk_bytes):
                chunk = bytes(view[start : start + chunk_bytes])
                if progress is not None:
                    progress(len(chunk))
                yield chunk

        return self._upload(
            body,
            replayable=True,
            size=len(view),
            tenant=tenant,
            namespace=namespace,
            key=key,
            storage_class=storage_class,
            content_type=content_type,
            if_none_match=if_none_match,
            if_match=if_match,
            sha256=digest,
        )

    def upload_file(
        self,
        path: str | os.PathLike[str],
        *,
        tenant: str,
        namespace: str,
        key: str,
        storage_class: str | None = None,
        content_type: str | None = None,
        if_none_match: Literal["*"] | None = None,
        if_match: str | None = None,
        sha256: str | None = None,
        checksum: bool = True,
        progress: Progress | None = None,
        parallel: int = PARALLEL,
        multipart_threshold: int = PARALLEL_THRESHOLD_BYTES,
        part_bytes: int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        on_resume: Progress | None = None,
    ) -> ObjectInfo:
        """Upload a file, streamed in chunks.

        With `checksum` (the default) the file is hashed first in one streaming
        pass, and the digest is sent as X-Content-SHA256: a file that changes
        while it is sent is refused (ChecksumMismatch) instead of stored.

        A file of `multipart_threshold` bytes or more goes through a multipart
        session (SPEC §8.2): parts of `part_bytes` (default max(8 MiB, size/10000)),
        `parallel` at a time. The session id and the acknowledged parts' digests
        are kept in a state file in `state_dir` (default
        `$XDG_CONFIG_HOME/juststorage/transfers`), so calling this again with
        the same arguments after an interruption sends only the missing parts
        (`on_resume` is called once with the bytes skipped). A server without
        the session API gets the file in one request instead.
        """
        file_path = Path(path)
        if file_path.stat().st_size >= multipart_threshold:
            info = upload_file_parts(
                self,
                file_path,
                tenant=tenant,
                namespace=namespace,
                key=key,
                storage_class=storage_class,
                content_type=content_type,
                if_none_match=if_none_match,
                if_match=if_match,
                sha256=sha256,
                checksum=checksum,
                parallel=parallel,
                part_bytes=part_bytes,
                state_dir=Path(state_dir) if state_dir is not None else default_state_dir(),
                progress=progress,
                on_resume=on_resume,
            )
            if info is not None:
                return info
        if sha256 is None and checksum:
            sha256, size = _in_thread(sha256_of_file, file_path, self.chunk_bytes)
        else:
            size = file_path.stat().st_size
        chunk_bytes = self.chunk_bytes

        def body() -> Iterator[bytes]:
            handle = _in_thread(file_path.open, "rb")
            try:
                while chunk := _in_thread(handle.read, chunk_bytes):
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk
            finally:
                handle.close()

        return self._upload(
            body,
            replayable=True,
            size=size,
            tenant=tenant,
            namespace=namespace,
            key=key,
            storage_class=storage_class,
            content_type=content_type,
            if_none_match=if_none_match,
            if_match=if_match,
            sha256=sha256,
        )

    def upload_stream(
        self,
        stream: BinaryIO | Iterable[bytes] | Iterable[bytes],
        *,
        tenant: str,
        namespace: str,
        key: str,
        size: int | None = None,
        storage_class: str | None = None,
        content_type: str | None = None,
        if_none_match: Literal["*"] | None = None,
        if_match: str | None = None,
        sha256: str | None = None,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        """Upload from a binary file object or an iterable of chunks.

        Sent with Content-Length when `size` is given (or the file's remaining
        size is known), chunked otherwise. Only a seekable file object can be
        sent twice, so other streams are never retried.
        """
        chunk_bytes = self.chunk_bytes
        read: Callable[[int], bytes] | None = getattr(stream, "read", None)
        start = seekable_position(stream) if read is not None else None
        if read is not None and size is None:
            size = remaining_size(stream)

        def body() -> Iterator[bytes]:
            if read is not None:
                if start is not None:
                    getattr(stream, "seek")(start)  # noqa: B009 (any file-like object)
                while chunk := _in_thread(read, chunk_bytes):
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk
            elif isinstance(stream, Iterable):
                for chunk in stream:
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk
            else:
                for chunk in stream:
                    if progress is not None:
                        progress(len(chunk))
                    yield chunk

        return self._upload(
            body,
            replayable=start is not None,
            size=size,
            tenant=tenant,
            namespace=namespace,
            key=key,
            storage_class=storage_class,
            content_type=content_type,
            if_none_match=if_none_match,
            if_match=if_match,
            sha256=sha256,
        )

    def _upload(
        self,
        body: BodyFactory,
        *,
        replayable: bool,
        size: int | None,
        tenant: str,
        namespace: str,
        key: str,
        storage_class: str | None,
        content_type: str | None,
        if_none_match: Literal["*"] | None,
        if_match: str | None,
        sha256: str | None,
    ) -> ObjectInfo:
        headers = upload_headers(
            tenant=tenant,
            namespace=namespace,
            key=key,
            storage_class=storage_class,
            content_type=content_type,
            sha256=sha256,
            if_none_match=if_none_match,
            if_match=if_match,
            size=size,
        )
        data = self._json(
            "POST",
            "/v1/objects",
            headers=headers,
            body=body,
            replayable=replayable,
            idempotent=replayable and upload_is_idempotent(if_none_match, if_match, sha256),
        )
        return ObjectInfo.from_json(data)

    def put_by_hash(
        self,
        *,
        tenant: str,
        namespace: str,
        key: str,
        sha256: str,
        size: int,
        storage_class: str | None = None,
        content_type: str | None = None,
        if_none_match: Literal["*"] | None = None,
        if_match: str | None = None,
    ) -> ObjectInfo | None:
        """Upload by hash (POST /v1/objects/by-hash): commit a new version from content
        the tenant already stores, without sending it; None when the tenant stores no
        object of this SHA-256 and size in the storage class (send the bytes then).

        Content other tenants store never matches. Other errors raise as for `upload`.
        """
        digest = by_hash_digest(sha256)
        headers = upload_headers(
            tenant=tenant,
            namespace=namespace,
            key=key,
            storage_class=storage_class,
            content_type=content_type,
            sha256=digest,
            if_none_match=if_none_match,
            if_match=if_match,
            size=None,
        )
        headers["X-Content-Length"] = str(size)
        response = self.send(
            "POST",
            "/v1/objects/by-hash",
            headers=headers,
            idempotent=upload_is_idempotent(if_none_match, if_match, digest),
            accept=(404,),
        )
        try:
            response.read()
        finally:
            response.close()
        if response.status_code == 404:
            return None
        return ObjectInfo.from_json(response.json())

    # -- downloads --------------------------------------------------------------

    def open(
        self,
        *,
        tenant: str,
        id: str | None = None,
        namespace: str | None = None,
        key: str | None = None,
        byte_range: ByteRange | None = None,
        progress: Progress | None = None,
    ) -> Download:
        """Start a download by id or by key (newest version); read it as a stream.

        `with client.open(...) as download: for chunk in download.iter_bytes()`
        """
        target = Target(tenant=tenant, id=id, namespace=namespace, key=key)
        headers = {**target.headers(), **range_header(byte_range), **_RAW_BODY}
        response = self.send("GET", target.path(), headers=headers)
        return Download(self, target, response, byte_range, progress)

    def download(
        self,
        *,
        tenant: str,
        id: str | None = None,
        namespace: str | None = None,
        key: str | None = None,
        byte_range: ByteRange | None = None,
        progress: Progress | None = None,
    ) -> bytes:
        """The object's bytes (or `byte_range` of them) in memory."""
        download = self.open(
            tenant=tenant,
            id=id,
            namespace=namespace,
            key=key,
            byte_range=byte_range,
            progress=progress,
        )
        with download:
            return download.read()

    def download_to_file(
        self,
        destination: str | os.PathLike[str] | BinaryIO,
        *,
        tenant: str,
        id: str | None = None,
        namespace: str | None = None,
        key: str | None = None,
        byte_range: ByteRange | None = None,
        progress: Progress | None = None,
        parallel: int = PARALLEL,
        parallel_threshold: int = PARALLEL_THRESHOLD_BYTES,
        range_bytes: int = RANGE_BYTES,
        on_resume: Progress | None = None,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> ObjectHead:
        """Stream the object into a file. A path is written into a new temporary file
        beside it (`.<name>.<random>.juststorage-part`, never a name another key or a
        file of the caller's can own), fsynced, and renamed over the path only once
        every byte arrived and the hash matched.

        A whole object of `parallel_threshold` bytes or more is fetched as byte
        ranges of `range_bytes`, `parallel` at a time; which temporary file and which
        ranges it holds are kept in a state file in `state_dir` (default
        `$XDG_CONFIG_HOME/juststorage/transfers`), and a later call downloading the
        same version to the same path keeps those ranges (`on_resume` is called once
        with their bytes).
        """
        if byte_range is None and isinstance(destination, (str, os.PathLike)):
            head = self.head(tenant=tenant, id=id, namespace=namespace, key=key)
            if head.size_bytes >= parallel_threshold:
                return download_ranges(
                    self,
                    Path(destination),
                    head,
                    tenant,
                    parallel=parallel,
                    state_dir=Path(state_dir) if state_dir is not None else default_state_dir(),
                    range_bytes=range_bytes,
                    progress=progress,
                    on_resume=on_resume,
                )
            if head.id:  # the small path below reads this very version
                id, namespace, key = head.id, None, None
        download = self.open(
            tenant=tenant,
            id=id,
            namespace=namespace,
            key=key,
            byte_range=byte_range,
            progress=progress,
        )
        with download:
            if not isinstance(destination, (str, os.PathLike)):
                for chunk in download.iter_bytes():
                    _in_thread(destination.write, chunk)
                return download.head
            final = Path(destination)
            partial = _in_thread(temp_beside, final)
            try:
                handle = _in_thread(partial.open, "r+b")
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            try:
                for chunk in download.iter_bytes():  # checks the SHA-256 at the end
                    _in_thread(handle.write, chunk)
                _in_thread(handle.flush)
                _in_thread(os.fsync, handle.fileno())
                handle.close()
                os.replace(partial, final)
            except BaseException:
                handle.close()
                partial.unlink(missing_ok=True)
                raise
            _in_thread(fsync_dir, final.parent)
            return download.head

    def head(
        self,
        *,
        tenant: str,
        id: str | None = None,
        namespace: str | None = None,
        key: str | None = None,
    ) -> ObjectHead:
        target = Target(tenant=tenant, id=id, namespace=namespace, key=key)
        response = self.send("HEAD", target.path(), headers=target.headers())
        response.close()
        return ObjectHead.from_headers(response.headers)

    # -- multipart upload sessions (SPEC §8.2) ---------------------------------

    def create_upload(
        self,
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
        """Open a session; `sha256` is the whole object's, checked at completion."""
        return create_upload(
            self,
            tenant=tenant,
            namespace=namespace,
            key=key,
            storage_class=storage_class,
            content_type=content_type,
            if_none_match=if_none_match,
            if_match=if_match,
            sha256=sha256,
        )

    def upload_part(
        self, upload_id: str, number: int, data: bytes | bytearray | memoryview
    ) -> dict[str, Any]:
        """Send part `number` (1-10000) from memory; sending it again replaces it."""
        payload = bytes(data)

        def body() -> Iterator[bytes]:
            yield payload

        digest = hashlib.sha256(payload).hexdigest()
        return upload_part(self, upload_id, number, body, size=len(payload), sha256=digest)

    def get_upload(self, upload_id: str) -> UploadSession:
        """The session with the parts the server holds, in order: what resuming needs."""
        return get_upload(self, upload_id)

    def complete_upload(self, upload_id: str, parts: list[int] | None = None) -> ObjectInfo:
        """Commit the parts (default: all received) as one object."""
        return complete_upload(self, upload_id, parts)

    def abort_upload(self, upload_id: str) -> None:
        abort_upload(self, upload_id)

    # -- presigned URLs (SPEC §8.5) --------------------------------------------

    def presign(
        self,
        method: Literal["GET", "HEAD", "PUT"],
        *,
        tenant: str,
        namespace: str | None = None,
        key: str | None = None,
        id: str | None = None,
        expires_in: int | None = None,
    ) -> PresignedUrl:
        """A URL for one method on one object (by key, or by `id` for GET/HEAD) that
        works without a credential for `expires_in` seconds (1-604800, default 3600).

        `url` is absolute: the server's (`JUSTSTORAGE_PUBLIC_URL`) or this client's.
        """
        fields: dict[str, Any] = {"method": method, "tenant": tenant}
        if id is not None:
            fields["id"] = id
        if namespace is not None:
            fields["namespace"] = namespace
        if key is not None:
            fields["key"] = key
        if expires_in is not None:
            fields["expires_in"] = expires_in
        payload = json.dumps(fields).encode("utf-8")

        def body() -> Iterator[bytes]:
            yield payload

        data = self._json(
            "POST",
            "/v1/presign",
            headers={"Content-Type": "application/json"},
            body=body,
        )
        return PresignedUrl.from_json(data, str(self._http.base_url))

    # -- deletes, listing, usage, operations ------------------------------------

    def delete(
        self,
        *,
        tenant: str,
        id: str | None = None,
        namespace: str | None = None,
        key: str | None = None,
    ) -> None:
        """Delete one version (by id) or every version of a key. NotFound if none."""
        target = Target(tenant=tenant, id=id, namespace=namespace, key=key)
        response = self.send("DELETE", target.path(), headers=target.headers())
        response.close()

    def list_page(
        self,
        *,
        tenant: str,
        namespace: str,
        prefix: str | None = None,
        versions: bool = False,
        storage_class: str | None = None,
        delimiter: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ListPage:
        """One page of a listing (`limit` entries at most, after `cursor`).

        With `delimiter`, keys holding it after the prefix are rolled up into
        `common_prefixes` (SPEC §8.4); items and prefixes together fill the page.
        """
        params = {"tenant": tenant, "namespace": namespace, "limit": str(limit)}
        if prefix:
            params["prefix"] = prefix
        if versions:
            params["versions"] = "true"
        if storage_class:
            params["storage_class"] = storage_class
        if delimiter is not None:
            params["delimiter"] = delimiter
        if cursor:
            params["cursor"] = cursor
        return ListPage.from_json(self._json("GET", "/v1/objects", params=params))

    @overload
    def list(
        self,
        *,
        tenant: str,
        namespace: str,
        prefix: str | None = None,
        versions: bool = False,
        storage_class: str | None = None,
        page_size: int = 100,
        delimiter: None = None,
    ) -> Iterator[ObjectInfo]: ...

    @overload
    def list(
        self,
        *,
        tenant: str,
        namespace: str,
        prefix: str | None = None,
        versions: bool = False,
        storage_class: str | None = None,
        page_size: int = 100,
        delimiter: str,
    ) -> Iterator[ObjectInfo | CommonPrefix]: ...

    def list(
        self,
        *,
        tenant: str,
        namespace: str,
        prefix: str | None = None,
        versions: bool = False,
        storage_class: str | None = None,
        page_size: int = 100,
        delimiter: str | None = None,
    ) -> Iterator[ObjectInfo | CommonPrefix]:
        """Every matching object, in key order, following `next_cursor` page by page.

        With `delimiter` (folder-style, SPEC §8.4), a key that holds it after the
        prefix is not listed: its `CommonPrefix` is, once, at its place in key order.
        """
        cursor: str | None = None
        while True:
            page = self.list_page(
                tenant=tenant,
                namespace=namespace,
                prefix=prefix,
                versions=versions,
                storage_class=storage_class,
                delimiter=delimiter,
                limit=page_size,
                cursor=cursor,
            )
            for entry in page.entries():  # noqa: UP028 (no `yield from` in the async source)
                yield entry
            cursor = page.next_cursor
            if not cursor or not (page.items or page.common_prefixes):
                return

    def usage(self, *, tenant: str) -> Usage:
        return Usage.from_json(self._json("GET", "/v1/usage", params={"tenant": tenant}))

    def health(self) -> Health:
        response = self.send("GET", "/health", accept=(503,))
        response.read()
        response.close()
        return Health.from_response(response)

    def ready(self) -> Health:
        """Readiness; a 503 answer is returned (`ok` False), not raised or retried."""
        response = self.send("GET", "/ready", accept=(503,))
        response.read()
        response.close()
        return Health.from_response(response)
