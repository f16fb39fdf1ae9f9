"""Parallel resumable downloads and multipart uploads: the Python SDK and the CLI.

Downloads run against a real server on 127.0.0.1. Uploads run twice: against the
real server's session API (through a counting proxy), and against
`FakeSessionServer` (a session API in front of the server that commits through
`POST /v1/objects`), which also counts what it received. The kill tests stop the
CLI with SIGKILL mid-way and run the same command again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from juststorage_client import (
    AsyncClient,
    ChecksumMismatch,
    Client,
    Conflict,
    IntegrityError,
    NotFound,
)
from juststorage_client._transfer_state import (
    TEMP_SUFFIX,
    download_state_path,
    part_size_for,
    spans,
)
from tests.sdk.fake_sessions import FakeSessionServer
from tests.sdk.proxy import CuttingProxy

from juststorage.testing import BIN, Server, clean_env, start

pytestmark = pytest.mark.e2e

MiB = 1024 * 1024
NO_CUT = 1 << 62


def _pattern(size: int, seed: int = 0) -> bytes:
    block = bytes((i * 7 + seed) % 251 for i in range(65536))
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {"JUSTSTORAGE_UPLOAD_PART_MIN_BYTES": str(MiB)}
    server = start(tmp_path_factory.mktemp("transfers"), env)
    yield server
    server.stop()


class Sessions:
    """Where the session calls go, and how many bytes reached it."""

    def __init__(self, url: str, fake: FakeSessionServer | None, proxy: CuttingProxy | None):
        self.url = url
        self.fake = fake
        self.proxy = proxy

    def sent(self) -> int:
        if self.fake is not None:
            return self.fake.part_bytes_received
        assert self.proxy is not None
        return self.proxy.bytes_up

    def settle(self) -> None:
        """Wait until a cut client's last bytes have arrived, so they count for its run."""
        if self.fake is not None:
            self.fake.settle()
            return
        last = -1
        while last != self.sent():
            last = self.sent()
            time.sleep(0.3)

    def pace(self, bytes_per_s: float | None) -> None:
        if self.fake is not None:
            self.fake.bytes_per_s = bytes_per_s
        else:
            assert self.proxy is not None
            self.proxy.up_bytes_per_s = bytes_per_s


@pytest.fixture(params=["server", "fake"])
def sessions(request: pytest.FixtureRequest, server: Server, tmp_path: Path) -> Iterator[Sessions]:
    if request.param == "fake":
        with FakeSessionServer(server.url, tmp_path / "parts", part_min_bytes=MiB) as fake:
            yield Sessions(fake.url, fake, None)
    else:
        with CuttingProxy(server.port, NO_CUT) as proxy:
            yield Sessions(proxy.url, None, proxy)


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, server.admin_key) as client:
        yield client


# -- the plan ------------------------------------------------------------------------


