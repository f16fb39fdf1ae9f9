"""The client config file: the default connection, named profiles, and the errors
for a typo'd key, an unknown profile or a named file that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from juststorage.cli.client_config import DEFAULT_URL, missing_credential_hint, resolve_connection
from juststorage.cli.errors import BadUsage


def _environ(config: Path, **extra: str) -> dict[str, str]:
    return {"JUSTSTORAGE_CLIENT_CONFIG": str(config), **extra}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    token_file = tmp_path / "ops.token"
    token_file.write_text("ops-token\n")
    path = tmp_path / "client.toml"
    path.write_text(
        'url = "http://default:1"\ntoken = "default-token"\n\n'
        '[profiles.ops]\nurl = "http://ops:2"\n'
        f'token_file = "{token_file}"\n\n'
        '[profiles.bare]\nurl = "http://bare:3"\n'
    )
    return path


def test_without_a_profile_flags_win_then_environment_then_the_top_level(config: Path) -> None:
    plain = resolve_connection(None, None, None, _environ(config))
    assert (plain.url, plain.token) == ("http://default:1", "default-token")
    assert plain.source == f"token in {config}"
    env = _environ(config, JUSTSTORAGE_URL="http://env:9", JUSTSTORAGE_TOKEN="env-token")
    from_env = resolve_connection(None, None, None, env)
    assert (from_env.url, from_env.token, from_env.source) == (
        "http://env:9",
        "env-token",
        "JUSTSTORAGE_TOKEN",
    )
    flags = resolve_connection("http://flag:8", "flag-token", None, env)
    assert (flags.url, flags.token, flags.source) == ("http://flag:8", "flag-token", "--token")


def test_a_profile_wins_over_the_environment_and_reads_its_token_file(config: Path) -> None:
    env = _environ(config, JUSTSTORAGE_URL="http://env:9", JUSTSTORAGE_TOKEN="env-token")
    ops = resolve_connection(None, None, "ops", env)
    assert (ops.url, ops.token, ops.profile) == ("http://ops:2", "ops-token", "ops")
    assert ops.source == "token_file in profile ops"
    by_env = resolve_connection(None, None, None, {**env, "JUSTSTORAGE_PROFILE": "ops"})
    assert by_env.url == "http://ops:2"
    bare = resolve_connection(None, None, "bare", env)
    assert (bare.url, bare.token) == ("http://bare:3", None)  # not the environment's token
    assert resolve_connection(None, "t", "bare", env).token == "t"


@pytest.mark.parametrize(
    ("text", "profile", "needle"),
    [
        ('tokn = "x"\n', None, "'tokn'"),
        ('[profiles.ops]\nurl = "http://x"\nurll = "y"\n', "ops", "'urll'"),
        ("url = 5\n", None, "url must be a non-empty string"),
        ("profiles = 3\n", None, "profiles"),
        ('url = "http://x"\n', "ops", "no profile 'ops'"),
        ("url = [unclosed\n", None, "cannot read"),
        ('token_file = "/nonexistent/token"\n', None, "/nonexistent/token"),
    ],
)
def test_mistakes_in_the_file_are_errors_naming_them(
    tmp_path: Path, text: str, profile: str | None, needle: str
) -> None:
    path = tmp_path / "client.toml"
    path.write_text(text)
    with pytest.raises(BadUsage) as raised:
        resolve_connection(None, None, profile, _environ(path))
    assert needle in raised.value.format_message() and raised.value.exit_code == 2


def test_a_named_file_must_exist_and_the_default_may_not(tmp_path: Path) -> None:
    with pytest.raises(BadUsage, match="JUSTSTORAGE_CLIENT_CONFIG"):
        resolve_connection(None, None, None, _environ(tmp_path / "missing.toml"))
    default = resolve_connection(None, None, None, {"XDG_CONFIG_HOME": str(tmp_path)})
    assert (default.url, default.token, default.source) == (DEFAULT_URL, None, None)
    hint = missing_credential_hint(default)
    assert "--token" in hint and "JUSTSTORAGE_TOKEN" in hint
    assert str(tmp_path / "juststorage" / "client.toml") in hint
