"""Multipart upload sessions and the rest of the store (SPEC §8.2): expiry and GC
reaping their parts, fsck knowing about parts, and the tenant's quota counting them."""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from juststorage.testing import Server, StartServer, wait_until

from .support import assert_error, read_response, sha256_hex, unique_name, upload

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


def test_fsck_reports_a_part_whose_bytes_changed_and_completion_refuses_it(
    server: Server, auth: dict[str, str]
) -> None:
    """Bytes of an acknowledged part changed on disk (bit rot, an operator): fsck
    re-hashes every part and reports `damaged-part` (no repair: the client sends the
    part again); `--no-verify` does not read parts. Completion refuses it (404)."""
    tenant = unique_name("t")
    upload_id = _open(server, auth, tenant)
    chunked = server.client.put(
        f"/v1/uploads/{upload_id}/parts/2", headers=auth, content=iter([b"b" * 10])
    )
    assert chunked.status_code == 200
    assert _put(server, auth, upload_id, 1, b"a" * 1000).status_code == 200
    folder = _parts_dir(server, upload_id)
    (own,) = [p for p in os.listdir(folder) if p.startswith("2.")]
    with open(os.path.join(folder, own), "r+b") as handle:
        handle.write(b"B")
    found = server.cli("fsck")
    assert found.returncode != 0
    line = f"damaged-part hot address:parts/{upload_id}/{own}"
    assert line in found.stdout, found.stdout
    assert f"session={upload_id} part=2 bytes hash to sha256:{sha256_hex(b'B' + b'b' * 9)}" in (
        found.stdout
    )
    assert "damaged-part" not in server.cli("fsck", "--no-verify").stdout
    refused = server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth)
    assert_error(refused, 404, "NotFound")
    # Completion dropped the damaged part, its row and its bytes.
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert [p["part"] for p in session["parts"]] == [1]
    assert not os.path.exists(os.path.join(folder, own))
    assert _put(server, auth, upload_id, 2, b"b" * 10).status_code == 200
    assert server.cli("fsck").returncode == 0
    done = server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth)
    assert done.status_code == 201
    assert done.json()["content_hash"] == f"sha256:{sha256_hex(b'a' * 1000 + b'b' * 10)}"


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


MIB = 1024 * 1024
STALLED_AT = 3 * MIB // 2  # what a stalled client has sent of its 2 MiB part


@pytest.fixture(scope="module")
def roomy(start_server: StartServer) -> Server:
    """Room in the quota for parts of a few MiB."""
    return start_server(**{**SETTINGS, "JUSTSTORAGE_QUOTA_BYTES": str(100 * MIB)})


