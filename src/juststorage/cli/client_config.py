"""What the object commands share: the SDK, server URL and credential, state files.

The commands talk to a running server through the Python SDK (`juststorage-client`,
`sdks/python`, a dependency of this package), imported lazily: the server-side
commands never need it, and a missing SDK is one clear error instead of a failing
`juststorage --help`.

The client config file (TOML) holds a default connection at its top level and
named ones under `[profiles.NAME]`, like `aws --profile` and `mc alias`. A key
it does not know, a profile it does not have, or `JUSTSTORAGE_CLIENT_CONFIG`
naming a file that is not there is an error (exit 2), never silently ignored.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from juststorage.cli.errors import BadUsage, CommandFailed
from juststorage.cli.tls import tls_options

DEFAULT_URL = "http://127.0.0.1:8080"
# The keys of one connection, at the top level or in a profile.
CONNECTION_KEYS = frozenset({"url", "token", "token_file"})
_TOP_LEVEL_KEYS = CONNECTION_KEYS | {"profiles"}


def sdk() -> ModuleType:
    """The SDK module, imported on first use (its errors are mapped in `cli.errors`)."""
    try:
        import juststorage_client
    except ImportError:
        raise CommandFailed(
            "the object commands need the juststorage-client package, a dependency of"
            " juststorage: reinstall juststorage (pip install ./sdks/python .)"
        ) from None
    return juststorage_client


@dataclass(frozen=True)
class Connection:
    """Where the commands go and with what: `source` says where the token came from
    (`--token`, an environment variable, the file), or None when there is none."""

    url: str
    token: str | None
    profile: str | None = None
    config_path: Path | None = None
    source: str | None = None


def client_config_path(environ: Mapping[str, str]) -> Path:
    if environ.get("JUSTSTORAGE_CLIENT_CONFIG"):
        return Path(environ["JUSTSTORAGE_CLIENT_CONFIG"])
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "juststorage" / "client.toml"


def transfer_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where interrupted uploads keep their state: beside the client config."""
    return client_config_path(environ).parent / "transfers"


def read_client_config(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """The client config file's tables, checked: {} when the default file is absent.

    Raises:
        BadUsage: the file named by JUSTSTORAGE_CLIENT_CONFIG is missing, the file
            cannot be read or parsed, or it holds a key or value it should not.
    """
    path = client_config_path(environ)
    if not path.is_file():
        if environ.get("JUSTSTORAGE_CLIENT_CONFIG"):
            raise BadUsage(f"JUSTSTORAGE_CLIENT_CONFIG names {path}, which is not a file")
        return {}
    try:
        file = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadUsage(f"cannot read {path}: {exc}") from None
    _check_keys(file, _TOP_LEVEL_KEYS, f"{path}")
    profiles = file.get("profiles", {})
    if not isinstance(profiles, dict):
        raise BadUsage(f"{path}: `profiles` must be a table of [profiles.NAME] sections")
    for name, section in profiles.items():
        if not isinstance(section, dict):
            raise BadUsage(f"{path}: profiles.{name} must be a table")
        _check_keys(section, CONNECTION_KEYS, f"{path} [profiles.{name}]")
    return file


def _check_keys(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise BadUsage(
            f"{where}: unknown key {', '.join(repr(k) for k in unknown)}"
            f" (known: {', '.join(sorted(allowed))})"
        )
    for key in CONNECTION_KEYS & set(table):
        if not isinstance(table[key], str) or not table[key]:
            raise BadUsage(f"{where}: {key} must be a non-empty string")


def resolve_connection(
    url: str | None,
    token: str | None,
    profile: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> Connection:
    """Flags, then JUSTSTORAGE_URL / JUSTSTORAGE_TOKEN, then the client config file.

    A profile (`--profile`, else JUSTSTORAGE_PROFILE) comes from `[profiles.NAME]`
    and is chosen on purpose, so its url and token win over the two environment
    variables (flags still win over it); without one, the file's top level is the
    default connection.

    Raises:
        BadUsage: the URL holds a user name or password (`user:pw@host`): the
            credential goes in --token, and a URL is printed (whoami, errors).
    """
    path = client_config_path(environ)
    file = read_client_config(environ)
    profile = profile or environ.get("JUSTSTORAGE_PROFILE") or None
    if profile is not None:
        profiles: dict[str, Any] = file.get("profiles", {})
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise BadUsage(f"no profile {profile!r} in {path} (profiles: {known})")
        section: Mapping[str, Any] = profiles[profile]
        chosen = _pick(url, token, section, {}, path, f"profile {profile}")
    else:
        chosen = _pick(url, token, file, environ, path, str(path))
    _refuse_userinfo(chosen[0])
    return Connection(
        url=chosen[0], token=chosen[1], profile=profile, config_path=path, source=chosen[2]
    )


def _refuse_userinfo(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return  # not a URL at all: the transport says so when it is used
    if "@" not in parts.netloc:
        return
    host = parts.netloc.rpartition("@")[2]
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    raise BadUsage(
        f"the server URL holds a user name or password (shown without it: {shown}):"
        " give the credential with --token or JUSTSTORAGE_TOKEN, not in the URL"
    )


def _pick(
    url: str | None,
    token: str | None,
    section: Mapping[str, Any],
    environ: Mapping[str, str],
    path: Path,
    where: str,
) -> tuple[str, str | None, str | None]:
    chosen_url = url or environ.get("JUSTSTORAGE_URL") or section.get("url") or DEFAULT_URL
    if token:
        return chosen_url, token, "--token"
    if environ.get("JUSTSTORAGE_TOKEN"):
        return chosen_url, environ["JUSTSTORAGE_TOKEN"], "JUSTSTORAGE_TOKEN"
    if section.get("token"):
        return chosen_url, str(section["token"]), f"token in {where}"
    if section.get("token_file"):
        token_path = Path(str(section["token_file"])).expanduser()
        try:
            text = token_path.read_text("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadUsage(f"cannot read token_file {token_path} ({path}): {exc}") from None
        return chosen_url, text or None, f"token_file in {where}"
    return chosen_url, None, None


def missing_credential_hint(connection: Connection) -> str:
    """How to give a credential, for a server that asked for one and got none."""
    where = connection.config_path or "~/.config/juststorage/client.toml"
    return (
        "no credential was given: pass --token TOKEN, set JUSTSTORAGE_TOKEN, or put"
        f' token = "…" (or token_file) in {where}'
    )


_PROFILE_META = "juststorage.profile"


def _remember_profile(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    ctx.meta[_PROFILE_META] = value


def chosen_profile() -> str | None:
    """The running command's `--profile` (None without one, or outside a command)."""
    ctx = click.get_current_context(silent=True)
    return None if ctx is None else ctx.meta.get(_PROFILE_META)


def connection_options(command: Any) -> Any:
    """`--url`, `--token`, `--profile`, `--ca-cert` and `--insecure` on an object
    command (the profile is not a parameter of the command: `chosen_profile()` reads it)."""
    command = tls_options(command)
    command = click.option(
        "--profile",
        metavar="NAME",
        expose_value=False,
        callback=_remember_profile,
        help="Use [profiles.NAME] of the client config [env JUSTSTORAGE_PROFILE].",
    )(command)
    command = click.option(
        "--token",
        metavar="TOKEN",
        help="API key or JWT [env JUSTSTORAGE_TOKEN, or `token` in the client config].",
    )(command)
    return click.option(
        "--url",
        metavar="URL",
        help=f"Server URL [env JUSTSTORAGE_URL, or `url` in the client config; {DEFAULT_URL}].",
    )(command)


def json_option(command: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(command)
