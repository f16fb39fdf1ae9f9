"""The CLI on files and trees against a real server: names like `cp`, `cp -r`,
`put -r`/`get -r`, `sync` both ways, `rm --prefix`, profiles, `whoami`, and the
messages a user sees when something is wrong."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from juststorage_client import Client

from e2e.prometheus_text import parse_samples, value
from juststorage.testing import BIN, CliResult, Server, clean_env, run_cli, start

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Small parts allowed, so a tree's "large" file can be a few hundred KB.
    server = start(
        tmp_path_factory.mktemp("cli-trees"), {"JUSTSTORAGE_UPLOAD_PART_MIN_BYTES": "65536"}
    )
    yield server
    server.stop()


@pytest.fixture
def env(server: Server, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "xdg" / "juststorage" / "client.toml"
    config.parent.mkdir(parents=True)
    config.touch()
    return clean_env(
        tmp_path / "unused-data",
        {
            "JUSTSTORAGE_URL": server.url,
            "JUSTSTORAGE_TOKEN": server.admin_key,
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        },
    )


def _ok(result: CliResult) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _fails(result: CliResult, exit_code: int, *needles: str) -> None:
    assert result.returncode == exit_code, result
    assert "Traceback" not in result.stderr + result.stdout
    error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1, result.stderr
    for needle in needles:
        assert needle in error[0], result.stderr


def _run_with_input(
    args: list[str], env: dict[str, str], answer: str, cwd: Path | None = None
) -> CliResult:
    proc = subprocess.run(
        [str(BIN), *args],
        env=env,
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def _keys(env: dict[str, str], name: str) -> dict[str, dict[str, object]]:
    lines = _ok(run_cli(["ls", name, "--recursive", "--json"], env)).splitlines()
    return {record["key"]: record for record in map(json.loads, lines)}


def _uploaded_bytes(server: Server) -> float:
    samples = parse_samples(server.client.get("/metrics").text)
    return value(samples, "just_storage_uploaded_bytes_total")


def _requests(server: Server, method: str, status: str) -> float:
    samples = parse_samples(server.client.get("/metrics").text)
    return value(samples, "just_storage_requests_total", method=method, status=status)


def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "empty.bin": b"",
        "docs/guide.json": b'{"guide": true}',
        "docs/deep/er/notes.md": b"# notes\n",
        "café/naïve.txt": b"unicode names\n",
        "big/weights.bin": os.urandom(300_000),
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def _tree_of(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_put_and_get_name_files_the_way_cp_does(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "report.txt"
    source.write_bytes(b"numbers\n")
    into_folder = json.loads(_ok(run_cli(["put", str(source), "acme/names/q1/", "--json"], env)))
    assert into_folder["key"] == "q1/report.txt"
    assert into_folder["content_type"] == "text/plain"  # guessed from the name
    into_namespace = json.loads(_ok(run_cli(["put", str(source), "acme/names", "--json"], env)))
    assert into_namespace["key"] == "report.txt"
    typed = run_cli(["put", str(source), "acme/names/raw", "--content-type", "x/y", "--json"], env)
    assert json.loads(_ok(typed))["content_type"] == "x/y"

    new_folder = tmp_path / "out" / "new"
    _ok(run_cli(["get", "acme/names/q1/report.txt", f"{new_folder}/"], env))
    assert (new_folder / "report.txt").read_bytes() == b"numbers\n"
    existing = tmp_path / "existing"
    existing.mkdir()
    _ok(run_cli(["get", "acme/names/q1/report.txt", str(existing)], env))
    assert (existing / "report.txt").read_bytes() == b"numbers\n"
    assert sorted(p.name for p in existing.iterdir()) == ["report.txt"]  # no .part left

    here = tmp_path / "here"
    here.mkdir()
    _ok(_run_with_input(["get", "acme/names/q1/report.txt", "."], env, "", cwd=here))
    there = tmp_path / "there"
    there.mkdir()
    _ok(_run_with_input(["get", "acme/names/report.txt"], env, "", cwd=there))
    for folder in (here, there):
        assert sorted(p.name for p in folder.iterdir()) == ["report.txt"]
        assert (folder / "report.txt").read_bytes() == b"numbers\n"

    _fails(run_cli(["get", "acme/names/q1/", str(existing)], env), 2, "no file name")
    _fails(run_cli(["put", str(existing), "acme/names/x"], env), 2, "is a directory", "-r")
    stdin = _run_with_input(["put", "-", "acme/names/"], env, "data")
    assert stdin.returncode == 2 and "KEY" in stdin.stderr and "Traceback" not in stdin.stderr


def test_cp_r_copies_a_tree_up_and_down(env: dict[str, str], tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "site")
    up = run_cli(["cp", "-r", str(tmp_path / "site"), "js://acme/trees/v1", "--parallel", "3"], env)
    _ok(up)
    assert "6 uploaded" in up.stderr
    stored = _keys(env, "acme/trees/v1/")
    assert sorted(stored) == sorted(f"v1/{relative}" for relative in files)
    assert stored["v1/docs/guide.json"]["content_type"] == "application/json"
    for relative, data in files.items():
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert stored[f"v1/{relative}"]["content_hash"] == digest

    _ok(run_cli(["cp", "-r", "js://acme/trees/v1/", str(tmp_path / "copy")], env))
    assert _tree_of(tmp_path / "copy") == files

    # put -r and get -r are the same copies.
    put = run_cli(["put", "-r", str(tmp_path / "site" / "docs"), "acme/trees/v2", "--json"], env)
    records = sorted((json.loads(line) for line in _ok(put).splitlines()), key=str)
    assert [(r["action"], r["destination"]) for r in records] == [
        ("upload", "js://acme/trees/v2/deep/er/notes.md"),
        ("upload", "js://acme/trees/v2/guide.json"),
    ]
    assert records[1]["source"] == str(tmp_path / "site" / "docs" / "guide.json")
    assert records[1]["object"]["key"] == "v2/guide.json"
    assert sorted(_keys(env, "acme/trees/v2/")) == ["v2/deep/er/notes.md", "v2/guide.json"]
    _ok(run_cli(["get", "-r", "acme/trees/v2", str(tmp_path / "docs-copy")], env))
    assert _tree_of(tmp_path / "docs-copy") == _tree_of(tmp_path / "site" / "docs")


def test_large_files_in_a_tree_keep_the_multipart_and_ranged_paths(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    files = _make_tree(tmp_path / "tree")  # big/weights.bin: 300,000 bytes, 5 parts of 64 KiB
    large = ["--multipart-threshold", "100KiB", "--part-size", "64KiB"]
    parts_before = _requests(server, "PUT", "200")
    _ok(run_cli(["cp", "-r", str(tmp_path / "tree"), "js://acme/large/t", *large], env))
    assert _requests(server, "PUT", "200") - parts_before == 5
    ranges_before = _requests(server, "GET", "206")
    _ok(run_cli(["sync", "js://acme/large/t", str(tmp_path / "back"), *large], env))
    assert _requests(server, "GET", "206") - ranges_before == 5
    assert _tree_of(tmp_path / "back") == files
    assert not list((tmp_path / "back").rglob("*.part*"))


@pytest.mark.parametrize("ranged", [False, True], ids=["whole", "ranged"])
def test_keys_named_like_a_temporary_file_each_get_their_own_bytes(
    env: dict[str, str], tmp_path: Path, ranged: bool
) -> None:
    """`m`, `m.part` and `m.part.state` downloaded in parallel: no download uses a
    name another key (or the user) owns, so every run gives each key its bytes."""
    names = ("m", "m.part", "m.part.state")
    datas = {name: os.urandom(2_000_000 + i) for i, name in enumerate(names)}
    for name, data in datas.items():
        (tmp_path / "src").mkdir(exist_ok=True)
        (tmp_path / "src" / name).write_bytes(data)
    folder = f"js://acme/race-{int(ranged)}/r"
    _ok(run_cli(["cp", "-r", str(tmp_path / "src"), folder], env))
    sizes = ["--multipart-threshold", "512KiB", "--part-size", "256KiB"] if ranged else []
    for run in range(5):
        dest = tmp_path / f"d{run}"
        _ok(run_cli(["cp", "-r", folder, str(dest), "--parallel", "3", *sizes], env))
        assert _tree_of(dest) == datas, run
        assert sorted(p.name for p in dest.iterdir()) == sorted(names)


def test_a_temporary_download_file_is_not_a_local_file_to_sync(
    env: dict[str, str], tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "video.mp4.part").write_bytes(b"the user's own")
    leftover = dest / ".big.bin.0123456789abcdef.juststorage-part"
    leftover.write_bytes(b"half of an interrupted download")
    (tmp_path / "one.txt").write_bytes(b"one")
    _ok(run_cli(["put", str(tmp_path / "one.txt"), "acme/temps/t/video.mp4"], env))
    _ok(run_cli(["cp", "-r", "js://acme/temps/t", str(dest)], env))
    assert (dest / "video.mp4").read_bytes() == b"one"
    assert (dest / "video.mp4.part").read_bytes() == b"the user's own"
    up = run_cli(["sync", str(dest), "js://acme/temps/up"], env)
    _ok(up)
    assert sorted(_keys(env, "acme/temps")) == [
        "t/video.mp4",
        "up/video.mp4",
        "up/video.mp4.part",
    ]
    mirrored = run_cli(["sync", "js://acme/temps/t", str(dest), "--delete"], env)
    _ok(mirrored)
    assert sorted(p.name for p in dest.iterdir()) == [leftover.name, "video.mp4"]


def test_cp_of_one_file_either_way(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "one.csv"
    source.write_bytes(b"a,b\n")
    _ok(run_cli(["cp", str(source), "js://acme/single/in/"], env))
    assert _keys(env, "acme/single")["in/one.csv"]["content_type"] == "text/csv"
    _ok(run_cli(["cp", "js://acme/single/in/one.csv", str(tmp_path / "back") + "/"], env))
    assert (tmp_path / "back" / "one.csv").read_bytes() == b"a,b\n"
    both_local = run_cli(["cp", str(source), str(tmp_path / "x")], env)
    assert both_local.returncode == 2 and "js://" in both_local.stderr


def test_sync_up_transfers_only_what_differs(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "models"
    _make_tree(root)
    first = run_cli(["sync", str(root), "js://acme/sync-up/m"], env)
    _ok(first)
    assert "6 uploaded, 0 unchanged" in first.stderr
    ids = {key: record["id"] for key, record in _keys(env, "acme/sync-up").items()}

    before = _uploaded_bytes(server)
    second = run_cli(["sync", str(root), "js://acme/sync-up/m"], env)
    assert _ok(second) == ""
    assert "0 uploaded, 6 unchanged" in second.stderr
    assert _uploaded_bytes(server) == before
    assert {key: r["id"] for key, r in _keys(env, "acme/sync-up").items()} == ids

    (root / "a.txt").write_bytes(b"alpha, changed\n")
    (root / "docs" / "deep" / "er" / "notes.md").write_bytes(b"# NOTES\n")  # same size
    (root / "docs" / "guide.json").unlink()
    dry = run_cli(["sync", str(root), "js://acme/sync-up/m", "--delete", "--dry-run"], env)
    assert sorted(_ok(dry).splitlines()) == [
        "(dry run) delete: js://acme/sync-up/m/docs/guide.json",
        f"(dry run) upload: {root / 'a.txt'} -> js://acme/sync-up/m/a.txt",
        f"(dry run) upload: {root / 'docs/deep/er/notes.md'}"
        " -> js://acme/sync-up/m/docs/deep/er/notes.md",
    ]
    assert {key: r["id"] for key, r in _keys(env, "acme/sync-up").items()} == ids

    mirrored = run_cli(["sync", str(root), "js://acme/sync-up/m", "--delete"], env)
    _ok(mirrored)
    assert "2 uploaded, 3 unchanged, 1 deleted" in mirrored.stderr
    after = _keys(env, "acme/sync-up")
    assert "m/docs/guide.json" not in after and len(after) == 5
    assert after["m/a.txt"]["id"] != ids["m/a.txt"]
    notes = hashlib.sha256(b"# NOTES\n").hexdigest()
    assert after["m/docs/deep/er/notes.md"]["content_hash"] == f"sha256:{notes}"
    assert after["m/big/weights.bin"]["id"] == ids["m/big/weights.bin"]


def test_sync_down_transfers_only_what_differs(env: dict[str, str], tmp_path: Path) -> None:
    files = _make_tree(tmp_path / "source")
    _ok(run_cli(["cp", "-r", str(tmp_path / "source"), "js://acme/sync-down/s"], env))
    dest = tmp_path / "mirror"
    _ok(run_cli(["sync", "js://acme/sync-down/s", str(dest)], env))
    assert _tree_of(dest) == files
    stamps = {path: path.stat().st_mtime_ns for path in dest.rglob("*") if path.is_file()}

    again = run_cli(["sync", "js://acme/sync-down/s", str(dest)], env)
    assert _ok(again) == "" and "0 downloaded, 6 unchanged" in again.stderr
    assert {path: path.stat().st_mtime_ns for path in stamps} == stamps

    changed = tmp_path / "changed.txt"
    changed.write_bytes(b"ALPHA\n")  # the same size as before: only the hash tells
    _ok(run_cli(["put", str(changed), "acme/sync-down/s/a.txt"], env))
    (dest / "stray.txt").write_bytes(b"not in the store")
    dry = run_cli(["sync", "js://acme/sync-down/s", str(dest), "--delete", "--dry-run"], env)
    assert sorted(_ok(dry).splitlines()) == [
        f"(dry run) delete: {dest / 'stray.txt'}",
        f"(dry run) download: js://acme/sync-down/s/a.txt -> {dest / 'a.txt'}",
    ]
    assert (dest / "a.txt").read_bytes() == files["a.txt"] and (dest / "stray.txt").exists()

    mirrored = run_cli(["sync", "js://acme/sync-down/s", str(dest), "--delete"], env)
    _ok(mirrored)
    assert "1 downloaded, 5 unchanged, 1 deleted" in mirrored.stderr
    assert _tree_of(dest) == {**files, "a.txt": b"ALPHA\n"}


def test_get_r_never_writes_outside_the_destination(env: dict[str, str], tmp_path: Path) -> None:
    small = tmp_path / "payload.txt"
    small.write_bytes(b"payload")
    hostile = [
        "evil/../escaped.txt",
        "evil/../../escaped-twice.txt",
        "evil//tmp/absolute.txt",
        "evil/./dot.txt",
        "evil/link/through.txt",
    ]
    for key in [*hostile, "evil/fine/ok.txt"]:
        _ok(run_cli(["put", str(small), f"acme/hostile/{key}"], env))
    work = tmp_path / "work"
    dest = work / "dest"
    dest.mkdir(parents=True)
    (dest / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()

    result = run_cli(["get", "-r", "acme/hostile/evil", str(dest)], env)
    _fails(result, 1, "5 key(s) refused", "outside")
    for key in hostile:
        assert f"refused: js://acme/hostile/{key}: " in result.stderr, key
    assert (dest / "fine" / "ok.txt").read_bytes() == b"payload"
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert [p for p in written if not p.startswith("xdg/")] == [
        "payload.txt",
        "work/dest/fine/ok.txt",
    ], written
    assert not Path("/tmp/absolute.txt").exists() or Path("/tmp/absolute.txt").read_bytes() != (
        b"payload"
    )
    sync = run_cli(["sync", "js://acme/hostile/evil", str(dest)], env)
    _fails(sync, 1, "refused")
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == []


def test_sync_delete_refuses_a_source_that_holds_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    down = tmp_path / "down"
    down.mkdir()
    (down / "mine.txt").write_bytes(b"precious")
    typo = run_cli(["sync", "js://acme/empty-src/nonexistent", str(down), "--delete"], env)
    _fails(typo, 2, "holds nothing", "refusing to delete everything", "--allow-empty-source")
    (tmp_path / "a.txt").write_bytes(b"a")
    _ok(run_cli(["put", str(tmp_path / "a.txt"), "acme/empty-src/p/a.txt"], env))
    an_object = run_cli(["sync", "js://acme/empty-src/p/a.txt", str(down), "--delete"], env)
    _fails(an_object, 2, "is an object, not a folder")
    dry = run_cli(["sync", "js://acme/empty-src/gone", str(down), "--delete", "--dry-run"], env)
    _fails(dry, 2, "holds nothing")
    assert (down / "mine.txt").read_bytes() == b"precious"

    _ok(run_cli(["put", str(tmp_path / "a.txt"), "acme/empty-src/up/keep.txt"], env))
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(run_cli(["sync", str(empty), "js://acme/empty-src/up", "--delete"], env), 2, "no files")
    missing = run_cli(["sync", str(tmp_path / "nope"), "js://acme/empty-src/up", "--delete"], env)
    _fails(missing, 2, "not a directory")
    assert "up/keep.txt" in _keys(env, "acme/empty-src")

    forced = ["--delete", "--allow-empty-source"]
    _ok(run_cli(["sync", str(empty), "js://acme/empty-src/up", *forced], env))
    assert "up/keep.txt" not in _keys(env, "acme/empty-src")
    _ok(run_cli(["sync", "js://acme/empty-src/nonexistent", str(down), *forced], env))
    assert list(down.iterdir()) == []


def _put_bytes(server: Server, key: str, data: bytes) -> None:
    with Client(server.url, server.admin_key) as client:
        client.upload(data, tenant="acme", namespace="markers", key=key)


def test_folder_markers_become_directories(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    _put_bytes(server, "photos/", b"")
    _put_bytes(server, "photos/2024/", b"")
    _put_bytes(server, "photos/2025/raw/", b"")
    _put_bytes(server, "photos/a.jpg", b"jpeg")
    dest = tmp_path / "fm"
    _ok(run_cli(["cp", "-r", "js://acme/markers/photos", str(dest)], env))
    assert _tree_of(dest) == {"a.jpg": b"jpeg"}
    assert (dest / "2024").is_dir() and (dest / "2025" / "raw").is_dir()
    (dest / "stray.txt").write_bytes(b"stray")
    synced = run_cli(["sync", "js://acme/markers/photos", str(dest), "--delete"], env)
    _ok(synced)
    assert "0 downloaded, 1 unchanged, 1 deleted" in synced.stderr
    assert _tree_of(dest) == {"a.jpg": b"jpeg"}
    up = run_cli(["sync", str(dest), "js://acme/markers/photos", "--delete"], env)
    _ok(up)
    assert sorted(_keys(env, "acme/markers")) == [
        "photos/",
        "photos/2024/",
        "photos/2025/raw/",
        "photos/a.jpg",
    ]
    _put_bytes(server, "blocked/in/", b"")
    _put_bytes(server, "blocked/ok.txt", b"ok")
    other = tmp_path / "other"
    other.mkdir()
    (other / "in").write_bytes(b"a file where the folder would go")
    (other / "local-only.txt").write_bytes(b"keep me")
    blocked = run_cli(["sync", "js://acme/markers/blocked", str(other), "--delete"], env)
    _fails(blocked, 1, "1 key(s) refused")
    assert "cannot create the directory" in blocked.stderr
    assert (other / "local-only.txt").read_bytes() == b"keep me"


def test_sync_delete_does_not_run_when_a_key_was_refused(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    with Client(server.url, server.admin_key) as client:
        for key in ("r/../escaped.txt", "r/ok.txt"):
            client.upload(b"x", tenant="acme", namespace="refused", key=key)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "local-only.txt").write_bytes(b"keep me")
    result = run_cli(["sync", "js://acme/refused/r", str(dest), "--delete"], env)
    _fails(result, 1, "1 key(s) refused")
    assert "not deleting" in result.stderr
    assert (dest / "local-only.txt").read_bytes() == b"keep me"
    assert (dest / "ok.txt").read_bytes() == b"x"


def test_sync_delete_runs_only_once_every_transfer_succeeded(
    env: dict[str, str], tmp_path: Path
) -> None:
    up = tmp_path / "up"
    up.mkdir()
    (up / "fine.txt").write_bytes(b"fine")
    (up / "bad\nname.txt").write_bytes(b"a newline in its name")
    (tmp_path / "x").write_bytes(b"x")
    _ok(run_cli(["put", str(tmp_path / "x"), "acme/all-or-none/t/remote-only"], env))
    uploading = run_cli(["sync", str(up), "js://acme/all-or-none/t", "--delete"], env)
    assert uploading.returncode == 2, uploading
    assert "t/remote-only" in _keys(env, "acme/all-or-none")

    _ok(run_cli(["put", str(tmp_path / "x"), "acme/all-or-none/d/blocked/x.txt"], env))
    _ok(run_cli(["put", str(tmp_path / "x"), "acme/all-or-none/d/ok.txt"], env))
    down = tmp_path / "down"
    down.mkdir()
    (down / "blocked").write_bytes(b"a file where the folder would go")
    (down / "local-only.txt").write_bytes(b"keep me")
    downloading = run_cli(["sync", "js://acme/all-or-none/d", str(down), "--delete"], env)
    assert downloading.returncode != 0 and "Traceback" not in downloading.stderr
    assert (down / "local-only.txt").read_bytes() == b"keep me"
    assert (down / "ok.txt").read_bytes() == b"x"


def test_rm_prefix_asks_before_deleting(env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_bytes(b"x")
    for key in ("logs/1", "logs/2", "logs/3", "logsbook", "keep/1"):
        _ok(run_cli(["put", str(source), f"acme/rm/{key}"], env))
    everything = sorted(_keys(env, "acme/rm"))

    dry = run_cli(["rm", "--prefix", "acme/rm/logs/", "--dry-run"], env)
    assert _ok(dry).splitlines() == [f"(dry run) delete: js://acme/rm/logs/{n}" for n in "123"]
    declined = _run_with_input(["rm", "--prefix", "acme/rm/logs/"], env, "n\n")
    _fails(declined, 1, "nothing was deleted")
    assert "Delete these 3 key(s)" in declined.stderr
    no_answer = run_cli(["rm", "--prefix", "acme/rm/logs/"], env)  # stdin is /dev/null
    _fails(no_answer, 1, "nothing was deleted")
    assert sorted(_keys(env, "acme/rm")) == everything

    accepted = _run_with_input(["rm", "--prefix", "acme/rm/logs/"], env, "y\n")
    _ok(accepted)
    assert sorted(_keys(env, "acme/rm")) == ["keep/1", "logsbook"]
    _ok(run_cli(["rm", "--prefix", "acme/rm/logs", "--yes"], env))  # literal: logsbook too
    assert sorted(_keys(env, "acme/rm")) == ["keep/1"]
    mixed = run_cli(["rm", "acme/rm/keep/1", "--yes"], env)
    assert mixed.returncode == 2 and "--prefix" in mixed.stderr


def test_profiles_choose_the_server_and_credential(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "client.toml"
    config.write_text(
        f'url = "{server.url}"\ntoken = "not-a-valid-key"\n\n'
        f'[profiles.ops]\nurl = "{server.url}"\ntoken = "{server.admin_key}"\n'
    )
    base = {k: v for k, v in env.items() if k not in ("JUSTSTORAGE_URL", "JUSTSTORAGE_TOKEN")}
    base["JUSTSTORAGE_CLIENT_CONFIG"] = str(config)
    _fails(run_cli(["usage", "acme"], base), 4, "Unauthorized")  # the top level
    assert _ok(run_cli(["usage", "acme", "--profile", "ops"], base))
    shown = json.loads(_ok(run_cli(["whoami", "--json", "--profile", "ops"], base)))
    assert (shown["profile"], shown["credential_from"]) == ("ops", "token in profile ops")
    assert shown["tenants"] == ["*"]
    assert _ok(run_cli(["usage", "acme"], {**base, "JUSTSTORAGE_PROFILE": "ops"}))
    # A profile is chosen on purpose: it wins over JUSTSTORAGE_TOKEN; --token wins over it.
    assert _ok(run_cli(["usage", "acme", "--profile", "ops"], {**base, "JUSTSTORAGE_TOKEN": "x"}))
    _fails(run_cli(["usage", "acme", "--profile", "ops", "--token", "x"], base), 4)
    _fails(run_cli(["usage", "acme", "--profile", "prod"], base), 2, "'prod'", "ops")

    config.write_text(f'url = "{server.url}"\ntokn = "{server.admin_key}"\n')
    _fails(run_cli(["usage", "acme"], base), 2, "'tokn'", str(config))
    config.write_text(f'[profiles.ops]\nurl = "{server.url}"\ntoken_fiel = "x"\n')
    _fails(run_cli(["usage", "acme", "--profile", "ops"], base), 2, "'token_fiel'", "ops")
    missing = {**base, "JUSTSTORAGE_CLIENT_CONFIG": str(tmp_path / "nope.toml")}
    _fails(run_cli(["usage", "acme"], missing), 2, "JUSTSTORAGE_CLIENT_CONFIG", "nope.toml")


def test_whoami_shows_the_tenants_and_scopes_of_the_credential(
    server: Server, env: dict[str, str]
) -> None:
    admin = json.loads(_ok(run_cli(["whoami", "--json"], env)))
    assert (admin["tenants"], admin["scopes"]) == (["*"], ["admin"])
    assert admin["url"] == server.url and admin["credential_from"] == "JUSTSTORAGE_TOKEN"

    acme = server.create_key(["acme"], ["objects:read", "objects:write"])
    beta = server.create_key(["beta"], ["usage:read"])
    shown = json.loads(_ok(run_cli(["whoami", "--json", "--token", acme["key"]], env)))
    assert shown["tenants"] == ["acme"] and shown["scopes"] == ["objects:read", "objects:write"]
    assert shown["subject"] == f"key:{acme['id']}" and shown["credential_from"] == "--token"
    human = _ok(run_cli(["whoami", "--token", beta["key"]], env))
    assert "tenants:  beta" in human and "usage:read" in human and "acme" not in human


def test_a_url_with_a_password_is_refused_and_never_printed(
    server: Server, env: dict[str, str], tmp_path: Path
) -> None:
    secret_url = server.url.replace("://", "://user:s3cretpw@")
    flag = run_cli(["whoami", "--url", secret_url], env)
    _fails(flag, 2, "user name or password", "--token")
    variable = run_cli(["whoami"], {**env, "JUSTSTORAGE_URL": secret_url})
    _fails(variable, 2, "user name or password")
    config = tmp_path / "xdg" / "juststorage" / "client.toml"
    config.write_text(f'[profiles.p]\nurl = "{secret_url}"\ntoken = "x"\n')
    profile = run_cli(["ls", "acme/any", "--profile", "p"], env)
    _fails(profile, 2, "user name or password")
    for result in (flag, variable, profile):
        assert "s3cretpw" not in result.stdout + result.stderr


def test_a_missing_credential_says_how_to_give_one(env: dict[str, str]) -> None:
    without = {k: v for k, v in env.items() if k != "JUSTSTORAGE_TOKEN"}
    result = run_cli(["usage", "acme"], without)
    _fails(result, 4, "Unauthorized", "--token", "JUSTSTORAGE_TOKEN", "client.toml")


def test_a_tree_upload_shows_one_combined_progress_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    root = tmp_path / "many"
    for n in range(12):
        (root / f"d{n % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{n % 3}" / f"f{n}.bin").write_bytes(os.urandom(20_000))
    result = run_cli(["cp", "-r", str(root), "js://acme/progress/p", "--progress"], env)
    _ok(result)
    progress = [line for line in result.stderr.splitlines() if line.startswith("upload: ")]
    assert progress and all("/12 files" in line or "12 files" in line for line in progress)
    assert "12 files, 234.4 KiB in" in progress[-1] and "MiB/s" in progress[-1]
    stdin = _run_with_input(["put", "-", "acme/progress/stdin", "--progress"], env, "x" * 5000)
    _ok(stdin)
    assert "MiB/s" in stdin.stderr and "%" not in stdin.stderr


def test_completion_scripts_for_three_shells(env: dict[str, str]) -> None:
    for shell in ("bash", "zsh", "fish"):
        script = _ok(run_cli(["completion", shell], env))
        assert "_JUSTSTORAGE_COMPLETE" in script, shell
    asked = {**env, "_JUSTSTORAGE_COMPLETE": "bash_complete", "COMP_WORDS": "juststorage sy"}
    asked["COMP_CWORD"] = "1"
    assert "plain,sync" in _ok(run_cli([], asked)).splitlines()
    bad = run_cli(["completion", "tcsh"], env)
    assert bad.returncode == 2 and "tcsh" in bad.stderr
