"""What `serve` listens with: HTTP/1.1 unless HTTP/2 is asked for, HTTP/2 bounded
like HTTP/1, TLS without a proxy, and a port no other process holds (SPEC §2, §6)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from juststorage.cli.listener import HEADER_BYTES_MAX, HTTP2_STREAMS_MAX
from juststorage.testing import (
    BIN,
    STOP_TIMEOUT_S,
    Process,
    child_pids,
    clean_env,
    free_port,
    spawn,
    start,
)
from support import h2_frames as h2
from support.private_ca import self_signed

pytestmark = pytest.mark.e2e


def _peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for {pid}")


def test_default_server_refuses_http2(tmp_path: Path) -> None:
    server = start(tmp_path)
    try:
        with h2.Connection(server.port, timeout=5.0) as conn:
            conn.sock.sendall(h2.PREFACE + h2.encode_frame(h2.SETTINGS, 0, 0))
            answer = conn.read_frame()
        # An HTTP/2 server answers the preface with its SETTINGS frame; an HTTP/1.1
        # one closes the connection (or answers an HTTP/1 error, not a frame).
        assert answer is None or answer.type != h2.SETTINGS, answer
        assert server.client.get("/health").http_version == "HTTP/1.1"
    finally:
        server.stop()


def test_http2_when_enabled_bounds_header_lists_and_streams(tmp_path: Path) -> None:
    server = start(tmp_path, {"JUSTSTORAGE_HTTP2": "true"})
    try:
        with h2.Connection(server.port) as conn:
            settings = h2.settings_of(conn.start())
            assert settings[h2.SETTINGS_MAX_HEADER_LIST_SIZE] == HEADER_BYTES_MAX
            assert settings[h2.SETTINGS_MAX_CONCURRENT_STREAMS] == HTTP2_STREAMS_MAX
            conn.send_headers(1, h2.request_head())
            heads = [f for f in conn.frames_until({1}, 10.0) if f.type == h2.HEADERS]
            assert heads and h2.is_status_200(heads[0]), heads

        [worker] = child_pids(server.pid)
        before = _peak_rss_kib(worker)
        # HPACK amplification: one 4 kB header enters the dynamic table, then every
        # one-byte reference to it is another 4 kB decoded. 12 streams of 4000
        # references are 48 kB on the wire and ~190 MB of headers unbounded.
        big = h2.literal_added(b"x-a", b"a" * 4000)
        refs = h2.indexed(h2.FIRST_DYNAMIC_INDEX) * 4000
        streams = list(range(1, 25, 2))
        with h2.Connection(server.port) as conn:
            conn.start()
            try:
                for n, stream in enumerate(streams):
                    conn.send_headers(stream, h2.request_head() + (big if n == 0 else b"") + refs)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server ended the connection: what it should do
            answers = conn.frames_until(set(streams), 15.0)
        served = [f.stream for f in answers if h2.is_status_200(f)]
        assert served == [], f"oversized header lists were served on streams {served}"
        grown_mib = (_peak_rss_kib(worker) - before) / 1024
        assert grown_mib < 32, f"worker peak RSS grew by {grown_mib:.0f} MiB"

        with h2.Connection(server.port) as conn:  # and it keeps serving
            conn.start()
            conn.send_headers(1, h2.request_head())
            heads = [f for f in conn.frames_until({1}, 10.0) if f.type == h2.HEADERS]
            assert heads and h2.is_status_200(heads[0]), heads
    finally:
        server.stop()


def _serve(tmp_path: Path, args: list[str], extra_env: dict[str, str], ca: Path) -> Process:
    data_dir = tmp_path / f"data-{uuid.uuid4().hex[:8]}"
    port = free_port()
    argv = [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
    log_path = tmp_path / f"server-{port}.log"
    return spawn(argv, clean_env(data_dir, extra_env), log_path, port, tls_ca=ca)


def _alpn(port: int, ca: Path) -> str | None:
    """The protocol the server picks from h2 and http/1.1."""
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5.0) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.selected_alpn_protocol()


def test_tls_from_options_and_from_settings(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    by_option = _serve(tmp_path, ["--tls-cert", str(cert), "--tls-key", str(key)], {}, cert)
    try:
        verified = ssl.create_default_context(cafile=cert)
        with httpx.Client(base_url=by_option.url, verify=verified, trust_env=False) as client:
            response = client.get("/health")
        assert response.status_code == 200
        assert response.url.scheme == "https"
        assert _alpn(by_option.port, cert) == "http/1.1"  # no HTTP/2 unless asked for
        with httpx.Client(trust_env=False) as default, pytest.raises(httpx.ConnectError):
            default.get(by_option.url + "/health")  # self-signed: refused by a default client
        with httpx.Client(trust_env=False) as plain, pytest.raises(httpx.TransportError):
            plain.get(f"http://127.0.0.1:{by_option.port}/health")
    finally:
        by_option.stop()

    by_settings = _serve(
        tmp_path,
        [],
        {
            "JUSTSTORAGE_TLS_CERT": str(cert),
            "JUSTSTORAGE_TLS_KEY": str(key),
            "JUSTSTORAGE_HTTP2": "true",
        },
        cert,
    )
    try:
        assert _alpn(by_settings.port, cert) == "h2"
    finally:
        by_settings.stop()


def _refused_serve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`serve` that must exit at once; one still serving after 15 s is stopped and fails."""
    proc = subprocess.Popen(
        [str(BIN), "serve", "--host", "127.0.0.1", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=STOP_TIMEOUT_S)
        pytest.fail(f"serve {args} is still serving:\n{stderr}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], result.stderr


def test_tls_files_that_do_not_load_fail_cleanly(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "data")
    port = str(free_port())
    missing = tmp_path / "missing.pem"
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    _assert_one_error_line(
        _refused_serve(
            ["--port", port, "--tls-cert", str(missing), "--tls-key", str(missing)], env
        ),
        str(missing),
    )
    _assert_one_error_line(
        _refused_serve(
            ["--port", port, "--tls-cert", str(garbage), "--tls-key", str(garbage)], env
        ),
        str(garbage),
    )
    only_cert = {**env, "JUSTSTORAGE_TLS_CERT": str(garbage)}
    _assert_one_error_line(_refused_serve(["--port", port], only_cert), "JUSTSTORAGE_TLS_KEY")


def test_second_server_on_a_held_port_fails_and_workers_still_share_it(tmp_path: Path) -> None:
    first = start(tmp_path, workers=2)
    try:
        assert len(child_pids(first.pid)) == 2  # its own workers share the port
        key = first.admin_key
        other_store = clean_env(tmp_path / "other-data")
        result = _refused_serve(["--port", str(first.port)], other_store)
        _assert_one_error_line(result, f"127.0.0.1:{first.port}", "another process")
        assert not (tmp_path / "other-data" / "meta.db").exists()
        # Every connection still reaches the first store.
        for _ in range(20):
            with httpx.Client(base_url=first.url, trust_env=False) as fresh:
                response = fresh.get(
                    "/v1/usage?tenant=t", headers={"Authorization": f"Bearer {key}"}
                )
            assert response.status_code == 200, response.text
    finally:
        first.stop()
