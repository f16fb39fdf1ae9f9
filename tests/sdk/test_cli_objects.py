"""`juststorage put/get/ls/rm/stat/usage` against a real server, as a user runs them."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.prometheus_text import parse_samples, value
from juststorage.testing import CliResult, Server, clean_env, free_port, run_cli, start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start(tmp_path_factory.mktemp("cli-objects"))
    yield server
    server.stop()


@pytest.fixture
def env(server: Server, tmp_path: Path) -> dict[str, str]:
    return clean_env(
        tmp_path / "unused-data",
        {
            "JUSTSTORAGE_URL": server.url,
            "JUSTSTORAGE_TOKEN": server.admin_key,
            "JUSTSTORAGE_CLIENT_CONFIG": str(tmp_path / "none.toml"),
        },
    )


def _ok(result: CliResult) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _fails(result: CliResult, exit_code: int, needle: str) -> None:
    assert result.returncode == exit_code, result
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("Error: ") and needle in result.stderr, result.stderr


def test_put_stat_get_ls_rm_usage_round_trip(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "report.txt"
    source.write_bytes(b"quarterly numbers\n")
    put = json.loads(_ok(run_cli(["put", str(source), "acme/files/q1/report.txt", "--json"], env)))
    assert put["size_bytes"] == 18
    assert put["content_hash"] == "sha256:" + hashlib.sha256(b"quarterly numbers\n").hexdigest()

    stat = json.loads(_ok(run_cli(["stat", "acme/files/q1/report.txt", "--json"], env)))
    assert (stat["id"], stat["size_bytes"]) == (put["id"], 18)

    dest = tmp_path / "copy.txt"
    _ok(run_cli(["get", "acme/files/q1/report.txt", str(dest)], env))
    assert dest.read_bytes() == b"quarterly numbers\n"
    assert _ok(run_cli(["get", "acme", "--id", put["id"], "-", "--range", "0-8"], env)) == (
        "quarterly"
    )

    lines = _ok(run_cli(["ls", "acme/files/q1/", "--json"], env)).splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["q1/report.txt"]
    assert "q1/report.txt" in _ok(run_cli(["ls", "acme/files", "--recursive"], env))
    assert "PRE  q1/" in _ok(run_cli(["ls", "acme/files"], env))

    usage = json.loads(_ok(run_cli(["usage", "acme", "--json"], env)))
    assert usage["objects"] >= 1 and usage["logical_bytes"] >= 18

    _ok(run_cli(["rm", "acme/files/q1/report.txt"], env))
    _fails(run_cli(["stat", "acme/files/q1/report.txt"], env), 3, "NotFound")


def test_exit_codes_follow_error_codes(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"a")
    _ok(run_cli(["put", str(source), "acme/files/once", "--no-overwrite"], env))
    _fails(
        run_cli(["put", str(source), "acme/files/once", "--no-overwrite"], env),
        6,
        "PreconditionFailed",
    )
    _fails(run_cli(["get", "acme/files/missing", str(tmp_path / "x")], env), 3, "NotFound")
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
    _fails(run_cli(["usage", "acme", "--token", "wrong"], env), 4, "Unauthorized")
    _fails(run_cli(["ls", "acme/Not A Name"], env), 2, "BadRequest")
    unreachable = f"http://127.0.0.1:{free_port()}"
    _fails(run_cli(["usage", "acme", "--url", unreachable], env), 14, "cannot reach")
    _fails(run_cli(["put", str(tmp_path / "nope"), "acme/files/k"], env), 2, "no such file")
    bad_name = run_cli(["get", "acme/files"], env)
    assert bad_name.returncode == 2 and "TENANT/NAMESPACE/KEY" in bad_name.stderr
    assert "Traceback" not in bad_name.stderr


def test_credentials_from_the_client_config_file(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "client.toml"
    config.write_text(f'url = "{server.url}"\ntoken = "{server.admin_key}"\n')
    file_env = {k: v for k, v in env.items() if k not in ("JUSTSTORAGE_URL", "JUSTSTORAGE_TOKEN")}
    file_env["JUSTSTORAGE_CLIENT_CONFIG"] = str(config)
    assert json.loads(_ok(run_cli(["usage", "acme", "--json"], file_env)))["tenant_id"] == "acme"
    # A flag wins over the file.
    _fails(run_cli(["usage", "acme", "--token", "wrong"], file_env), 4, "Unauthorized")


def test_large_put_and_get_show_progress_with_rate(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * (40 * 1024 * 4))  # 40 MiB
    put = run_cli(["put", str(source), "acme/files/big.bin", "--progress"], env, timeout=120)
    _ok(put)
    assert "MiB/s" in put.stderr and "MiB/s" not in put.stdout
    dest = tmp_path / "big.out"
    got = run_cli(["get", "acme/files/big.bin", str(dest), "--progress"], env, timeout=120)
    _ok(got)
    assert "MiB/s" in got.stderr
    assert dest.read_bytes() == source.read_bytes()


def test_every_object_command_has_help(env: dict[str, str]) -> None:
    for command in ("put", "get", "ls", "rm", "stat", "usage"):
        result = run_cli([command, "--help"], env)
        assert result.returncode == 0 and "--json" in result.stdout, (command, result.stderr)
        assert "--url" in result.stdout and "--token" in result.stdout


def _uploaded_bytes(server: Server) -> float:
    samples = parse_samples(server.client.get("/metrics").text)
    return value(samples, "just_storage_uploaded_bytes_total")


def test_put_of_a_large_file_the_tenant_holds_commits_it_by_hash(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    env = {**env, "JUSTSTORAGE_CLIENT_BY_HASH_MIN_BYTES": "65536"}
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(200_000))
    digest = "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()

    before = _uploaded_bytes(server)
    first = json.loads(_ok(run_cli(["put", str(source), "acme/models/w1", "--json"], env)))
    assert _uploaded_bytes(server) - before == 200_000  # new content: 404, then sent
    copy = json.loads(_ok(run_cli(["put", str(source), "acme/backup/w1", "--json"], env)))
    assert _uploaded_bytes(server) - before == 200_000  # held: committed without its bytes
    assert (copy["content_hash"], copy["namespace"]) == (digest, "backup")
    assert copy["id"] != first["id"]
    dest = tmp_path / "back.bin"
    _ok(run_cli(["get", "acme/backup/w1", str(dest)], env))
    assert dest.read_bytes() == source.read_bytes()

    _ok(run_cli(["put", str(source), "acme/models/w2", "--no-by-hash"], env))
    assert _uploaded_bytes(server) - before == 400_000
    other = json.loads(_ok(run_cli(["put", str(source), "beta/models/w1", "--json"], env)))
    assert other["content_hash"] == digest  # another tenant's copy never matches: sent
    assert _uploaded_bytes(server) - before == 600_000
    _fails(
        run_cli(["put", str(source), "acme/backup/w1", "--no-overwrite"], env),
        6,
        "PreconditionFailed",
    )


def test_put_below_the_threshold_never_asks_by_hash(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "small.bin"
    source.write_bytes(os.urandom(1000))
    _ok(run_cli(["put", str(source), "acme/small/a"], env))
    before = _uploaded_bytes(server)
    _ok(run_cli(["put", str(source), "acme/small/b"], env))  # default threshold: 8 MiB
    assert _uploaded_bytes(server) - before == 1000
    bad = run_cli(
        ["put", str(source), "acme/small/c"], {**env, "JUSTSTORAGE_CLIENT_BY_HASH_MIN_BYTES": "8M"}
    )
    _fails(bad, 2, "JUSTSTORAGE_CLIENT_BY_HASH_MIN_BYTES")
