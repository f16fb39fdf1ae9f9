"""docs/api.md and /openapi.json describe the same API.

docs/api.md has one heading `### METHOD /path` per operation, then a line
`` `operationId` · tag `tag` · … `` and a table whose first column is `status`.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from juststorage.api.errors import STATUS_OF_CODE
from juststorage.api.openapi import openapi_document, openapi_json

API_MD = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_METHODS = ("get", "head", "post", "put", "patch", "delete")
_OPERATION_HEADING = re.compile(r"^### ([A-Z]+) (/\S*)$")
_OPERATION_LINE = re.compile(r"^`(\w+)` · tag `(\w+)`")


@dataclass(frozen=True)
class Operation:
    operation_id: str
    tag: str
    statuses: frozenset[str]


def _table_rows(lines: list[str], header_first_cell: str) -> list[list[str]]:
    """The rows of the first table whose header starts with that cell."""
    for start, line in enumerate(lines):
        cells = _cells(line)
        if cells and cells[0] == header_first_cell:
            rows = []
            for row in lines[start + 2 :]:  # past the header and the |---| line
                if not row.startswith("|"):
                    break
                rows.append(_cells(row))
            return rows
    return []


def _cells(line: str) -> list[str]:
    if not line.startswith("|"):
        return []
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _sections(text: str) -> dict[tuple[str, str], list[str]]:
    """The lines under each operation heading, up to the next heading."""
    sections: dict[tuple[str, str], list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if line.startswith("#") and not fenced:
            match = _OPERATION_HEADING.match(line)
            current = None
            if match:
                key = (match.group(1).lower(), match.group(2))
                assert key not in sections, f"{line} appears twice"
                current = sections[key] = []
            continue
        if current is not None:
            current.append(line)
    return sections


def documented_operations(text: str) -> dict[tuple[str, str], Operation]:
    operations = {}
    for key, lines in _sections(text).items():
        described = [m for m in map(_OPERATION_LINE.match, lines) if m]
        assert described, f"{key}: no `operationId` · tag `…` line"
        statuses = frozenset(row[0] for row in _table_rows(lines, "status"))
        assert statuses, f"{key}: no status table"
        operations[key] = Operation(described[0].group(1), described[0].group(2), statuses)
    return operations


def served_operations(document: dict[str, Any]) -> dict[tuple[str, str], Operation]:
    return {
        (method, path): Operation(
            item[method]["operationId"],
            item[method]["tags"][0],
            frozenset(item[method]["responses"]),
        )
        for path, item in document["paths"].items()
        for method in _METHODS
        if method in item
    }


@pytest.fixture(scope="module")
def served() -> dict[str, Any]:
    """The document exactly as `GET /openapi.json` sends it."""
    request = Request({"type": "http", "method": "GET", "path": "/openapi.json", "headers": []})
    response = asyncio.run(openapi_json(request))
    document: dict[str, Any] = json.loads(bytes(response.body))
    assert document == openapi_document()
    return document


def test_api_md_names_the_operations_and_statuses_of_openapi(served: dict[str, Any]) -> None:
    documented = documented_operations(API_MD.read_text(encoding="utf-8"))
    expected = served_operations(served)
    assert sorted(documented) == sorted(expected)
    for key, operation in expected.items():
        assert documented[key] == operation, key


def test_every_operation_has_a_unique_id_and_one_declared_tag(served: dict[str, Any]) -> None:
    operations = served_operations(served).values()
    ids = [operation.operation_id for operation in operations]
    assert len(ids) == len(set(ids))
    declared = {tag["name"] for tag in served["tags"]}
    for path_item in served["paths"].values():
        for method in _METHODS:
            if method in path_item:
                assert len(path_item[method]["tags"]) == 1
                assert path_item[method]["tags"][0] in declared
    assert {operation.tag for operation in operations} == declared


def test_api_md_error_table_is_the_servers() -> None:
    rows = _table_rows(API_MD.read_text(encoding="utf-8").splitlines(), "code")
    table = {row[0].strip("`"): int(row[1]) for row in rows}
    assert table == STATUS_OF_CODE


def test_the_parser_sees_a_missing_status() -> None:
    text = API_MD.read_text(encoding="utf-8")
    broken = text.replace("| 206 | | one range |\n", "", 1)
    assert documented_operations(broken) != documented_operations(text)
