"""The `juststorage` command line as a user runs it (SPEC §6, §7)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from juststorage.cli import reference
from juststorage.testing import BIN, STOP_TIMEOUT_S, CliResult, clean_env, free_port, run_cli
from support.db_query import query

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path / "data")


@pytest.fixture
def store_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with a store in it (only `serve` and `migrate` create one)."""
    created = run_cli(["migrate"], env)
    assert created.returncode == 0, created.stderr
    return env


def _commands(help_text: str) -> list[str]:
    _, _, section = help_text.partition("\nCommands:\n")
    return re.findall(r"^  (\S+)", section, flags=re.MULTILINE)


def _assert_clean_failure(result: CliResult, exit_code: int, *needles: str) -> None:
    """`exit_code` (docs/cli.md), a one-line `Error: …` message naming what is wrong,
    no traceback."""
    assert result.returncode == exit_code, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], result.stderr


def test_every_command_has_help(env: dict[str, str]) -> None:
    """... and it is the text docs/cli.md shows (tests/unit/test_cli_reference.py)."""
    env = {**env, "COLUMNS": str(reference.HELP_COLUMNS)}
    documented = reference.help_texts()
    root = run_cli(["--help"], env)
    assert root.returncode == 0, root.stderr
    assert root.stdout == documented["juststorage"]
    pending = [[name] for name in _commands(root.stdout)]
    assert {"serve", "migrate", "keys", "token"} <= {p[0] for p in pending}
    seen = []
    for _ in range(100):  # bounded walk of the command tree
        if not pending:
            break
        path = pending.pop()
        result = run_cli([*path, "--help"], env)
        assert result.returncode == 0, (path, result.stderr)
        assert result.stdout.startswith("Usage: juststorage " + " ".join(path)), result.stdout
        assert result.stdout == documented["juststorage " + " ".join(path)], path
        seen.append(" ".join(path))
        pending += [[*path, name] for name in _commands(result.stdout)]
    assert {"keys create", "keys list", "keys revoke", "token issue"} <= set(seen)
    assert {"juststorage " + path for path in seen} == set(documented) - {"juststorage"}
    assert not (Path(env["JUSTSTORAGE_DATA_DIR"]) / "meta.db").exists(), "--help touched data"


def test_version(env: dict[str, str]) -> None:
    result = run_cli(["--version"], env)
    assert result.returncode == 0
    assert "juststorage" in result.stdout


def test_migrate_is_idempotent(env: dict[str, str]) -> None:
    first = run_cli(["migrate"], env)
    assert first.returncode == 0, first.stderr
    assert "applied" in first.stdout
    second = run_cli(["migrate"], env)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert not re.search(r"^applied ", second.stdout, flags=re.MULTILINE)