def test_part_size_is_at_least_8_mib_and_at_most_10000_parts() -> None:
    assert part_size_for(100 * MiB) == 8 * MiB
    assert part_size_for(200 * 1024 * MiB) == -(-200 * 1024 * MiB // 10000)
    assert len(spans(200 * 1024 * MiB, part_size_for(200 * 1024 * MiB))) == 10000
    assert spans(10, 4) == [(0, 4), (4, 4), (8, 2)]


# -- downloads ---------------------------------------------------------------------


def _upload(client: Client, key: str, data: bytes) -> str:
    return client.upload(data, tenant="acme", namespace="models", key=key).id


def test_parallel_download_writes_the_object_and_leaves_no_state(
    client: Client, tmp_path: Path
) -> None:
    data = _pattern(5 * MiB + 123)
    _upload(client, "par/whole", data)
    dest = tmp_path / "out" / "whole.bin"
    dest.parent.mkdir()
    state_dir = tmp_path / "state"
    seen: list[int] = []
    head = client.download_to_file(
        dest,
        tenant="acme",
        namespace="models",
        key="par/whole",
        parallel=3,
        parallel_threshold=MiB,
        range_bytes=MiB,
        progress=seen.append,
        state_dir=state_dir,
    )
    assert dest.read_bytes() == data
    assert head.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(seen) == len(data)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["whole.bin"]
    assert list(state_dir.iterdir()) == []


@pytest.mark.parametrize("threshold", [MiB, 64 * MiB], ids=["ranges", "whole"])
def test_downloads_never_touch_a_file_named_like_another_temporary(
    client: Client, tmp_path: Path, threshold: int
) -> None:
    """Keys `m`, `m.part` and `m.part.state` downloaded at once each get their own
    bytes, and a user's own `m.part` beside the destination is left alone."""
    datas = {name: _pattern(3 * MiB + i, seed=20 + i) for i, name in enumerate(NAMES)}
    for name, data in datas.items():
        _upload(client, f"race/{name}", data)
    kwargs = {"parallel_threshold": threshold, "range_bytes": MiB, "state_dir": tmp_path / "s"}
    for run in range(4):
        out = tmp_path / f"run{run}"
        out.mkdir()
        with ThreadPoolExecutor(len(NAMES)) as pool:
            done = [
                pool.submit(
                    client.download_to_file,
                    out / name,
                    tenant="acme",
                    namespace="models",
                    key=f"race/{name}",
                    **kwargs,
                )
                for name in NAMES
            ]
            for future in done:
                future.result()
        assert {p.name: p.read_bytes() for p in out.iterdir()} == datas
    mine = tmp_path / "own"
    mine.mkdir()
    (mine / "m.part").write_bytes(b"my own work")
    (mine / "m.part.state").write_bytes(b"{}")
    client.download_to_file(mine / "m", tenant="acme", namespace="models", key="race/m", **kwargs)
    assert (mine / "m").read_bytes() == datas["m"]
    assert (mine / "m.part").read_bytes() == b"my own work"
    assert (mine / "m.part.state").read_bytes() == b"{}"


NAMES = ("m", "m.part", "m.part.state")


def _partial_with(
    dest: Path, data: bytes, object_id: str, done: list[int], range_bytes: int, state_dir: Path
) -> Path:
    """What an interrupted run leaves: a temporary file holding the done ranges beside
    `dest`, and its state in `state_dir`; the temporary file."""
    partial = dest.with_name(f".{dest.name}.0123456789abcdef{TEMP_SUFFIX}")
    body = bytearray(len(data))
    for index in done:
        start = index * range_bytes
        body[start : start + range_bytes] = data[start : start + range_bytes]
    partial.write_bytes(bytes(body))
    state = {
        "version": 1,
        "temp": partial.name,
        "object_id": object_id,
        "content_hash": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "range_bytes": range_bytes,
        "done": done,
    }
    path = download_state_path(state_dir, dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state))
    return partial


def _ranges_asked(proxy: CuttingProxy) -> list[str]:
    return [
        line.split(":", 1)[1].strip()
        for request in proxy.requests
        for line in request.splitlines()
        if line.lower().startswith("range:")
    ]


def test_download_keeps_the_ranges_a_previous_run_finished(
    server: Server, client: Client, tmp_path: Path
) -> None:
    data = _pattern(6 * MiB, seed=1)
    object_id = _upload(client, "par/resume", data)
    dest = tmp_path / "resume.bin"
    state_dir = tmp_path / "state"
    partial = _partial_with(dest, data, object_id, [0, 1, 3], MiB, state_dir)
    resumed: list[int] = []
    with (
        CuttingProxy(server.port, NO_CUT) as proxy,
        Client(proxy.url, server.admin_key) as via_proxy,
    ):
        via_proxy.download_to_file(
            dest,
            tenant="acme",
            namespace="models",
            key="par/resume",
            parallel=2,
            parallel_threshold=MiB,
            range_bytes=MiB,
            on_resume=resumed.append,
            state_dir=state_dir,
        )
    assert dest.read_bytes() == data
    assert resumed == [3 * MiB]
    assert not partial.exists() and list(state_dir.iterdir()) == []
    asked = sorted(_ranges_asked(proxy))
    assert asked == sorted(f"bytes={i * MiB}-{(i + 1) * MiB - 1}" for i in (2, 4, 5))


def test_download_starts_over_when_the_key_names_another_version(
    client: Client, tmp_path: Path
) -> None:
    old = _pattern(3 * MiB, seed=2)
    old_id = _upload(client, "par/changed", old)
    new = _pattern(3 * MiB, seed=3)
    _upload(client, "par/changed", new)
    dest = tmp_path / "changed.bin"
    state_dir = tmp_path / "state"
    partial = _partial_with(dest, old, old_id, [0, 1], MiB, state_dir)
    resumed: list[int] = []
    client.download_to_file(
        dest,
        tenant="acme",
        namespace="models",
        key="par/changed",
        parallel_threshold=MiB,
        range_bytes=MiB,
        on_resume=resumed.append,
        state_dir=state_dir,
    )
    assert dest.read_bytes() == new
    assert resumed == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["changed.bin", "state"]
    assert not partial.exists()


