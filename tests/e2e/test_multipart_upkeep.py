"""Multipart upload sessions and the rest of the store (SPEC §8.2): expiry and GC
reaping their parts, fsck knowing about parts, and the tenant's quota counting them."""

from __future__ import annotations

import os
import time
import uuid

import httpx
import pytest

from juststorage.testing import Server, StartServer

from .support import assert_error, unique_name, upload

pytestmark = pytest.mark.e2e

TTL_S = 4
QUOTA = 10_000


SETTINGS = {
    "JUSTSTORAGE_UPLOAD_PART_MIN_BYTES": "1000",
    "JUSTSTORAGE_GC_INTERVAL_S": "0",  # passes only when a test runs one
    "JUSTSTORAGE_GC_GRACE_S": "0",
    "JUSTSTORAGE_INLINE_MAX_BYTES": "0",
    "JUSTSTORAGE_QUOTA_BYTES": str(QUOTA),
}


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(**SETTINGS)


@pytest.fixture(scope="module")
def expiring(start_server: StartServer) -> Server:
    """Sessions idle for TTL_S expire."""
    return start_server(**SETTINGS, JUSTSTORAGE_UPLOAD_TTL_S=str(TTL_S))


@pytest.fixture
def auth(server: Server) -> dict[str, str]:
    return server.admin_headers()


def _open(server: Server, auth: dict[str, str], tenant: str, key: str = "m") -> str:
    response = server.client.post(
        "/v1/uploads",
        headers={**auth, "X-Tenant": tenant, "X-Namespace": "models", "X-Key": key},
    )
    assert response.status_code == 201, response.text
    upload_id: str = response.json()["upload_id"]
    return upload_id


def _put(
    server: Server, auth: dict[str, str], upload_id: str, number: int, data: bytes
) -> httpx.Response:
    return server.client.put(f"/v1/uploads/{upload_id}/parts/{number}", headers=auth, content=data)


def _parts_dir(server: Server, upload_id: str) -> os.PathLike[str]:
    return server.data_dir / "hot" / "parts" / upload_id


def test_idle_sessions_expire_and_gc_removes_their_parts(expiring: Server) -> None:
    server, auth = expiring, expiring.admin_headers()
    tenant = unique_name("t")
    upload_id = _open(server, auth, tenant)
    assert _put(server, auth, upload_id, 1, b"x" * 1000).status_code == 200
    kept = _open(server, auth, tenant, "kept")
    time.sleep(TTL_S * 3 / 4)
    assert _put(server, auth, kept, 1, b"y" * 10).status_code == 200  # activity renews
    time.sleep(TTL_S / 4 + 0.3)
    assert_error(server.client.get(f"/v1/uploads/{upload_id}", headers=auth), 404, "NotFound")
    assert_error(_put(server, auth, upload_id, 2, b"late"), 404, "NotFound")
    assert_error(
        server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth), 404, "NotFound"
    )
    assert server.client.get(f"/v1/uploads/{kept}", headers=auth).status_code == 200
    assert os.path.exists(_parts_dir(server, upload_id))  # until GC runs
    gc = server.cli("gc")
    assert gc.returncode == 0, gc.stderr
    assert "1 upload sessions expired" in gc.stdout, gc.stdout
    assert not os.path.exists(_parts_dir(server, upload_id))
    assert os.path.exists(_parts_dir(server, kept))  # a live session's parts stay
    # The expired session's bytes no longer count against the quota.
    assert (
        upload(server.client, auth, tenant, "models", "big", b"z" * (QUOTA - 20)).status_code == 201
    )


def test_fsck_knows_live_parts_and_reports_leaked_and_missing_ones(
    server: Server, auth: dict[str, str]
) -> None:
    tenant = unique_name("t")
    upload_id = _open(server, auth, tenant)
    # Part 2 chunked (no declared length): a file of its own; part 1 starts the
    # stream of in-order parts.
    chunked = server.client.put(
        f"/v1/uploads/{upload_id}/parts/2", headers=auth, content=iter([b"b" * 10])
    )
    assert chunked.status_code == 200
    assert _put(server, auth, upload_id, 1, b"a" * 1000).status_code == 200
    clean = server.cli("fsck")
    assert clean.returncode == 0, clean.stdout  # live parts are no orphans
    assert "leaked-part" not in clean.stdout and "orphan" not in clean.stdout

    # Bytes no row names, left by a writer that is gone (no owner in the name: old).
    leaked = _parts_dir(server, upload_id)
    stray = os.path.join(leaked, f"3.{uuid.uuid4()}")
    with open(stray, "wb") as handle:
        handle.write(b"cut off")
    os.utime(stray, (time.time() - 60, time.time() - 60))
    found = server.cli("fsck")
    assert found.returncode != 0
    assert f"leaked-part hot address:parts/{upload_id}/3." in found.stdout
    repaired = server.cli("fsck", "--repair")
    assert "[repaired]" in repaired.stdout and not os.path.exists(stray)
    assert server.cli("fsck").returncode == 0

    # A part row whose bytes are gone is damage fsck cannot repair.
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert len(session["parts"]) == 2
    victim = sorted(p for p in os.listdir(leaked) if p.startswith("2."))[0]
    os.unlink(os.path.join(leaked, victim))
    missing = server.cli("fsck")
    assert missing.returncode != 0
    assert f"missing-part hot address:parts/{upload_id}/{victim}" in missing.stdout
    # The client sends the part again: healed.
    assert _put(server, auth, upload_id, 2, b"b" * 10).status_code == 200
    assert server.cli("fsck").returncode == 0
    # GC leaves live parts alone.
    assert server.cli("gc").returncode == 0
    # The resent part 2 (now with a length) joined the stream after part 1.
    assert [p.split(".")[0] for p in os.listdir(leaked)] == ["s"]


