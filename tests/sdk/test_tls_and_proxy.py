"""The Python SDK and the CLI over HTTPS with a private CA, and through a proxy.

A real `juststorage serve` with a certificate from a CA no system trusts: refused
without that CA, accepted with `ca_cert=` / `--ca-cert`, with `SSL_CERT_FILE`, and
(with a warning) with `--insecure`. `HTTPS_PROXY` and `NO_PROXY` are honoured: a
tunnel through `support.connect_proxy` reaches a name that resolves nowhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import juststorage_client as js
import pytest

from juststorage.testing import CliResult, Server, clean_env, run_cli
from support.connect_proxy import ConnectProxy
from support.private_ca import PROXIED_NAME, PrivateCA, make_private_ca, start_https

pytestmark = pytest.mark.e2e

# What the environment may say about proxies and certificates: each test sets its own.
_PLATFORM_VARS = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return make_private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ca: PrivateCA) -> Iterator[Server]:
    server = start_https(tmp_path_factory.mktemp("https"), ca)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_platform_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PLATFORM_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy() as proxy:
        yield proxy


def _round_trip(client: js.Client) -> None:
    info = client.upload(b"over tls", tenant="acme", namespace="tls", key="k")
    assert client.download(tenant="acme", id=info.id) == b"over tls"


# -- the SDK ------------------------------------------------------------------


def test_sdk_refuses_a_server_its_platform_does_not_trust(server: Server) -> None:
    with (
        js.Client(server.url, server.admin_key, retry=js.NO_RETRIES) as client,
        pytest.raises(js.TransportError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.head(tenant="acme", namespace="tls", key="k")


def test_sdk_trusts_the_ca_file_it_is_given(server: Server, ca: PrivateCA) -> None:
    with js.Client(server.url, server.admin_key, ca_cert=ca.ca_cert) as client:
        _round_trip(client)
    with js.Client(server.url, server.admin_key, ca_cert=str(ca.ca_cert)) as client:
        assert client.health().ok


def test_sdk_follows_ssl_cert_file(
    server: Server, ca: PrivateCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_cert))
    with js.Client(server.url, server.admin_key) as client:
        _round_trip(client)


def test_sdk_without_verification_when_asked(server: Server) -> None:
    with js.Client(server.url, server.admin_key, verify=False) as client:
        _round_trip(client)


def test_sdk_refuses_a_ca_file_that_is_not_one(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ValueError, match="no usable PEM certificate"):
        js.Client("https://127.0.0.1:1", ca_cert=garbage)
    with pytest.raises(ValueError, match="no such file"):
        js.Client("https://127.0.0.1:1", ca_cert=tmp_path / "missing.pem")


def test_async_sdk_trusts_the_ca_file_through_the_proxy(
    server: Server, ca: PrivateCA, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    url = f"https://{PROXIED_NAME}:{server.port}"

    async def main() -> bytes:
        async with js.AsyncClient(url, server.admin_key, ca_cert=ca.ca_cert) as client:
            info = await client.upload(b"async", tenant="acme", namespace="tls", key="a")
            return await client.download(tenant="acme", id=info.id)

    assert anyio.run(main) == b"async"
    assert proxy.targets and set(proxy.targets) == {f"{PROXIED_NAME}:{server.port}"}


def test_sdk_tunnels_through_https_proxy(
    server: Server, ca: PrivateCA, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    url = f"https://{PROXIED_NAME}:{server.port}"
    with js.Client(url, server.admin_key, ca_cert=ca.ca_cert) as client:
        _round_trip(client)
    assert proxy.targets and set(proxy.targets) == {f"{PROXIED_NAME}:{server.port}"}


def test_sdk_skips_the_proxy_for_no_proxy_hosts(
    server: Server, ca: PrivateCA, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with js.Client(server.url, server.admin_key, ca_cert=ca.ca_cert) as client:
        _round_trip(client)
    assert proxy.targets == []


def test_sdk_sends_plain_http_through_http_proxy(
    tmp_path: Path, proxy: ConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    from juststorage.testing import start

    plain = start(tmp_path)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        with js.Client(plain.url, plain.admin_key) as client:
            _round_trip(client)
        assert proxy.targets and all(t.startswith(plain.url + "/") for t in proxy.targets)
    finally:
        plain.stop()


# -- the CLI ------------------------------------------------------------------


def _cli_env(server: Server, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in clean_env(tmp_path / "unused").items() if k not in _PLATFORM_VARS}
    (tmp_path / "none.toml").touch()  # named, so it must exist (empty)
    env.update(
        JUSTSTORAGE_URL=server.url,
        JUSTSTORAGE_TOKEN=server.admin_key,
        JUSTSTORAGE_CLIENT_CONFIG=str(tmp_path / "none.toml"),
    )
    env.update(extra)
    return env


def _ok(result: CliResult) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_cli_refuses_an_untrusted_server(server: Server, tmp_path: Path) -> None:
    result = run_cli(["usage", "acme"], _cli_env(server, tmp_path))
    assert result.returncode == 14, result
    # The reason must reach the user, however the message is worded around it.
    assert result.stderr.startswith("Error: ") and "certificate" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_cli_ca_cert_option_and_ssl_cert_file(
    server: Server, ca: PrivateCA, tmp_path: Path
) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"cli over tls")
    env = _cli_env(server, tmp_path)
    put = ["put", str(source), "acme/tls/cli.txt", "--json", "--ca-cert", str(ca.ca_cert)]
    stored = json.loads(_ok(run_cli(put, env)))
    got = run_cli(["get", "acme/tls/cli.txt", "-", "--ca-cert", str(ca.ca_cert)], env)
    assert _ok(got) == "cli over tls"
    by_env = _cli_env(server, tmp_path, JUSTSTORAGE_CA_CERT=str(ca.ca_cert))
    assert (
        json.loads(_ok(run_cli(["stat", "acme/tls/cli.txt", "--json"], by_env)))["id"]
        == (stored["id"])
    )
    platform = _cli_env(server, tmp_path, SSL_CERT_FILE=str(ca.ca_cert))
    assert "cli.txt" in _ok(run_cli(["ls", "acme/tls/"], platform))


def test_cli_missing_ca_cert_file_is_a_usage_error(server: Server, tmp_path: Path) -> None:
    result = run_cli(
        ["usage", "acme", "--ca-cert", str(tmp_path / "nope.pem")], _cli_env(server, tmp_path)
    )
    assert result.returncode == 2, result
    assert "--ca-cert" in result.stderr and "Traceback" not in result.stderr


def test_cli_insecure_works_and_warns(server: Server, tmp_path: Path) -> None:
    result = run_cli(["usage", "acme", "--json", "--insecure"], _cli_env(server, tmp_path))
    assert json.loads(_ok(result))["objects"] >= 0
    assert "Warning: --insecure" in result.stderr and "not verified" in result.stderr


def test_cli_goes_through_https_proxy(
    server: Server, ca: PrivateCA, proxy: ConnectProxy, tmp_path: Path
) -> None:
    env = _cli_env(
        server,
        tmp_path,
        JUSTSTORAGE_URL=f"https://{PROXIED_NAME}:{server.port}",
        HTTPS_PROXY=proxy.url,
    )
    _ok(run_cli(["usage", "acme", "--ca-cert", str(ca.ca_cert)], env))
    assert proxy.targets == [f"{PROXIED_NAME}:{server.port}"]