def test_a_kept_range_that_does_not_hash_right_fails_and_the_next_run_starts_clean(
    client: Client, tmp_path: Path
) -> None:
    data = _pattern(3 * MiB, seed=4)
    object_id = _upload(client, "par/corrupt", data)
    dest = tmp_path / "corrupt.bin"
    state_dir = tmp_path / "state"
    partial = _partial_with(dest, data, object_id, [0], MiB, state_dir)
    with partial.open("r+b") as handle:
        handle.write(b"\xff" * 10)  # a range recorded as done, but damaged since
    kwargs = {"parallel_threshold": MiB, "range_bytes": MiB, "state_dir": state_dir}
    with pytest.raises(IntegrityError):
        client.download_to_file(dest, tenant="acme", id=object_id, **kwargs)
    assert not dest.exists() and not partial.exists()
    assert list(state_dir.iterdir()) == []
    client.download_to_file(dest, tenant="acme", id=object_id, **kwargs)
    assert dest.read_bytes() == data


def test_async_client_downloads_in_parallel_ranges(server: Server, tmp_path: Path) -> None:
    data = _pattern(4 * MiB + 1, seed=5)

    async def run() -> bytes:
        async with AsyncClient(server.url, server.admin_key) as client:
            await client.upload(data, tenant="acme", namespace="models", key="par/async")
            dest = tmp_path / "async.bin"
            await client.download_to_file(
                dest,
                tenant="acme",
                namespace="models",
                key="par/async",
                parallel=4,
                parallel_threshold=MiB,
                range_bytes=MiB,
                state_dir=tmp_path / "state",
            )
            return dest.read_bytes()

    assert asyncio.run(run()) == data


# -- multipart uploads -------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop_after(limit: int) -> object:
    sent = 0

    def progress(n: int) -> None:
        nonlocal sent
        sent += n
        if sent >= limit:
            raise _Stop

    return progress


def _multipart(client: Client, path: Path, key: str, state_dir: Path, **kwargs: object) -> str:
    info = client.upload_file(
        path,
        tenant="acme",
        namespace="models",
        key=key,
        multipart_threshold=MiB,
        part_bytes=MiB,
        parallel=3,
        state_dir=state_dir,
        **kwargs,  # type: ignore[arg-type]
    )
    return info.content_hash


def test_multipart_upload_commits_the_whole_file_once(
    sessions: Sessions, server: Server, tmp_path: Path
) -> None:
    data = _pattern(5 * MiB + 123, seed=6)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    state_dir = tmp_path / "state"
    with Client(sessions.url, server.admin_key) as client:
        content_hash = _multipart(client, source, "mp/whole", state_dir)
    assert content_hash == "sha256:" + hashlib.sha256(data).hexdigest()
    # Every byte once (plus the requests' heads and JSON through the proxy).
    assert len(data) <= sessions.sent() <= len(data) + 64 * 1024
    assert list(state_dir.iterdir()) == []
    with Client(server.url, server.admin_key) as direct:
        assert direct.download(tenant="acme", namespace="models", key="mp/whole") == data


def test_an_interrupted_multipart_upload_resumes_with_the_missing_parts_only(
    sessions: Sessions, server: Server, tmp_path: Path
) -> None:
    data = _pattern(10 * MiB, seed=7)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    state_dir = tmp_path / "state"
    with Client(sessions.url, server.admin_key) as client:
        with pytest.raises(_Stop):
            _multipart(client, source, "mp/resume", state_dir, progress=_stop_after(7 * MiB))
        (state_file,) = state_dir.iterdir()
        recorded = json.loads(state_file.read_text())["parts"]
        assert len(recorded) >= 4
        sessions.settle()
        first_run = sessions.sent()
        resumed: list[int] = []
        content_hash = _multipart(client, source, "mp/resume", state_dir, on_resume=resumed.append)
    assert content_hash == "sha256:" + hashlib.sha256(data).hexdigest()
    held = resumed[0]
    assert held >= len(recorded) * MiB
    # The second run sent exactly the parts the server did not hold (and, through
    # the proxy, the requests' heads and JSON).
    resent = sessions.sent() - first_run
    assert len(data) - held <= resent <= len(data) - held + 64 * 1024
    assert list(state_dir.iterdir()) == []
    with Client(server.url, server.admin_key) as direct:
        assert direct.download(tenant="acme", namespace="models", key="mp/resume") == data


