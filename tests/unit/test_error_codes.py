"""The SPEC error codes are the classes of `domain.errors`; every other list of them
(the status table, the OpenAPI document, the CLI's exit codes, the SDKs) is derived
from those classes or checked here against them."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from juststorage.api.errors import STATUS_OF_CODE, STATUS_OF_ERROR
from juststorage.api.openapi import openapi_document
from juststorage.cli.errors import EXIT_CODES
from juststorage.domain import errors
from juststorage.domain.errors import ERROR_CODES, StorageError

ROOT = Path(__file__).resolve().parents[2]
SDKS = ROOT / "sdks"


def _domain_classes() -> list[type[StorageError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, StorageError) and cls.__module__ == errors.__name__
    ]


# The SPEC's error codes and statuses (§2 "Errors"), written out here so that a
# class added, renamed or remapped in the code shows up as a difference. 405 is
# the answer to a method a route does not have, 409 to a change a multipart session's
# state refuses (neither is in the SPEC's list).
SPEC_STATUSES = {
    "BadRequest": 400,
    "ChecksumMismatch": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "Conflict": 409,
    "PreconditionFailed": 412,
    "PayloadTooLarge": 413,
    "RangeNotSatisfiable": 416,
    "TooManyRequests": 429,
    "Internal": 500,
    "Unavailable": 503,
    "InsufficientStorage": 507,
}


def test_the_codes_and_statuses_are_the_specs() -> None:
    assert sorted(ERROR_CODES) == sorted(SPEC_STATUSES)
    assert STATUS_OF_CODE == SPEC_STATUSES


def test_each_code_is_one_class() -> None:
    classes = _domain_classes()
    assert sorted(cls.code for cls in classes) == sorted(ERROR_CODES)
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)
    assert StorageError.code == "Internal"


def test_every_error_class_has_exactly_one_status() -> None:
    assert set(STATUS_OF_ERROR) == set(_domain_classes())
    assert set(STATUS_OF_CODE) == set(ERROR_CODES)


def test_a_subclass_elsewhere_keeps_its_parents_code() -> None:
    class Refused(errors.TooManyRequests):
        pass

    assert Refused("no", 1).code == "TooManyRequests"


def test_the_openapi_document_names_every_code() -> None:
    schema = openapi_document()["components"]["schemas"]["Error"]
    assert set(schema["properties"]["error"]["properties"]["code"]["enum"]) == set(ERROR_CODES)


def test_the_cli_has_an_exit_code_for_every_code_it_can_meet() -> None:
    # The CLI sends only methods the server routes: MethodNotAllowed falls back to 1.
    assert set(ERROR_CODES) - set(EXIT_CODES) == {"MethodNotAllowed"}
    assert set(EXIT_CODES) - set(ERROR_CODES) == {"IntegrityError", "TransportError"}


def _python_sdk_statuses() -> dict[str, int]:
    source = (SDKS / "python/src/juststorage_client/_errors.py").read_text("utf-8")
    table = source[source.index("_CLASS_OF_STATUS") :]
    return {name: int(status) for status, name in re.findall(r"(\d{3}): (\w+),", table)}


def _go_sdk_statuses() -> dict[str, int]:
    source = (SDKS / "go/errors.go").read_text("utf-8")
    table = source[source.index("var classOfStatus") :]
    return {name: int(status) for status, name in re.findall(r'(\d{3}): "(\w+)"', table)}


def _typescript_sdk_statuses() -> dict[str, int]:
    source = (SDKS / "typescript/src/errors.ts").read_text("utf-8")
    table = source[source.index("CLASS_OF_STATUS") :]
    return {name: int(status) for status, name in re.findall(r"\[(\d{3}), (\w+)\]", table)}


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("python/src/juststorage_client/_errors.py", r'^    code = "(\w+)"'),
        ("go/errors.go", r'&codeError\{"(\w+)"\}'),
        ("typescript/src/errors.ts", r'CODE: string = "(\w+)"'),
    ],
)
def test_each_sdk_knows_every_code(path: str, pattern: str) -> None:
    source = (SDKS / path).read_text("utf-8")
    # "Unknown": the base class, for a code newer than the SDK.
    assert set(re.findall(pattern, source, re.MULTILINE)) - {"Unknown"} == set(ERROR_CODES)


@pytest.mark.parametrize(
    "statuses", [_python_sdk_statuses, _go_sdk_statuses, _typescript_sdk_statuses]
)
def test_each_sdk_maps_statuses_as_the_server_does(statuses: object) -> None:
    assert callable(statuses)
    found = statuses()
    assert found, "no status table found"
    # An SDK maps a status without a code to one class: the first of that status.
    assert found == {
        code: status
        for code, status in STATUS_OF_CODE.items()
        if code != "ChecksumMismatch"  # shares 400 with BadRequest
    }
