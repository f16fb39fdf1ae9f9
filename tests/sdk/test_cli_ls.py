"""`juststorage ls` against a real server: folder-style as `aws s3 ls`, `--recursive`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import juststorage_client as js
import pytest

from juststorage.testing import CliResult, Server, clean_env, run_cli, start

pytestmark = pytest.mark.e2e

KEYS = ["a.txt", "docs/", "docs/x.txt", "docs/2025/q1", "docs/2025/q2", "docs.txt", "日本/文書"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start(tmp_path_factory.mktemp("cli-ls"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tenant(server: Server) -> str:
    tenant = f"t{uuid.uuid4().hex[:12]}"
    with js.Client(server.url, server.admin_key) as client:
        for key in KEYS:
            client.upload(key.encode(), tenant=tenant, namespace="files", key=key)
    return tenant


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


def _names(stdout: str) -> list[str]:
    """The last column of each line: a key, or a folder after `PRE`."""
    return [line.split("  ")[-1] for line in stdout.splitlines()]


def test_ls_is_folder_style_at_the_top_and_below_a_prefix(env: dict[str, str], tenant: str) -> None:
    top = _ok(run_cli(["ls", f"{tenant}/files"], env))
    assert _names(top) == ["a.txt", "docs.txt", "docs/", "日本/"]
    lines = top.splitlines()
    pre = lines[2]
    assert pre.lstrip().startswith("PRE  docs/") and pre.startswith(" ")
    # The folder names line up with the keys (as `aws s3 ls` aligns them).
    assert pre.index("docs/") == lines[0].index("a.txt")
    assert _names(_ok(run_cli(["ls", f"{tenant}/files/"], env))) == _names(top)
    below = _ok(run_cli(["ls", f"{tenant}/files/docs/"], env))
    assert _names(below) == ["docs/", "docs/2025/", "docs/x.txt"]
    # A prefix not ending in `/` rolls up what follows it, as `aws s3 ls s3://b/docs`.
    assert _names(_ok(run_cli(["ls", f"{tenant}/files/docs"], env))) == ["docs.txt", "docs/"]


def test_ls_recursive_lists_every_key(env: dict[str, str], tenant: str) -> None:
    every = _names(_ok(run_cli(["ls", f"{tenant}/files", "--recursive"], env)))
    assert every == sorted(KEYS, key=lambda k: k.encode("utf-8"))
    assert _names(_ok(run_cli(["ls", f"{tenant}/files/docs/", "-r"], env))) == [
        "docs/",
        "docs/2025/q1",
        "docs/2025/q2",
        "docs/x.txt",
    ]


def test_ls_json_has_one_object_a_line_and_folders_as_prefix(
    env: dict[str, str], tenant: str
) -> None:
    lines = _ok(run_cli(["ls", f"{tenant}/files/docs/", "--json"], env)).splitlines()
    rows = [json.loads(line) for line in lines]
    assert rows[1] == {"prefix": "docs/2025/"}
    assert [r.get("key") for r in rows] == ["docs/", None, "docs/x.txt"]
    assert rows[0]["tenant_id"] == tenant and rows[0]["size_bytes"] == len(b"docs/")


def test_ls_limit_counts_folders_and_objects(env: dict[str, str], tenant: str) -> None:
    assert _names(_ok(run_cli(["ls", f"{tenant}/files", "--limit", "3"], env))) == [
        "a.txt",
        "docs.txt",
        "docs/",
    ]
