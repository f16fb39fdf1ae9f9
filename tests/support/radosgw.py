"""A second real S3 server for the tests: Ceph's RADOS Gateway on a one-node cluster.

Beside SeaweedFS (seaweedfs.py), RGW is a separate implementation of S3 and the
one many on-premises clusters run, so the S3 store is held to two readings of
S3's rules (docs/scale-out.md, "Tests"). The daemons are Debian's (`radosgw`,
`ceph-mon`, `ceph-osd`; scripts/ensure-radosgw.sh installs them).

The cluster lives in a fresh directory under $TMPDIR, removed afterwards:

- one monitor on a free 127.0.0.1 port (messenger v2 only), a fresh fsid, no
  authentication between the daemons (`auth ... required = none`: every daemon
  binds 127.0.0.1 only, and cephx would need a keyring for each);
- one OSD whose object store is `memstore` (RAM, bounded by `memstore device
  bytes`), every pool with one replica and few placement groups;
- no manager: pools, I/O and the gateway work without one, and it would cost a
  Python process of its own;
- radosgw with the beast frontend on a free 127.0.0.1 port, a user with the
  same fixed keys as SeaweedFS's and one bucket made through S3.

Every command gets `-c <that dir>/ceph.conf`, whose paths (data, logs, sockets,
pid files, crash dumps) all lie in the directory: nothing is written to /etc,
/var/lib/ceph or /var/log/ceph. Each daemon runs in the foreground as a child of
this process and is stopped by its PID (SIGTERM, then SIGKILL). Without the
binaries the tests skip locally and fail in CI (CI=true).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from juststorage.testing import free_port
from support.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

START_TIMEOUT_S = 90.0
COMMAND_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
BUCKET = "juststorage-test"
MEMSTORE_BYTES = 4 * 1024**3  # all objects of the run, in RAM: a bound, not an allocation
DAEMONS = ("ceph-mon", "ceph-osd", "radosgw")
TOOLS = ("ceph", "monmaptool", "radosgw-admin")


@dataclass(frozen=True)
class RadosGw:
    """The gateway's S3 endpoint; the same interface as `SeaweedFs`."""

    endpoint_url: str
    bucket: str
    pids: tuple[int, ...]  # mon, osd, radosgw
    directory: Path

    def env(self) -> dict[str, str]:
        """The AWS_* settings a JustStorage process needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ALLOW_HTTP": "true",
        }

    def root(self, name: str | None = None) -> str:
        """A fresh `s3://bucket/<prefix>` root, so tests never see each other's objects."""
        return f"s3://{self.bucket}/{name or uuid.uuid4().hex}"


def missing_binaries() -> list[str]:
    return [name for name in (*DAEMONS, *TOOLS) if shutil.which(name) is None]


def radosgw_or_skip() -> None:
    missing = missing_binaries()
    if missing:
        message = (
            f"Ceph RGW is not installed (missing {', '.join(missing)}; "
            "scripts/ensure-radosgw.sh installs Debian's radosgw, ceph-mon and ceph-osd)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def ceph_conf(directory: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    """A cluster of one monitor, one memstore OSD and one gateway, all in `directory`."""
    d = directory
    return f"""\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_port}]