def test_gc_removes_the_parts_of_a_dead_writer(server: Server, auth: dict[str, str]) -> None:
    tenant = unique_name("t")
    upload_id = _open(server, auth, tenant)
    assert _put(server, auth, upload_id, 1, b"a" * 1000).status_code == 200
    folder = _parts_dir(server, upload_id)
    assert server.cli("gc").returncode == 0
    assert len(os.listdir(folder)) == 1  # a live part survives a pass
    # Bytes no row names, whose writer is gone (no owner in the name, long unwritten).
    stray = os.path.join(folder, f"2.{uuid.uuid4()}")
    with open(stray, "wb") as handle:
        handle.write(b"cut off")
    os.utime(stray, (time.time() - 600, time.time() - 600))
    gc = server.cli("gc")
    assert "1 part files removed" in gc.stdout, gc.stdout
    assert not os.path.exists(stray)
    assert len(os.listdir(folder)) == 1


def test_stored_parts_count_against_the_quota(server: Server, auth: dict[str, str]) -> None:
    tenant = unique_name("t")
    upload_id = _open(server, auth, tenant)
    assert _put(server, auth, upload_id, 1, b"a" * 6000).status_code == 200
    error = assert_error(_put(server, auth, upload_id, 2, b"b" * 5000), 413, "PayloadTooLarge")
    assert str(QUOTA) in error["message"]
    # A single upload sees the parts' bytes as used.
    assert_error(
        upload(server.client, auth, tenant, "models", "one", b"c" * 5000), 413, "PayloadTooLarge"
    )
    # Replacing a part frees the bytes of the one it replaces.
    assert _put(server, auth, upload_id, 1, b"a" * 3000).status_code == 200
    assert _put(server, auth, upload_id, 2, b"b" * 5000).status_code == 200
    # Completion turns the parts into usage without counting them twice.
    done = server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth)
    assert done.status_code == 201, done.text
    usage = server.client.get("/v1/usage", params={"tenant": tenant}, headers=auth).json()
    assert usage["logical_bytes"] == 8000
    assert upload(server.client, auth, tenant, "models", "two", b"d" * 2000).status_code == 201
    assert_error(
        upload(server.client, auth, tenant, "models", "three", b"e"), 413, "PayloadTooLarge"
    )


def test_abort_frees_the_quota(server: Server, auth: dict[str, str]) -> None:
    tenant = unique_name("t")
    upload_id = _open(server, auth, tenant)
    assert _put(server, auth, upload_id, 1, b"a" * 9000).status_code == 200
    assert_error(
        upload(server.client, auth, tenant, "models", "one", b"c" * 2000), 413, "PayloadTooLarge"
    )
    assert server.client.delete(f"/v1/uploads/{upload_id}", headers=auth).status_code == 204
    assert upload(server.client, auth, tenant, "models", "one", b"c" * 9000).status_code == 201


def test_a_chunked_part_counts_its_own_size_against_the_quota(
    server: Server, auth: dict[str, str]
) -> None:
    """A part of unknown length reserves in steps while it arrives; once stored it
    counts its own size, not the room it reserved."""
    tenant = unique_name("t")
    upload_id = _open(server, auth, tenant)
    chunked = server.client.put(
        f"/v1/uploads/{upload_id}/parts/1", headers=auth, content=iter([b"a" * 3000])
    )
    assert chunked.status_code == 200, chunked.text
    assert _put(server, auth, upload_id, 2, b"b" * 3000).status_code == 200
    assert upload(server.client, auth, tenant, "models", "one", b"c" * 3000).status_code == 201
    assert_error(
        upload(server.client, auth, tenant, "models", "two", b"d" * 2000), 413, "PayloadTooLarge"
    )
