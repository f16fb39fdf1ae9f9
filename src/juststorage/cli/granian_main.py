"""The HTTP server's main process: granian alone, without the application.

`serve` checks the settings, the TLS files and the port in the CLI's own
process, which imports the whole application to do so, then replaces that
process (`exec`, same PID) with this module. Granian's main process forks the
workers and watches them; it never handles a request, so it imports only
granian and the logging setup, and each worker imports the application itself
(`juststorage.api.asgi:app_from_environment`). A main process that had imported
the application would keep those pages for nothing and hand a copy of each to
every worker it forks.

This module imports nothing of `juststorage` but `logs` (standard library only):
the first argument is a JSON `Launch`, everything `Granian(...)` needs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, TypedDict

from juststorage.logs import LogFormat, server_log_config

APP_TARGET = "juststorage.api.asgi:app_from_environment"

# The head of a request (HTTP/1: request line and headers, as read into one buffer;
# HTTP/2: the decoded header list, RFC 9113 SETTINGS_MAX_HEADER_LIST_SIZE) is at
# most this many bytes. HTTP/1's is granian's default, pinned here; HTTP/2's default
# would be 16 MiB, which HPACK lets a client reach with a few kB on the wire.
HEADER_BYTES_MAX = 8192 + 4096 * 100
# An HTTP/1 request head must arrive within this time.
HEADER_READ_TIMEOUT_MS = 30_000
# HTTP/2: at most this many requests at once on one connection (granian's default is
# 200), so a connection holds at most this many header lists of HEADER_BYTES_MAX.
HTTP2_STREAMS_MAX = 32
# HTTP/2: a connection the server pinged and that did not answer within the timeout is
# closed. A client in the middle of a header block cannot answer (any frame but
# CONTINUATION is then a protocol error), so an unfinished head lives for at most
# interval + timeout, like HTTP/1's HEADER_READ_TIMEOUT_MS.
HTTP2_PING_INTERVAL_MS = 10_000
HTTP2_PING_TIMEOUT_S = 20


class Listening(TypedDict):
    """How the server listens, as JSON can carry it (TLS files already checked)."""

    http2: bool
    tls_cert: str | None
    tls_key: str | None


class Launch(TypedDict):
    """Everything the main process needs; the workers read their settings from the
    environment (and `JUSTSTORAGE_CONFIG`), which `exec` passes on."""

    address: str
    port: int
    workers: int
    log_level: str
    log_format: LogFormat
    listening: Listening
    remove_on_exit: str | None  # a directory `serve` created for this run (metrics)


def listening_options(listening: Listening) -> dict[str, Any]:
    """The keyword arguments of `Granian(...)` for HTTP versions, header bounds and TLS."""
    from granian.constants import HTTPModes, SSLProtocols
    from granian.http import HTTP1Settings, HTTP2Settings

    options: dict[str, Any] = {
        # HTTP/1.1 only unless HTTP/2 is asked for; `auto` also speaks HTTP/1.1.
        "http": HTTPModes.auto if listening["http2"] else HTTPModes.http1,
        "http1_settings": HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS, max_buffer_size=HEADER_BYTES_MAX
        ),
        "http2_settings": HTTP2Settings(
            max_headers_size=HEADER_BYTES_MAX,
            max_concurrent_streams=HTTP2_STREAMS_MAX,
            keep_alive_interval=HTTP2_PING_INTERVAL_MS,
            keep_alive_timeout=HTTP2_PING_TIMEOUT_S,
        ),
    }
    if listening["tls_cert"] is not None and listening["tls_key"] is not None:
        options.update(
            ssl_cert=Path(listening["tls_cert"]),
            ssl_key=Path(listening["tls_key"]),
            ssl_protocol_min=SSLProtocols.tls12,
        )
    return options


def exec_server(launch: Launch) -> None:
    """Replace this process with the server's main process (never returns)."""
    sys.stdout.flush()
    sys.stderr.flush()
    argv = [sys.executable, "-m", __name__, json.dumps(launch)]
    os.execv(sys.executable, argv)


def run(launch: Launch) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    server = Granian(
        APP_TARGET,
        factory=True,
        interface=Interfaces.ASGI,
        address=launch["address"],
        port=launch["port"],
        workers=launch["workers"],
        loop=Loops.uvloop,
        log_level=launch["log_level"],  # type: ignore[arg-type]
        log_dictconfig=server_log_config(launch["log_format"]),
        log_access=False,
        respawn_failed_workers=True,
        **listening_options(launch["listening"]),
    )
    try:
        server.serve()
    finally:
        if launch["remove_on_exit"] is not None:
            shutil.rmtree(launch["remove_on_exit"], ignore_errors=True)


def main(argv: list[str]) -> int:
    """Run the server; a failure to start is one line on stderr and exit status 1
    (`CommandFailed`'s, as `serve` answers before the hand-over), not a traceback."""
    try:
        run(json.loads(argv[1]))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # granian's own start-up errors: a port taken meanwhile, …
        print(f"Error: the server could not start: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