def _start_part(
    server: Server, auth: dict[str, str], upload_id: str, data: bytes, chunked: bool
) -> socket.socket:
    """PUT part 1 with the first STALLED_AT bytes of `data` sent, then a pause: a slow
    client (its part's bytes partly written, nothing written for as long as it
    pauses)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(data)}"
    sock.sendall(
        f"PUT /v1/uploads/{upload_id}/parts/1 HTTP/1.1\r\nHost: test\r\n"
        f"Authorization: {auth['Authorization']}\r\n{framing}\r\n\r\n".encode()
    )
    _send(sock, data[:STALLED_AT], chunked)
    return sock


def _finish_part(sock: socket.socket, data: bytes, chunked: bool) -> tuple[int, bytes]:
    """The rest of the part; its response."""
    with sock:
        _send(sock, data[STALLED_AT:], chunked)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        status, _, body = read_response(sock, timeout=30)
    return status, body


def _send(sock: socket.socket, piece: bytes, chunked: bool) -> None:
    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)


def _stored_bytes(folder: Path) -> int:
    try:
        return sum(entry.stat().st_size for entry in os.scandir(folder))
    except FileNotFoundError:
        return 0


def _backdate(folder: Path) -> None:
    """As if nothing had been written to the part files for an hour."""
    for name in os.listdir(folder):
        os.utime(folder / name, (time.time() - 3600, time.time() - 3600))


def _complete_and_check(
    server: Server, auth: dict[str, str], tenant: str, upload_id: str, whole: bytes
) -> None:
    """Completion commits the whole, and the bytes served hash to its content_hash."""
    done = server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth)
    assert done.status_code == 201, done.text
    obj = done.json()
    got = server.client.get(f"/v1/objects/{obj['id']}", headers={**auth, "X-Tenant": tenant})
    assert got.status_code == 200
    assert obj["content_hash"] == f"sha256:{sha256_hex(got.content)}"  # never a corrupt blob
    assert got.content == whole
    fsck = server.cli("fsck")
    assert fsck.returncode == 0, fsck.stdout


@pytest.mark.parametrize("chunked", [False, True], ids=["stream", "own-file"])
def test_gc_and_fsck_leave_a_part_being_written_alone(roomy: Server, chunked: bool) -> None:
    """A part paused mid-body for longer than GC waits for a silent writer, with its
    file not written to for an hour: GC (grace 0) and `fsck --repair` leave it alone,
    the part is stored, and the object is the bytes sent."""
    server, auth, tenant = roomy, roomy.admin_headers(), unique_name("t")
    upload_id = _open(server, auth, tenant)
    first, second = os.urandom(2 * MIB), os.urandom(MIB)
    folder = Path(_parts_dir(server, upload_id))
    sock = _start_part(server, auth, upload_id, first, chunked)
    assert wait_until(lambda: _stored_bytes(folder) >= MIB, 10)
    _backdate(folder)
    gc = server.cli("gc")
    assert gc.returncode == 0, gc.stderr
    repaired = server.cli("fsck", "--repair")
    status, body = _finish_part(sock, first, chunked)
    assert status == 200, body
    assert _put(server, auth, upload_id, 2, second).status_code == 200
    # No acknowledged part is lost, and no corrupt blob committed.
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert [(p["part"], p["sha256"]) for p in session["parts"]] == [
        (1, sha256_hex(first)),
        (2, sha256_hex(second)),
    ]
    _complete_and_check(server, auth, tenant, upload_id, first + second)
    assert "0 part files removed" in gc.stdout, gc.stdout
    assert "leaked-part" not in repaired.stdout, repaired.stdout


@pytest.mark.parametrize("chunked", [False, True], ids=["stream", "own-file"])
def test_a_part_whose_file_is_removed_while_written_is_refused(
    roomy: Server, chunked: bool
) -> None:
    """Removed by anything while the body streams (here by hand): the part is not
    acknowledged (503, nothing stored) and, sent again, goes to a new file; no part
    ever lands in a stream file made again with zeros where earlier parts were."""
    server, auth, tenant = roomy, roomy.admin_headers(), unique_name("t")
    upload_id = _open(server, auth, tenant)
    first, second = os.urandom(2 * MIB), os.urandom(MIB)
    folder = Path(_parts_dir(server, upload_id))
    sock = _start_part(server, auth, upload_id, first, chunked)
    assert wait_until(lambda: _stored_bytes(folder) >= MIB, 10)
    for name in os.listdir(folder):
        os.unlink(folder / name)
    status, body = _finish_part(sock, first, chunked)
    assert status == 503, body
    assert b'"Unavailable"' in body
    session = server.client.get(f"/v1/uploads/{upload_id}", headers=auth).json()
    assert session["parts"] == []
    assert _put(server, auth, upload_id, 2, second).status_code == 200
    assert _put(server, auth, upload_id, 1, first).status_code == 200
    _complete_and_check(server, auth, tenant, upload_id, first + second)


def test_a_stream_removed_under_stored_parts_is_never_made_again(roomy: Server) -> None:
    """Parts sent in order share the session's stream file. Once it is gone (damage),
    the next part is refused rather than written to a new file under its name with
    zeros where the parts before it were; completion says a part is missing, and
    the parts sent again make the right object."""
    server, auth, tenant = roomy, roomy.admin_headers(), unique_name("t")
    upload_id = _open(server, auth, tenant)
    first, second = os.urandom(2 * MIB), os.urandom(MIB)
    folder = Path(_parts_dir(server, upload_id))
    assert _put(server, auth, upload_id, 1, first).status_code == 200
    (stream,) = os.listdir(folder)
    os.unlink(folder / stream)
    assert_error(_put(server, auth, upload_id, 2, second), 503, "Unavailable")
    assert not os.path.exists(folder / stream)
    assert _put(server, auth, upload_id, 2, second).status_code == 200  # a file of its own
    assert_error(
        server.client.post(f"/v1/uploads/{upload_id}/complete", headers=auth), 404, "NotFound"
    )
    assert _put(server, auth, upload_id, 1, first).status_code == 200
    _complete_and_check(server, auth, tenant, upload_id, first + second)
