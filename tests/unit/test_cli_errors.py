"""The CLI's one table of exit statuses and the one place that maps errors onto it."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path

import click
import juststorage_client as js
import pytest
from click.testing import CliRunner

from juststorage.cli.errors import (
    EXIT_CODES,
    FAILURES,
    BadUsage,
    CommandFailed,
    failure_for,
    handle_errors,
)
from juststorage.cli.main import cli
from juststorage.config import SettingsError
from juststorage.deploy.options import DeployError
from juststorage.domain import errors as domain_errors


def _domain_codes() -> set[str]:
    pending: list[type[domain_errors.StorageError]] = [domain_errors.StorageError]
    codes = set()
    while pending:
        cls = pending.pop()
        codes.add(cls.code)
        pending += cls.__subclasses__()
    return codes


def _failure_of(call: Callable[[], object]) -> CommandFailed:
    with pytest.raises(CommandFailed) as caught, handle_errors():
        call()
    return caught.value


def _raise(exc: Exception) -> None:
    raise exc


def test_exit_statuses_are_one_table_from_1_to_15() -> None:
    assert [f.exit_code for f in FAILURES] == list(range(1, 16))
    assert CommandFailed.exit_code == 1
    assert BadUsage.exit_code == click.UsageError.exit_code == 2
    codes = [code for failure in FAILURES for code in failure.error_codes]
    assert len(codes) == len(set(codes))


def test_every_domain_error_code_has_its_own_exit_status() -> None:
    # The CLI sends only methods the server routes: MethodNotAllowed, if the domain
    # has it, keeps the status of any other failure.
    statuses = {code: failure_for(code, "").exit_code for code in _domain_codes()}
    assert statuses.pop("MethodNotAllowed", 1) == 1
    assert 1 not in statuses.values(), statuses
    assert len(set(statuses.values())) == len(statuses), statuses
    assert {c: s for c, s in EXIT_CODES.items() if c in statuses} == statuses


def test_the_sdk_errors_have_the_status_of_their_code() -> None:
    api_errors = [
        cls for cls in vars(js).values() if isinstance(cls, type) and issubclass(cls, js.ApiError)
    ]
    sdk_codes = {cls.code for cls in api_errors if cls is not js.ApiError}
    assert sdk_codes - _domain_codes() <= {"MethodNotAllowed"}
    assert set(EXIT_CODES) - _domain_codes() == {"IntegrityError", "TransportError"}
    for code in sdk_codes - {"MethodNotAllowed"}:
        assert EXIT_CODES[code] == failure_for(code, "").exit_code != 1, code


@pytest.mark.parametrize(
    ("error", "exit_code", "message"),
    [
        (domain_errors.NotFound("no such key"), 3, "NotFound: no such key"),
        (domain_errors.BadRequest("bad scope"), 2, "BadRequest: bad scope"),
        (domain_errors.Unavailable("db down"), 11, "Unavailable: db down"),
        (domain_errors.StorageError("boom"), 13, "Internal: boom"),
        (SettingsError("JUSTSTORAGE_PORT: not a number"), 2, "JUSTSTORAGE_PORT"),
        (DeployError("not overwriting"), 1, "not overwriting"),
        (js.NotFound("gone", status=404), 3, "NotFound [404]: gone"),
        (js.Forbidden("no", status=403), 5, "Forbidden [403]: no"),
        (js.MethodNotAllowed("no", status=405), 1, "MethodNotAllowed"),
        (js.IntegrityError("bad bytes", expected="a", actual="b"), 7, "IntegrityError: bad"),
        (js.TransportError("refused"), 14, "cannot reach the server: refused"),
        (OSError(errno.ENOENT, "No such file or directory", "out/x"), 1, "directory: out/x"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_errors_become_one_line_and_the_status_of_their_code(
    error: Exception, exit_code: int, message: str
) -> None:
    failure = _failure_of(lambda: _raise(error))
    assert failure.exit_code == exit_code
    assert message in failure.format_message()


def test_a_value_the_sdk_refuses_is_bad_usage_and_other_value_errors_are_bugs() -> None:
    with js.Client("http://127.0.0.1:9", None) as client:
        failure = _failure_of(lambda: client.head(tenant="acme"))
    assert failure.exit_code == 2 and "by id" in failure.format_message()
    with pytest.raises(ValueError, match="a bug"), handle_errors():
        raise ValueError("a bug")


def test_click_exceptions_and_bugs_pass_through() -> None:
    with pytest.raises(click.UsageError), handle_errors():
        raise click.UsageError("name the object")
    with pytest.raises(RuntimeError), handle_errors():
        raise RuntimeError("a bug keeps its traceback")


def _invoke(tmp_path: Path, *args: str, **env: str) -> click.testing.Result:
    environ = {"JUSTSTORAGE_DATA_DIR": str(tmp_path / "data"), **env}
    return CliRunner().invoke(cli, list(args), env=environ, prog_name="juststorage")


def test_every_command_of_the_group_runs_inside_the_one_handler(tmp_path: Path) -> None:
    assert _invoke(tmp_path, "migrate").exit_code == 0
    revoke = _invoke(tmp_path, "keys", "revoke", "no-such-id")  # a subcommand, two deep
    assert revoke.exit_code == 3, revoke.output
    assert revoke.stderr.startswith("Error: NotFound: ") and "no-such-id" in revoke.stderr
    scope = _invoke(tmp_path, "keys", "create", "--tenant", "acme", "--scope", "bogus")
    assert scope.exit_code == 2 and "Error: BadRequest: " in scope.stderr
    settings = _invoke(tmp_path, "gc", JUSTSTORAGE_PORT="abc")
    assert settings.exit_code == 2 and "JUSTSTORAGE_PORT" in settings.stderr
    for result in (revoke, scope, settings):
        assert result.exception is None or isinstance(result.exception, SystemExit)


def test_the_operator_sees_why_the_database_is_unavailable() -> None:
    """An HTTP answer keeps the driver's text out; the operator's terminal shows it."""

    def refused() -> None:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except OSError as exc:
            raise domain_errors.Unavailable("the database is unavailable: refused") from exc

    failure = _failure_of(refused)
    assert failure.exit_code == 11
    assert failure.format_message() == (
        "Unavailable: the database is unavailable: refused"
        " (ConnectionRefusedError: [Errno 111] Connection refused)"
    )
