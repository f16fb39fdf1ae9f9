"""The S3 gateway's CPU per request, in process: signed 4 KiB PutObject and 1000-key
ListObjectsV2 pages called straight into `S3App` (no HTTP, no server).

    .venv/bin/python -m bench.s3_steps [--puts 2000] [--pages 30] [--profile put|list]

SQLite in a temporary directory, one API key of tenant `acme` with its derived S3
secret, requests signed by botocore's SigV4 signer (signed payload). Prints the
process CPU and wall time per PUT and per page; with `--profile`, cProfile's top
functions of that phase. `PYTHONPATH=<another src>` measures other code.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.types import Message

HOST = "127.0.0.1:9"
Request = tuple[dict[str, Any], Callable[[], Awaitable[Message]]]


def _signed(creds: Any, method: str, path: str, query: bytes = b"", body: bytes = b"") -> Request:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = f"http://{HOST}{path}" + ("?" + query.decode() if query else "")
    request = AWSRequest(method=method, url=url, data=body)
    S3SigV4Auth(creds, "s3", "us-east-1").add_auth(request)
    headers = [(k.lower().encode(), v.encode()) for k, v in request.prepare().headers.items()]
    headers.append((b"host", HOST.encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 9),
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": headers,
    }
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive


async def _run(tmp: Path, puts: int, pages: int, profile: str | None) -> None:
    from botocore.credentials import Credentials
    from pydantic import SecretStr

    from juststorage.api.state import ApiState
    from juststorage.application.apikeys import create_api_key
    from juststorage.bootstrap import build, s3_master_key, start
    from juststorage.config import Settings
    from juststorage.s3.app import S3App
    from juststorage.s3.listener import domains_of
    from juststorage.s3.secrets import derive_s3_secret
    from juststorage.s3.signing import build_s3_authenticator

    settings = Settings(data_dir=tmp, s3_addr=HOST, s3_master_key=SecretStr("bench-" + "k" * 40))
    services = build(settings)
    await services.metadata.migrate()
    await start(services)
    scopes = ["objects:read", "objects:write", "objects:delete"]
    record = (await create_api_key(services.metadata, services.clock, ["acme"], scopes)).record
    secret = derive_s3_secret(s3_master_key(settings), record.id, record.key_hash)
    creds = Credentials(record.id, secret)
    state = ApiState.from_settings(settings, services.metadata)
    app = S3App(services, state, build_s3_authenticator(services), domains_of(settings))
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def phase(name: str, requests: list[Request]) -> None:
        profiler = cProfile.Profile() if profile == name else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for scope, receive in requests:
            sent.clear()
            await app(scope, receive, send)
            if sent[0]["status"] != 200:
                raise RuntimeError(f"{name}: {sent}")
        if profiler is not None:
            profiler.disable()
        n = len(requests)
        cpu_ms = (time.process_time() - cpu) / n * 1000
        wall_ms = (time.perf_counter() - wall) / n * 1000
        print(f"{name}: {cpu_ms:.3f} ms CPU, {wall_ms:.3f} ms wall per request")
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)

    block = os.urandom(4096)
    await phase(
        "put",
        [
            _signed(creds, "PUT", f"/acme.b/p/small/{i:06d}", body=i.to_bytes(8, "big") + block[8:])
            for i in range(puts)
        ],
    )
    query = b"list-type=2&prefix=p%2Fsmall%2F&encoding-type=url"
    await phase("list", [_signed(creds, "GET", "/acme.b", query) for _ in range(pages)])
    await services.metadata.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=2000)
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--profile", choices=("put", "list"))
    args = parser.parse_args()
    logging.basicConfig(level="WARNING")
    with tempfile.TemporaryDirectory(prefix="s3steps-") as tmp:
        asyncio.run(_run(Path(tmp), args.puts, args.pages, args.profile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
