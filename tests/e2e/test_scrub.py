"""Scrub (SPEC §8.9) in real servers: a blob file changed on disk shows up in the
metric and in one log line naming its hash and object, and leaves both once its bytes
are put back; of two servers on one database, one scrubs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from juststorage.testing import Server, StartServer, start, wait_until

from .prometheus_text import parse_samples, value
from .support import blob_file, sha256_hex, unique_name, upload

pytestmark = [pytest.mark.e2e, pytest.mark.filesystem_layout]

RATE = 50_000_000  # bytes per second: the tiny store is re-read about every second


def _metric(server: Server, name: str) -> float:
    response = server.client.get("/metrics")
    assert response.status_code == 200
    return value(parse_samples(response.text), name)


def _scrub_lines(server: Server) -> list[dict[str, object]]:
    lines = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "juststorage.scrub":
                lines.append(record)
    return lines


def test_a_changed_blob_file_is_reported_and_cleared_once_put_back(
    start_server: StartServer,
) -> None:
    server = start_server(
        JUSTSTORAGE_SCRUB_BYTES_PER_S=str(RATE),
        JUSTSTORAGE_INLINE_MAX_BYTES="0",
        JUSTSTORAGE_LOG_FORMAT="json",
    )
    auth = server.admin_headers()
    tenant, data = unique_name(), os.urandom(40_000)
    created = upload(server.client, auth, tenant, "n", "rotting", data)
    assert created.status_code == 201
    object_id = created.json()["id"]
    assert wait_until(lambda: _metric(server, "just_storage_scrub_bytes_total") > 0, 20)
    assert _metric(server, "just_storage_scrub_corrupt_blobs") == 0

    path = blob_file(server.data_dir / "hot", sha256_hex(data))
    original = path.read_bytes()
    path.write_bytes(bytes([original[0] ^ 1]) + original[1:])
    assert wait_until(lambda: _metric(server, "just_storage_scrub_corrupt_blobs") == 1, 20)
    # The step that found it logs it when it ends (within a second or so here).
    assert wait_until(lambda: any(r["level"] == "error" for r in _scrub_lines(server)), 10)
    (line,) = [r for r in _scrub_lines(server) if r["level"] == "error"]
    assert line["content_hash"] == sha256_hex(data) and line["storage_class"] == "hot"
    assert line["objects"] == [f"{tenant}/n/rotting#{object_id}"]
    assert sha256_hex(data) in str(line["msg"]) and "rotting" in str(line["msg"])
    assert auth["Authorization"].split()[-1] not in server.log()  # no secret in the log

    path.write_bytes(original)
    assert wait_until(lambda: _metric(server, "just_storage_scrub_corrupt_blobs") == 0, 20)
    assert _metric(server, "just_storage_scrub_passes_completed") >= 2


def test_of_two_servers_on_one_database_one_scrubs(
    start_server: StartServer, tmp_path: Path
) -> None:
    env = {"JUSTSTORAGE_SCRUB_BYTES_PER_S": str(RATE), "JUSTSTORAGE_INLINE_MAX_BYTES": "0"}
    first = start_server(**env)
    auth = first.admin_headers()
    for index in range(3):
        assert upload(first.client, auth, "t", "n", f"k{index}", os.urandom(10_000)).status_code
    second = start(tmp_path, {**first.env, **env}, data_dir=first.data_dir)
    try:
        both = (first, second)
        assert wait_until(
            lambda: sum(_metric(s, "just_storage_scrub_passes_completed") >= 3 for s in both) == 2,
            30,
        )
        scrubbed = [_metric(s, "just_storage_scrub_bytes_total") for s in both]
        assert sorted(x > 0 for x in scrubbed) == [False, True], scrubbed
    finally:
        second.stop()


def test_an_unreadable_blob_is_reported_the_pass_goes_on_and_a_get_answers_500(
    start_server: StartServer,
) -> None:
    server = start_server(
        JUSTSTORAGE_SCRUB_BYTES_PER_S=str(RATE),
        JUSTSTORAGE_INLINE_MAX_BYTES="0",
        JUSTSTORAGE_LOG_FORMAT="json",
    )
    auth = server.admin_headers()
    tenant, data = unique_name(), os.urandom(20_000)
    created = upload(server.client, auth, tenant, "n", "bad-sector", data)
    assert created.status_code == 201
    object_id = created.json()["id"]
    assert upload(server.client, auth, tenant, "n", "fine", os.urandom(9_000)).status_code == 201
    # A directory where the file was: its reads fail as a bad sector's (EIO) do.
    path = blob_file(server.data_dir / "hot", sha256_hex(data))
    path.unlink()
    path.mkdir()
    assert wait_until(lambda: _metric(server, "just_storage_scrub_corrupt_blobs") == 1, 20)
    assert _metric(server, "just_storage_scrub_rate_bytes_per_second") == RATE
    passes = _metric(server, "just_storage_scrub_passes_completed")
    assert wait_until(
        lambda: _metric(server, "just_storage_scrub_passes_completed") >= passes + 2, 20
    )
    (line,) = [r for r in _scrub_lines(server) if r["level"] == "error"]
    assert str(line["detail"]).startswith("unreadable: ")
    assert line["objects"] == [f"{tenant}/n/bad-sector#{object_id}"]
    assert "crashed" not in server.log() and "Traceback" not in server.log()

    got = server.client.get(f"/v1/objects/{object_id}", headers={**auth, "X-Tenant": tenant})
    assert got.status_code == 500
    assert got.json()["error"]["code"] == "Internal"
