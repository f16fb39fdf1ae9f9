"""Migrations are written once; each dialect's text is generated. A released
migration keeps its meaning: a database that applied it records only its number."""

from __future__ import annotations

import hashlib
import re

import pytest

from juststorage.adapters.metadata.migrations import Backend, migrations_for, render

# sha256 (first 16 hex digits) of each released migration's statements, comments and
# white space aside. A new migration adds its two lines; an old one never changes.
RELEASED = {
    ("postgres", 1, "initial"): "05a3f1ebe3300996",
    ("postgres", 2, "gc"): "5ec3c52c0efca2d1",
    ("postgres", 3, "usage_counters"): "f5771313a0306a09",
    ("postgres", 4, "blob_location"): "b023dd8ac55eaa76",
    ("postgres", 5, "census_counters"): "d049e7422b0b0e9b",
    ("postgres", 6, "shared_limits"): "92987728db443e77",
    ("postgres", 7, "inline_blobs"): "6e4b9cb688067f7d",
    ("postgres", 9, "objects_by_tenant_blob"): "7c84e4498802683a",
    ("postgres", 8, "upload_sessions"): "8ceda216e63e4e84",
    ("postgres", 10, "s3_attributes"): "8a8f5a2e8d339b87",
    ("postgres", 12, "scrub"): "873cea5397d415e2",
    ("postgres", 11, "backup_holds"): "fc76c40152f67777",
    ("sqlite", 1, "initial"): "b4506c0b1fa0c8f0",
    ("sqlite", 2, "gc"): "4d74c4bd209edf84",
    ("sqlite", 3, "usage_counters"): "f5771313a0306a09",
    ("sqlite", 4, "blob_location"): "b023dd8ac55eaa76",
    ("sqlite", 5, "census_counters"): "d049e7422b0b0e9b",
    ("sqlite", 6, "shared_limits"): "58052d11c0c2aee6",
    ("sqlite", 7, "inline_blobs"): "5985f456fa7b94c4",
    ("sqlite", 9, "objects_by_tenant_blob"): "7c84e4498802683a",
    ("sqlite", 8, "upload_sessions"): "a9f238d700680113",
    ("sqlite", 10, "s3_attributes"): "8a8f5a2e8d339b87",
    ("sqlite", 12, "scrub"): "a10a7d7bf84299cc",
    ("sqlite", 11, "backup_holds"): "7ec6f3df0dda08ab",
}
BACKENDS: list[Backend] = ["postgres", "sqlite"]


def _fingerprint(sql: str) -> str:
    text = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    statements = re.sub(r"\s+", " ", text).strip()
    return hashlib.sha256(statements.encode("utf-8")).hexdigest()[:16]


def test_released_migrations_keep_their_statements() -> None:
    found = {
        (backend, m.version, m.name): _fingerprint(m.sql)
        for backend in BACKENDS
        for m in migrations_for(backend)
    }
    assert {k: v for k, v in found.items() if k in RELEASED} == RELEASED
    assert set(RELEASED) <= set(found)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_are_numbered_from_one_without_gaps(backend: Backend) -> None:
    versions = [m.version for m in migrations_for(backend)]
    assert versions == list(range(1, len(versions) + 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nothing_of_the_template_is_left_in_a_dialect(backend: Backend) -> None:
    for migration in migrations_for(backend):
        assert "{" not in migration.sql, migration.name
        assert not re.search(r"^--(sqlite|postgres) ", migration.sql, re.MULTILINE)


def test_marked_lines_belong_to_one_dialect_and_types_are_filled_in() -> None:
    sql = "CREATE TABLE t (\n  at {timestamp}\n--postgres );\n--sqlite ) WITHOUT ROWID;\n"
    assert render(sql, "postgres") == "CREATE TABLE t (\n  at TIMESTAMPTZ\n);\n"
    assert render(sql, "sqlite") == "CREATE TABLE t (\n  at TEXT\n) WITHOUT ROWID;\n"


def test_an_unknown_type_is_an_error() -> None:
    with pytest.raises(KeyError):
        render("CREATE TABLE t (a {money})", "sqlite")