def test_keys_list_never_shows_the_key(store_env: dict[str, str]) -> None:
    env = store_env
    created = []
    for tenants, scopes in ((["acme"], ["objects:read"]), (["acme", "beta"], ["admin"])):
        args = ["keys", "create", "--json"]
        args += [a for t in tenants for a in ("--tenant", t)]
        args += [a for s in scopes for a in ("--scope", s)]
        result = run_cli(args, env)
        assert result.returncode == 0, result.stderr
        record = json.loads(result.stdout)
        assert set(record) >= {"id", "key", "tenants", "scopes"}
        assert record["tenants"] == sorted(tenants) and record["scopes"] == sorted(scopes)
        created.append(record)
    plain = run_cli(["keys", "create", "--tenant", "acme", "--scope", "usage:read"], env)
    assert plain.returncode == 0
    plain_key = plain.stdout.strip().splitlines()[-1]
    secrets = [r["key"] for r in created] + [plain_key]

    listed = run_cli(["keys", "list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)
    assert {r["id"] for r in created} <= {r["id"] for r in records}
    assert len(records) == 3
    for record in records:
        assert "key" not in record
        assert set(record) >= {"id", "tenants", "scopes", "created_at", "revoked_at"}
    human = run_cli(["keys", "list"], env)
    assert human.returncode == 0
    for secret in secrets:
        assert secret not in listed.stdout + listed.stderr
        assert secret not in human.stdout + human.stderr
        secret_part = secret.split("_", 2)[2]  # jsk_<id>_<secret>: the secret may hold "_"
        assert secret_part not in listed.stdout + human.stdout


def test_keys_create_refuses_bad_input_cleanly(store_env: dict[str, str]) -> None:
    env = store_env
    _assert_clean_failure(
        run_cli(["keys", "create", "--tenant", "acme", "--scope", "bogus"], env), 2, "bogus"
    )
    _assert_clean_failure(
        run_cli(["keys", "create", "--tenant", "Not Valid", "--scope", "admin"], env),
        2,
        "Not Valid",
    )
    missing = run_cli(["keys", "create", "--tenant", "acme"], env)
    assert missing.returncode != 0 and "--scope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_keys_revoke_of_an_unknown_id_fails_cleanly(store_env: dict[str, str]) -> None:
    _assert_clean_failure(run_cli(["keys", "revoke", "no-such-id"], store_env), 3, "no-such-id")


# Server-side commands that open the store: none of them may create one (SPEC §6).
STORE_COMMANDS = [
    ["keys", "list"],
    ["keys", "create", "--tenant", "acme", "--scope", "admin"],
    ["keys", "revoke", "some-id"],
    ["gc"],
    ["fsck"],
    ["migrate-blobs", "--to-hot", "s3://bucket/prefix"],
]


def test_commands_without_a_store_create_none_and_say_where_they_looked(
    env: dict[str, str],
) -> None:
    data_dir = Path(env["JUSTSTORAGE_DATA_DIR"])
    database = str((data_dir / "meta.db").resolve())
    for args in STORE_COMMANDS:
        result = run_cli(args, env)
        _assert_clean_failure(
            result, 2, database, "--config", "JUSTSTORAGE_DATA_DIR", "DATABASE_URL"
        )
    signed = run_cli(
        ["token", "issue", "--sub", "s", "--tenant", "acme", "--scope", "admin"],
        {**env, "JWT_SECRET": "s" * 40},
    )
    assert signed.returncode == 0, signed.stderr  # signing needs no store
    assert not data_dir.exists(), sorted(data_dir.rglob("*"))


@pytest.mark.postgres
def test_commands_without_a_store_on_postgres_create_no_schema(
    env: dict[str, str], postgres_url: str
) -> None:
    env = {**env, "DATABASE_URL": postgres_url}
    name = urlsplit(postgres_url).path.lstrip("/")
    for args in (["keys", "list"], ["gc"]):
        _assert_clean_failure(run_cli(args, env), 2, f"PostgreSQL database {name}")
    assert query(postgres_url, "SELECT to_regclass('schema_migrations') IS NULL") == [(True,)]
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database_here"
    _assert_clean_failure(
        run_cli(["keys", "list"], {**env, "DATABASE_URL": missing}), 2, "no_such_database_here"
    )
    assert run_cli(["migrate"], env).returncode == 0
    listed = run_cli(["keys", "list"], env)
    assert listed.returncode == 0 and "no API keys" in listed.stdout, listed.stderr


def test_token_issue_without_a_signing_key_fails_cleanly(env: dict[str, str]) -> None:
    result = run_cli(["token", "issue", "--sub", "s", "--tenant", "acme", "--scope", "admin"], env)
    _assert_clean_failure(result, 2, "JWT_SECRET")
    assert result.stdout == ""


def test_token_issue_with_a_bad_private_key_fails_cleanly(
    env: dict[str, str], tmp_path: Path
) -> None:
    key_file = tmp_path / "not-a-key.pem"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    args = ["token", "issue", "--sub", "s", "--tenant", "acme", "--scope", "admin"]
    _assert_clean_failure(run_cli([*args, "--private-key", str(key_file)], env), 2, "private key")


def test_token_issue_with_a_secret_prints_only_the_token(env: dict[str, str]) -> None:
    env = {**env, "JWT_SECRET": "s" * 40}
    result = run_cli(
        ["token", "issue", "--sub", "s", "--tenant", "acme", "--scope", "admin", "--ttl", "60"], env
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+\n", result.stdout)


def test_token_issue_longer_than_the_maximum_lifetime_fails_cleanly(env: dict[str, str]) -> None:
    env = {**env, "JWT_SECRET": "s" * 40}
    capped = {**env, "JUSTSTORAGE_JWT_MAX_TTL_S": "600"}
    args = ["token", "issue", "--sub", "s", "--tenant", "acme", "--scope", "admin"]
    result = run_cli([*args, "--ttl", "601"], capped)
    _assert_clean_failure(result, 2, "--ttl 601", "JUSTSTORAGE_JWT_MAX_TTL_S")
    assert result.stdout == ""
    assert run_cli([*args, "--ttl", "600"], capped).returncode == 0
    # The default maximum is 24 h; the default --ttl (3600) is within it.
    assert run_cli([*args, "--ttl", "86401"], env).returncode == 2
    assert run_cli(args, env).returncode == 0


BAD_SETTINGS = [
    ("JUSTSTORAGE_PORT", "abc"),
    ("JUSTSTORAGE_MAX_OBJECT_BYTES", "-5"),
    ("JUSTSTORAGE_AUTH", "maybe"),
    ("JUSTSTORAGE_METRICS_ADDR", "no-port"),
    ("DATABASE_URL", "mysql://db/x"),
    ("API_KEYS", "no-colons-here"),
    ("JUSTSTORAGE_JWT_PUBLIC_KEY", "/nonexistent/key.pem"),
    ("JWT_SECRET", "short-jwt-secret"),  # HS256 needs 32 bytes (RFC 7518 §3.2)
    ("API_KEYS", "short-bootstrap-key:*:admin"),
    ("JUSTSTORAGE_JWT_MAX_TTL_S", "0"),
]


def _run_serve(env: dict[str, str]) -> CliResult:
    """`serve` must refuse bad settings before binding; if it serves instead, stop it."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**env, "JUSTSTORAGE_PORT": env.get("JUSTSTORAGE_PORT", str(port))},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=STOP_TIMEOUT_S)
        return CliResult(0, stdout, "still serving after 30 s\n" + stderr)
    return CliResult(proc.returncode, stdout, stderr)


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS, ids=[n for n, _ in BAD_SETTINGS])
def test_bad_setting_names_the_variable(env: dict[str, str], name: str, value: str) -> None:
    bad = {**env, name: value}
    for result in (run_cli(["keys", "list"], bad), _run_serve(bad)):
        _assert_clean_failure(result, 2, name)
        if name in ("JWT_SECRET", "API_KEYS"):
            assert "short-" not in result.stderr  # a secret is never echoed


def test_bad_config_file_fails_cleanly(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = [unclosed\n")
    _assert_clean_failure(run_cli(["--config", str(config), "migrate"], env), 2, str(config))
    typo = tmp_path / "typo.toml"
    typo.write_text("max_objekt_bytes = 5\n")
    _assert_clean_failure(run_cli(["--config", str(typo), "migrate"], env), 2, "max_objekt_bytes")