ms bind msgr1 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# The gateway asks for a secure connection to the monitor by default, which needs cephx.
ms mon client mode = crc
run dir = {d}/run
log file = {d}/$name.log
mon cluster log file = {d}/cluster.log
pid file = {d}/run/$name.pid
crash dir = {d}/crash
mon data = {d}/$name
osd data = {d}/$name
rgw data = {d}/$name
log to stderr = false
err to stderr = false
# A one-node cluster: one replica, no CRUSH failure domain above the OSD.
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
# The test machine's disk is not the monitor's concern (it would stop below 5% free).
mon data avail warn = 1
mon data avail crit = 0
mon warn on insecure global id reclaim allowed = false
# Each pool the gateway creates is an OSD map epoch: propose them at once, not
# after the default batching interval.
paxos propose interval = 0.01
paxos min wait = 0.001
# A client's operation on a pool its map does not show yet is resent on the objecter's
# tick: with the default tick a start often waited a whole tick for nothing.
objecter tick interval = 0.2
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}
osd op num shards = 1
osd op num threads per shard = 2
# tcp_nodelay: without it, small responses wait for the client's delayed ACK (Nagle).
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
rgw thread pool size = 32
"""


class _Cluster:
    """The daemons started so far, by PID, and the commands run on the cluster."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.conf = directory / "ceph.conf"
        self.processes: list[subprocess.Popen[bytes]] = []

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> str:
        """A command against this cluster's configuration; its output, or RuntimeError."""
        command = [args[0], "-c", str(self.conf), *args[1:]]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{' '.join(command)} took over {timeout:.0f} s") from exc
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{output}")
        return done.stdout.decode()

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A daemon in the foreground (`-f`), its stray output in `<name>.out`."""
        command = [args[0], "-c", str(self.conf), "-f", *args[1:]]
        with open(self.directory / f"{name}.out", "wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.processes.append(process)
        return process

    def exited(self) -> str | None:
        for process in self.processes:
            if process.poll() is not None:
                return f"{process.args[0]} exited with {process.returncode}"  # type: ignore[index]
        return None

    def logs(self, limit: int = 2500) -> str:
        """The tail of every log in the directory, for a failure's message."""
        parts = []
        for path in sorted([*self.directory.glob("*.log"), *self.directory.glob("*.out")]):
            text = path.read_text(errors="replace").strip()
            if text:
                parts.append(f"--- {path.name}\n{text[-limit:]}")
        return "\n".join(parts)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Newest first (the gateway, then the OSD while the monitor still answers)."""
        for process in reversed(self.processes):
            _stop(process, timeout_s)


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _wait_for(what: str, cluster: _Cluster, check: Callable[[], bool], deadline: float) -> None:
    last = ""
    while time.monotonic() < deadline:
        if (problem := cluster.exited()) is not None:
            raise RuntimeError(f"{what}: {problem}")
        try:
            if check():
                return
        except Exception as exc:  # not up yet
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {START_TIMEOUT_S:.0f} s {last}")


def _s3_client(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=REGION,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=2,
            read_timeout=10,
            retries={"max_attempts": 1},
        ),
    )


def _bucket_ready(client: Any, bucket: str) -> bool:
    """Create the bucket (once) and PUT and DELETE a probe object in it."""
    from botocore.exceptions import ClientError

    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    client.put_object(Bucket=bucket, Key=".ready-probe", Body=b"x")
    client.delete_object(Bucket=bucket, Key=".ready-probe")
    return True


@contextlib.contextmanager
def running_radosgw(
    parent: Path | None = None, stop_timeout_s: float = STOP_TIMEOUT_S
) -> Iterator[RadosGw]:
    """A one-node Ceph cluster with RGW on 127.0.0.1, in a fresh directory under
    `parent` ($TMPDIR by default; short, for the daemons' unix sockets); its daemons
    stopped by PID and the directory removed when the block is left."""
    radosgw_or_skip()
    directory = Path(tempfile.mkdtemp(prefix="rgw-", dir=parent))
    try:
        cluster = _Cluster(directory)
        try:
            server = _start(cluster)
        except BaseException as exc:
            cluster.stop(timeout_s=2.0)
            if isinstance(exc, Exception):
                raise RuntimeError(f"Ceph RGW did not start: {exc}\n{cluster.logs()}") from exc
            raise
        try:
            yield server
        finally:
            cluster.stop(stop_timeout_s)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start(cluster: _Cluster) -> RadosGw:
    deadline = time.monotonic() + START_TIMEOUT_S
    d = cluster.directory
    for sub in ("run", "crash", "mon.a", "osd.0", "client.rgw"):
        (d / sub).mkdir()
    fsid = str(uuid.uuid4())
    mon_port, rgw_port = free_port(), free_port()
    cluster.conf.write_text(ceph_conf(d, fsid, mon_port, rgw_port))

    monmap = str(d / "monmap")
    cluster.run(
        "monmaptool", "--create", "--fsid", fsid, "--addv", "a",
        f"[v2:127.0.0.1:{mon_port}]", "--enable-all-features",
        "--set-min-mon-release", "pacific", monmap,
    )  # fmt: skip
    cluster.run("ceph-mon", "--mkfs", "-i", "a", "--monmap", monmap)
    cluster.start("mon.a", "ceph-mon", "-i", "a")

    osd_uuid = str(uuid.uuid4())
    # The first command also waits for the monitor to answer.
    osd_id = cluster.run("ceph", "--connect-timeout", "30", "osd", "new", osd_uuid).strip()
    cluster.run("ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
    # A misspelt setting would not fail: the OSD would fall back to BlueStore on a
    # sparse 100 GiB file in the directory instead of keeping the objects in RAM.
    store_type = (d / f"osd.{osd_id}" / "type").read_text().strip()
    if store_type != "memstore":
        raise RuntimeError(f"the OSD's object store is {store_type}, not memstore")
    cluster.start("osd.0", "ceph-osd", "-i", osd_id)
    # The gateway creates its pools, which wait for the OSD's placement groups.
    cluster.start("client.rgw", "radosgw", "-n", "client.rgw")
    cluster.run(
        "radosgw-admin", "user", "create", "--uid", "juststorage",
        "--display-name", "JustStorage tests",
        "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
    )  # fmt: skip

    endpoint_url = f"http://127.0.0.1:{rgw_port}"
    client = _s3_client(endpoint_url)
    _wait_for("the bucket", cluster, lambda: _bucket_ready(client, BUCKET), deadline)
    pids = tuple(p.pid for p in cluster.processes)
    return RadosGw(endpoint_url, BUCKET, pids, d)
