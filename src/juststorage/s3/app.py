"""The S3 gateway's ASGI app: request ids, authentication, the operation, S3's error
answers, the access log line and the request metrics, for every request."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from typing import Any, Protocol

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from juststorage.api import request_log
from juststorage.api.responses import BlobResponse
from juststorage.api.state import ApiState
from juststorage.bootstrap import Services
from juststorage.domain.errors import StorageError, TooManyRequests
from juststorage.logs import FIELDS_ATTR
from juststorage.s3.addressing import Target, signed_resource, target_of
from juststorage.s3.call import S3Call, header_map, query_map
from juststorage.s3.errors import S3Error, from_domain
from juststorage.s3.routing import route
from juststorage.s3.signing import RequestHead, S3AuthError, Verified
from juststorage.s3.xml_bodies import error_document

log = logging.getLogger("juststorage.s3")
Reply = Response | BlobResponse
# Authentication failures that say the credential or signature is wrong: counted
# against the client's address like /v1's failed logins.
_GUESSES = {"SignatureDoesNotMatch", "InvalidAccessKeyId"}
_CLOSE = (b"connection", b"close")


class Authenticator(Protocol):
    async def verify(self, head: RequestHead) -> Verified: ...


class S3App:
    """The ASGI app of the S3 listener, over one worker's services and API state."""

    def __init__(
        self,
        services: Services,
        api: ApiState,
        authenticator: Authenticator,
        domains: tuple[str, ...],
    ) -> None:
        self.services = services
        self.api = api
        self.authenticator = authenticator
        self.domains = domains

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # uvicorn runs this app without lifespan; websockets are not S3
        started = time.perf_counter()
        request_id = uuid.uuid4().hex[:16].upper()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["s3_operation"] = "Unknown"
        status = 500
        bytes_in = 0
        bytes_out = 0
        first_byte: float | None = None
        body_pending = _has_body(scope)
        id2 = base64.b64encode(uuid.uuid4().bytes).decode("ascii")

        async def receive_counted() -> Message:
            nonlocal bytes_in, body_pending
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                body_pending = False
            return message

        async def send_tagged(message: Message) -> None:
            nonlocal status, bytes_out, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter() - started
                headers = [
                    *message.get("headers", ()),
                    (b"x-amz-request-id", request_id.encode()),
                    (b"x-amz-id-2", id2.encode()),
                ]
                if body_pending:
                    headers.append(_CLOSE)  # the unread rest of the body spoils the connection
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                bytes_out += len(message.get("body", b""))
            await send(message)

        try:
            reply = await self._answer(scope, receive_counted, state)
            await reply(scope, receive_counted, send_tagged)
        except ClientDisconnect:
            pass  # the client is gone: nobody reads an answer now
        except Exception:
            log.exception("S3 %s failed while its answer was sent", state["s3_operation"])
        finally:
            elapsed = time.perf_counter() - started
            if request_log.enabled():
                request_log.log_request(scope, status, bytes_in, bytes_out, elapsed)
            namespace = str(state.get("metrics_namespace", "")) if status < 300 else ""
            self.services.metrics.observe_request(
                scope["method"], status, namespace, elapsed, first_byte
            )
            self.services.metrics.observe_s3_request(state["s3_operation"], status)

    async def _answer(self, scope: Scope, receive: Receive, state: dict[str, Any]) -> Reply:
        """The reply to the request: the operation's, or an S3 error."""
        resource = scope.get("raw_path", b"/").decode("latin-1")
        try:
            call = await self._call(scope, receive, state)
            handler, operation = route(call)
            state["s3_operation"] = operation
            return await handler(call)
        except S3AuthError as exc:
            if exc.code in _GUESSES:
                self.api.failed_authentications.failed(_client(scope))
            return error_reply(scope, exc.code, exc.message, exc.status, {}, resource)
        except S3Error as exc:
            return error_reply(scope, exc.code, exc.message, exc.status, exc.headers, resource)
        except ClientDisconnect:
            raise
        except StorageError as exc:
            if isinstance(exc, TooManyRequests):
                tenant = state.get("tenant")
                if tenant:
                    self.services.metrics.throttled.labels(tenant).inc()
            s3 = from_domain(exc, state.get("not_found"))
            if s3.status >= 500 and s3.code != "SlowDown":
                log.warning(
                    "S3 %s failed: %s",
                    state["s3_operation"],
                    exc,
                    exc_info=exc,
                    extra={FIELDS_ATTR: {"request_id": state["request_id"]}},
                )
            return error_reply(scope, s3.code, s3.message, s3.status, s3.headers, resource)
        except Exception:
            log.exception(
                "S3 %s failed unexpectedly",
                state["s3_operation"],
                extra={FIELDS_ATTR: {"request_id": state["request_id"]}},
            )
            return error_reply(
                scope,
                "InternalError",
                "We encountered an internal error. Please try again.",
                500,
                {},
                resource,
            )

    async def _call(self, scope: Scope, receive: Receive, state: dict[str, Any]) -> S3Call:
        raw_headers = list(scope["headers"])
        headers = header_map(raw_headers)
        host = headers.get("host", "")
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
        # The bucket and key are read before authentication so that SigV2 signs
        # exactly them; a path that names none is refused after it.
        target: Target | None = None
        bad_target: S3Error | None = None
        try:
            target = target_of(raw_path, host, self.domains)
        except S3Error as exc:
            bad_target = exc
        head = RequestHead(
            method=scope["method"],
            raw_path=raw_path,
            query_string=scope.get("query_string", b""),
            headers=raw_headers,
            host=host,
            signed_resource=(
                None if target is None else signed_resource(raw_path, target, host, self.domains)
            ),
        )
        self.api.failed_authentications.check(_client(scope))
        verified = await self.authenticator.verify(head)
        state["principal"] = verified.principal.subject
        if target is None:
            assert bad_target is not None
            raise bad_target
        return S3Call(
            scope=scope,
            receive=receive,
            services=self.services,
            api=self.api,
            head=head,
            target=target,
            headers=headers,
            query=query_map(head.query_string),
            verified=verified,
            state=state,
        )


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


def error_reply(
    scope: Scope,
    code: str,
    message: str,
    status: int,
    headers: dict[str, str],
    resource: str,
) -> Response:
    """S3's error answer; a HEAD gets the status and headers only."""
    request_id = str(scope.get("state", {}).get("request_id", ""))
    if scope["method"] == "HEAD":
        return Response(status_code=status, headers=headers)
    body = error_document(code, message, resource, request_id)
    return Response(body, status_code=status, headers=headers, media_type="application/xml")
