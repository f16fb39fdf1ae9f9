"""How `serve` configures granian, and its check that the port is its own."""

from __future__ import annotations

import socket

import pytest
from granian.constants import HTTPModes
from granian.http import HTTP1Settings, HTTP2Settings

from juststorage.cli.errors import CommandFailed
from juststorage.cli.listener import (
    ensure_port_free,
    granian_options,
    metrics_exposure_warning,
)
from juststorage.config import load_settings


def test_http1_only_by_default_and_http2_bounded_like_http1_when_on() -> None:
    assert granian_options(load_settings({}))["http"] == HTTPModes.http1
    options = granian_options(load_settings({"JUSTSTORAGE_HTTP2": "true"}))
    assert options["http"] == HTTPModes.auto
    h1: HTTP1Settings = options["http1_settings"]
    h2: HTTP2Settings = options["http2_settings"]
    assert h2.max_headers_size == h1.max_buffer_size <= 512 * 1024
    assert h2.max_concurrent_streams <= 32
    # An unfinished head cannot answer a ping: it lasts at most interval + timeout.
    assert h2.keep_alive_interval is not None
    assert h2.keep_alive_interval / 1000 + h2.keep_alive_timeout <= h1.header_read_timeout / 1000
    assert "ssl_cert" not in options


@pytest.mark.parametrize("reuse_port", [False, True])
def test_a_port_another_process_listens_on_is_refused(reuse_port: bool) -> None:
    with socket.socket() as holder:
        if reuse_port:  # as granian's workers bind: this must not let a second server in
            holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(CommandFailed, match=f"127.0.0.1:{port}: another process"):
            ensure_port_free("127.0.0.1", port)
    ensure_port_free("127.0.0.1", port)  # free again once it closed


@pytest.mark.parametrize(
    ("host", "metrics_addr", "warned"),
    [
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("10.1.2.3", None, True),
        ("storage.internal", None, True),
        ("0.0.0.0", "10.0.0.5:9091", False),
    ],
)
def test_metrics_on_a_public_listener_is_warned_about(
    host: str, metrics_addr: str | None, warned: bool
) -> None:
    warning = metrics_exposure_warning(host, metrics_addr)
    assert (warning is not None) == warned
    if warning is not None:
        assert "JUSTSTORAGE_METRICS_ADDR" in warning and host in warning