def test_a_file_changed_since_the_interruption_goes_in_a_new_session(
    sessions: Sessions, server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(_pattern(4 * MiB, seed=8))
    state_dir = tmp_path / "state"
    with Client(sessions.url, server.admin_key) as client:
        with pytest.raises(_Stop):
            _multipart(client, source, "mp/changed", state_dir, progress=_stop_after(2 * MiB))
        (state_file,) = state_dir.iterdir()
        old_session = json.loads(state_file.read_text())["upload_id"]
        changed = _pattern(4 * MiB, seed=9)
        source.write_bytes(changed)
        sessions.settle()
        before = sessions.sent()
        resumed: list[int] = []
        content_hash = _multipart(client, source, "mp/changed", state_dir, on_resume=resumed.append)
        assert content_hash == "sha256:" + hashlib.sha256(changed).hexdigest()
        assert resumed == [] and sessions.sent() - before >= len(changed)
        with pytest.raises(NotFound):  # aborted, its parts freed
            client.get_upload(old_session)


def test_a_file_changed_after_its_session_completed_goes_in_a_new_session(
    sessions: Sessions, server: Server, tmp_path: Path
) -> None:
    # The run that sent the file stopped after its session was completed but before
    # it forgot the session: the next run's abort of it is a 409 (its object stays),
    # which is no reason to fail.
    source = tmp_path / "model.bin"
    data = _pattern(4 * MiB, seed=21)
    source.write_bytes(data)
    state_dir = tmp_path / "state"
    with Client(sessions.url, server.admin_key) as client:
        with pytest.raises(_Stop):
            _multipart(client, source, "mp/done", state_dir, progress=_stop_after(2 * MiB))
        (state_file,) = state_dir.iterdir()
        old_session = json.loads(state_file.read_text())["upload_id"]
        sessions.settle()
        for number in range(1, 5):  # as the run would have, had it not stopped
            client.upload_part(old_session, number, data[(number - 1) * MiB : number * MiB])
        finished = client.complete_upload(old_session)
        with pytest.raises(Conflict):
            client.abort_upload(old_session)
        changed = _pattern(4 * MiB, seed=22)
        source.write_bytes(changed)
        content_hash = _multipart(client, source, "mp/done", state_dir)
        assert content_hash == "sha256:" + hashlib.sha256(changed).hexdigest()
        assert client.complete_upload(old_session).id == finished.id


def test_a_file_changed_behind_its_mtime_is_refused_then_sent_again_whole(
    sessions: Sessions, server: Server, tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(_pattern(4 * MiB, seed=14))
    stat = source.stat()
    state_dir = tmp_path / "state"
    with Client(sessions.url, server.admin_key) as client:
        with pytest.raises(_Stop):
            _multipart(client, source, "mp/sneaky", state_dir, progress=_stop_after(2 * MiB))
        changed = _pattern(4 * MiB, seed=15)
        source.write_bytes(changed)
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
        with pytest.raises(ChecksumMismatch):  # old parts + new parts != the recorded digest
            _multipart(client, source, "mp/sneaky", state_dir)
        assert list(state_dir.iterdir()) == []  # forgotten: the next run starts over
        content_hash = _multipart(client, source, "mp/sneaky", state_dir)
    assert content_hash == "sha256:" + hashlib.sha256(changed).hexdigest()


def test_async_client_multipart_upload_resumes(
    sessions: Sessions, server: Server, tmp_path: Path
) -> None:
    data = _pattern(6 * MiB + 7, seed=10)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    state_dir = tmp_path / "state"

    async def run() -> tuple[str, list[int]]:
        async with AsyncClient(sessions.url, server.admin_key) as client:
            options = {
                "tenant": "acme",
                "namespace": "models",
                "key": "mp/async",
                "multipart_threshold": MiB,
                "part_bytes": MiB,
                "parallel": 1,  # parts 1 and 2 are acknowledged before part 3 is read
                "state_dir": state_dir,
            }
            with pytest.raises(_Stop):
                await client.upload_file(source, **options, progress=_stop_after(3 * MiB))  # type: ignore[arg-type]
            resumed: list[int] = []
            info = await client.upload_file(source, **options, on_resume=resumed.append)  # type: ignore[arg-type]
            return info.content_hash, resumed

    content_hash, resumed = asyncio.run(run())
    assert content_hash == "sha256:" + hashlib.sha256(data).hexdigest()
    assert resumed == [2 * MiB]


def test_session_calls_create_send_inspect_complete_and_abort(
    sessions: Sessions, server: Server
) -> None:
    part1, part2 = _pattern(MiB, seed=11), b"tail"
    with Client(sessions.url, server.admin_key) as client:
        session = client.create_upload(tenant="acme", namespace="models", key="mp/calls")
        assert session.state == "open" and session.parts == ()
        client.upload_part(session.upload_id, 2, part2)
        client.upload_part(session.upload_id, 1, part1)
        parts = client.get_upload(session.upload_id).parts
        assert [(p.part, p.size_bytes) for p in parts] == [(1, MiB), (2, 4)]
        assert parts[0].sha256 == hashlib.sha256(part1).hexdigest()
        info = client.complete_upload(session.upload_id)
        assert info.size_bytes == MiB + 4
        assert client.complete_upload(session.upload_id).id == info.id  # a retry: same object
        other = client.create_upload(tenant="acme", namespace="models", key="mp/calls")
        client.abort_upload(other.upload_id)
        with pytest.raises(NotFound):
            client.get_upload(other.upload_id)


# -- the CLI, killed and run again ------------------------------------------------------


def _cli_env(server: Server, url: str, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "config" / "client.toml"  # named, so it must exist (empty)
    config.parent.mkdir(parents=True, exist_ok=True)
    config.touch()
    return clean_env(
        tmp_path / "unused-data",
        {
            "JUSTSTORAGE_URL": url,
            "JUSTSTORAGE_TOKEN": server.admin_key,
            "JUSTSTORAGE_CLIENT_CONFIG": str(config),
        },
    )


def _kill_when(proc: subprocess.Popen[bytes], ready: object, timeout_s: float = 60.0) -> None:
    """SIGKILL `proc` (started here) as soon as `ready()` holds."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the command ended before it could be killed"
        if ready():  # type: ignore[operator]
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            return
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    raise AssertionError("the transfer never reached the point to kill it at")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_get_killed_half_way_resumes_keeping_finished_ranges(
    server: Server, client: Client, tmp_path: Path
) -> None:
    data = _pattern(16 * MiB, seed=12)
    _upload(client, "cli/big-get", data)
    dest = tmp_path / "big.bin"
    state = download_state_path(tmp_path / "config" / "transfers", dest)
    args = ["get", "acme/models/cli/big-get", str(dest), "--parallel", "2"]
    args += ["--parallel-threshold", "1MiB", "--part-size", "1MiB"]

    def half_done() -> bool:
        try:
            return len(json.loads(state.read_text())["done"]) >= 8
        except (OSError, ValueError, KeyError):
            return False

    with CuttingProxy(server.port, NO_CUT, bytes_per_s=2 * MiB) as slow:
        env = _cli_env(server, slow.url, tmp_path)
        proc = subprocess.Popen([str(BIN), *args], env=env, stderr=subprocess.DEVNULL)
        _kill_when(proc, half_done)
    kept = len(json.loads(state.read_text())["done"])
    assert kept < 16 and not dest.exists()
    with CuttingProxy(server.port, NO_CUT) as proxy:
        again = _run([*args, "--progress"], _cli_env(server, proxy.url, tmp_path))
    assert again.returncode == 0, again.stderr
    assert dest.read_bytes() == data
    assert "resuming" in again.stderr and "MiB/s" in again.stderr
    assert len(_ranges_asked(proxy)) == 16 - kept
    assert not state.exists() and not list(tmp_path.glob(f".big.bin.*{TEMP_SUFFIX}"))


def test_cli_put_killed_at_90_percent_resends_at_most_15_percent(
    sessions: Sessions, server: Server, tmp_path: Path
) -> None:
    data = _pattern(40 * MiB, seed=13)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    state_dir = tmp_path / "config" / "transfers"
    args = ["put", str(source), "acme/models/cli/big-put", "--json", "--parallel", "4"]
    # The other parametrization stored the same bytes: asking by hash would commit at once.
    args += ["--multipart-threshold", "1MiB", "--part-size", "1MiB", "--no-by-hash"]

    def ninety_percent() -> bool:
        try:
            (state_file,) = state_dir.glob("upload-*.json")
            return len(json.loads(state_file.read_text())["parts"]) >= 36
        except (OSError, ValueError, KeyError):
            return False

    env = _cli_env(server, sessions.url, tmp_path)
    sessions.pace(4 * MiB)
    proc = subprocess.Popen([str(BIN), *args], env=env, stderr=subprocess.DEVNULL)
    _kill_when(proc, ninety_percent)
    sessions.settle()
    first_run = sessions.sent()
    sessions.pace(None)
    again = _run([*args, "--progress"], env)
    resent = sessions.sent() - first_run
    # The measurement, for `pytest -s`: what the resumed run sent, of the file.
    print(f"\nkilled at {first_run / MiB:.1f} MiB sent; resume sent {resent / MiB:.2f} MiB")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["content_hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert "resuming" in again.stderr
    assert resent <= 0.15 * len(data), f"sent {resent / MiB:.1f} MiB again"
    assert list(state_dir.glob("upload-*.json")) == []
