"""`juststorage backup` against a real server (SPEC §8.9; docs/backup.md): under a
mixed load with GC at grace 0, killed with SIGKILL and run again, verified and
pruned; into a directory and into an S3 bucket on both real S3 servers (SeaweedFS and
Ceph RGW, tests/support/s3_servers.py), a fixture parameter of `target`. Servers and
targets run in the pairs of `_BACKUP_PAIRS` (tests/conftest.py), not all nine.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from juststorage.application.backup_format import (
    Manifest,
    MetadataHeader,
    blob_key,
    hash_of_blob_key,
    in_progress_key,
    list_backups,
    manifest_key,
    read_manifest,
    read_metadata,
)
from juststorage.application.backup_ports import BackupTarget
from juststorage.bootstrap import build_backup_target
from juststorage.config import Settings
from juststorage.testing import BIN, Server, StartServer, run_cli
from support.s3_servers import S3Server

from .support import unique_name, upload


@dataclass
class Target:
    """Where a test's backups go: the CLI's TARGET and its environment, and the same
    target opened in this process to look inside."""

    url: str
    env: dict[str, str]
    settings: Settings

    def run(self, coro_fn: Any) -> Any:
        async def main() -> Any:
            made = build_backup_target(self.settings, self.url)
            try:
                return await coro_fn(made)
            finally:
                await made.close()

        return asyncio.run(main())


@pytest.fixture(
    params=[
        "directory",
        pytest.param("seaweedfs", marks=pytest.mark.s3),
        pytest.param("radosgw", marks=pytest.mark.s3),
    ]
)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    if request.param == "directory":
        return Target(str(tmp_path / "backups"), {}, Settings(data_dir=tmp_path))
    weed: S3Server = request.getfixturevalue(request.param)
    env = weed.env()
    settings = Settings(
        data_dir=tmp_path,
        backup_aws_endpoint_url=env["AWS_ENDPOINT_URL"],
        backup_aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        backup_aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        backup_aws_region=env["AWS_REGION"],
        backup_aws_allow_http=True,
    )
    # The target's own connection: the server's blob roots may be on another S3 server.
    own = {f"JUSTSTORAGE_BACKUP_{name}": value for name, value in env.items()}
    return Target(weed.root(), own, settings)


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server(GC_GRACE_S="0")


def backup_cli(server: Server, target: Target, *args: str, timeout: float = 120) -> Any:
    return run_cli([*args], {**server.env, **target.env}, timeout=timeout)


def create(server: Server, target: Target, *extra: str) -> dict[str, Any]:
    result = backup_cli(server, target, "backup", target.url, "--json", *extra)
    assert result.returncode == 0, result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def now() -> datetime:
    return datetime.now(UTC)


async def rows_of(made: BackupTarget, manifest: Manifest) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {}
    async for item in read_metadata(made, manifest):
        if not isinstance(item, MetadataHeader):
            rows.setdefault(item[0], []).append(item[1])
    return rows


async def blob_hashes(made: BackupTarget) -> dict[str, str]:
    """hash named by each key under blobs/ → the hash of its bytes."""
    found = {}
    async for page in made.list_keys("blobs/"):
        for key in page:
            name = hash_of_blob_key(key)
            assert name is not None, key
            hasher = hashlib.sha256()
            async for chunk in made.get_stream(key):
                hasher.update(chunk)
            found[name] = hasher.hexdigest()
    return found


# -- a backup under load ----------------------------------------------------------


@dataclass
class Op:
    kind: str  # upload | delete
    began: datetime
    ended: datetime
    object_id: str
    digest: str = ""
    size: int = 0


@dataclass
class Load:
    """Uploads (new keys, overwrites; inline and file sizes), deletes and GC passes
    with grace 0, against one server, logged with their start and end times."""

    server: Server
    tenant: str
    ops: list[Op] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)
    gc_passes: int = 0

    def uploads(self, seed: int, max_ops: int = 400) -> None:
        rng = random.Random(seed)
        client = httpx.Client(base_url=self.server.url, timeout=30.0, trust_env=False)
        auth = self.server.admin_headers()
        keys: list[str] = []
        live: list[str] = []
        try:
            for _ in range(max_ops):
                if self.stop.is_set():
                    return
                roll = rng.random()
                if roll < 0.2 and live:
                    victim = live.pop(rng.randrange(len(live)))
                    began = now()
                    response = client.delete(
                        f"/v1/objects/{victim}", headers={**auth, "X-Tenant": self.tenant}
                    )
                    ended = now()
                    if response.status_code != 204:
                        self.errors.append(f"delete {response.status_code} {response.text}")
                    self.ops.append(Op("delete", began, ended, victim))
                    continue
                key = rng.choice(keys) if keys and roll < 0.45 else f"k{len(keys)}"
                if key not in keys:
                    keys.append(key)
                size = rng.choice([0, 100, 3000, 70_000, 150_000])
                data = os.urandom(size) if rng.random() < 0.7 else b"same" * (size // 4)
                began = now()
                response = upload(client, auth, self.tenant, "ns", key, data)
                ended = now()
                if response.status_code != 201:
                    self.errors.append(f"upload {response.status_code} {response.text}")
                    continue
                object_id = response.json()["id"]
                live.append(object_id)
                digest = hashlib.sha256(data).hexdigest()
                self.ops.append(Op("upload", began, ended, object_id, digest, size))
        finally:
            client.close()

    def collect(self) -> None:
        while not self.stop.wait(0.3):
            result = self.server.cli("gc")
            if result.returncode == 0:
                self.gc_passes += 1
            elif "another process" not in result.stderr:
                self.errors.append(f"gc: {result.stderr}")


def test_a_backup_under_load_holds_what_was_committed_before_its_snapshot(
    server: Server, target: Target
) -> None:
    load = Load(server, unique_name())
    workers = [
        threading.Thread(target=load.uploads, args=(1,)),
        threading.Thread(target=load.uploads, args=(2,)),
        threading.Thread(target=load.collect),
    ]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1.0)
        summary = create(server, target, "--parallel", "4")
        time.sleep(0.5)
    finally:
        load.stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert not load.errors, load.errors[:5]
    assert load.gc_passes >= 1

    async def inspect(made: BackupTarget) -> tuple[Manifest, dict[str, Any], dict[str, str]]:
        manifest = await read_manifest(made, summary["id"])
        return manifest, await rows_of(made, manifest), await blob_hashes(made)

    manifest, rows, blobs = target.run(inspect)
    ours = {r["id"]: r for r in rows["objects"] if r["tenant_id"] == load.tenant}
    uploads = {op.object_id: op for op in load.ops if op.kind == "upload"}
    deletes = {op.object_id: op for op in load.ops if op.kind == "delete"}
    before, taken = manifest.snapshot_at, manifest.snapshot_taken_by
    must, must_not = set(), set()
    for object_id, op in uploads.items():
        deleted = deletes.get(object_id)
        if op.began > taken or (deleted is not None and deleted.ended < before):
            must_not.add(object_id)
        elif op.ended < before and (deleted is None or deleted.began > taken):
            must.add(object_id)
    assert must and must_not  # the load ran on both sides of the snapshot
    assert must <= ours.keys(), sorted(must - ours.keys())[:5]
    assert not (must_not & ours.keys()), sorted(must_not & ours.keys())[:5]
    assert ours.keys() <= uploads.keys()  # nothing that was never acknowledged
    for object_id, row in ours.items():
        assert (row["content_hash"], row["size_bytes"]) == (
            uploads[object_id].digest,
            uploads[object_id].size,
        )
        assert row["state"] == "COMMITTED"
    # Every blob in the target is whole, and every row's blob is there.
    assert all(name == actual for name, actual in blobs.items())
    assert {r["content_hash"] for r in rows["objects"]} <= blobs.keys()
    assert manifest.objects == len(rows["objects"]) and summary["objects"] == manifest.objects
    # Inline blobs (the server's default threshold) are in blobs/ too.
    assert hashlib.sha256(b"").hexdigest() in blobs or not any(
        op.size == 0 for op in uploads.values()
    )
    assert any(op.size == 100 and op.digest in blobs for op in uploads.values())
    # The load is over: the next backup copies what came after the first one, and
    # one more of the unchanged store copies nothing.
    create(server, target)
    unchanged = create(server, target)
    assert unchanged["blobs_copied"] == 0 and unchanged["bytes_copied"] == 0
    assert unchanged["blobs_present"] == unchanged["blobs"]


# -- killed and run again ------------------------------------------------------------


def blob_count(target: Target) -> int:
    async def count(made: BackupTarget) -> int:
        return sum([len(page) async for page in made.list_keys("blobs/")])

    return int(target.run(count))


def test_a_backup_killed_at_random_points_resumes_without_copying_twice(
    server: Server, target: Target
) -> None:
    tenant = unique_name()
    auth = server.admin_headers()
    total = 40
    for i in range(total):
        response = upload(server.client, auth, tenant, "ns", f"k{i}", os.urandom(600_000))
        assert response.status_code == 201, response.text
    env = {**server.env, **target.env}
    rng = random.Random(7)
    # Four points: one early (while the run starts and reads its snapshot), three when
    # a random number of blobs has been copied.
    points: list[tuple[str, float]] = [("seconds", rng.uniform(0.1, 0.5))]
    points += [("blobs", n) for n in sorted(rng.sample(range(2, total - 10), 3))]
    killed = 0
    for kind, point in points:
        process = subprocess.Popen(
            [str(BIN), "backup", target.url, "--parallel", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        if kind == "seconds":
            time.sleep(point)
        else:
            while blob_count(target) < point and process.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.005)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait(timeout=30)
    assert killed == len(points)

    async def present(made: BackupTarget) -> dict[str, str]:
        return await blob_hashes(made)

    before = target.run(present)
    assert all(name == actual for name, actual in before.items())  # nothing half-written
    summary = create(server, target)
    after = target.run(present)
    # The module's server holds other tests' objects too: the killed runs stopped
    # before the store's every blob was in the target.
    assert 0 < len(before) < summary["blobs"]
    assert summary["blobs_copied"] == len(after) - len(before)
    assert summary["blobs_present"] == summary["blobs"] - summary["blobs_copied"]
    assert all(name == actual for name, actual in after.items())
    # The killed runs are incomplete; with their heartbeat fresh they count as in
    # progress, and prune refuses to run beside them.
    listed = json.loads(backup_cli(server, target, "backup", "list", target.url, "--json").stdout)
    states = [b["state"] for b in listed if b["id"] != summary["id"]]
    assert states and set(states) == {"in-progress"}
    refused = backup_cli(server, target, "backup", "prune", target.url, "--keep", "1")
    assert refused.returncode == 1 and "in progress" in refused.stderr

    async def age_heartbeats(made: BackupTarget) -> None:
        old = (now() - timedelta(minutes=5)).isoformat()
        for info in await list_backups(made):
            if not info.complete:
                data = json.dumps({"started_at": old, "heartbeat": old}).encode()
                await made.put_bytes(in_progress_key(info.id), data)

    target.run(age_heartbeats)
    listed = json.loads(backup_cli(server, target, "backup", "list", target.url, "--json").stdout)
    assert {b["state"] for b in listed if b["id"] != summary["id"]} == {"incomplete"}
    pruned = backup_cli(server, target, "backup", "prune", target.url, "--keep", "1", "--json")
    assert pruned.returncode == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert report["kept"] == [summary["id"]]
    listed = json.loads(backup_cli(server, target, "backup", "list", target.url, "--json").stdout)
    assert [b["id"] for b in listed] == [summary["id"]]
    verified = backup_cli(server, target, "backup", "verify", target.url)
    assert verified.returncode == 0, verified.stdout + verified.stderr


# -- verify, prune -------------------------------------------------------------------


def test_verify_finds_a_flipped_byte_a_missing_blob_and_a_tampered_manifest(
    server: Server, target: Target
) -> None:
    tenant = unique_name()
    auth = server.admin_headers()
    bodies = [os.urandom(70_000 + i) for i in range(3)]
    for i, data in enumerate(bodies):
        assert upload(server.client, auth, tenant, "ns", f"v{i}", data).status_code == 201
    summary = create(server, target)
    ok = backup_cli(server, target, "backup", "verify", target.url, "--id", summary["id"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    flipped, removed = (hashlib.sha256(b).hexdigest() for b in bodies[:2])

    async def damage(made: BackupTarget) -> None:
        data = bytearray(await made.get_bytes(blob_key(flipped)))
        data[len(data) // 2] ^= 0x01
        await made.put_bytes(blob_key(flipped), bytes(data))
        await made.delete(blob_key(removed))

    target.run(damage)
    bad = backup_cli(server, target, "backup", "verify", target.url, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["corrupt"] == [flipped] and report["missing"] == [removed]
    assert bad.stderr.strip().splitlines()[-1] == f"Error: backup {summary['id']} is damaged"
    # --repair copies both again from the live store; then the backup is whole.
    fixed = backup_cli(server, target, "backup", "verify", target.url, "--repair", "--json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert sorted(json.loads(fixed.stdout)["repaired"]) == sorted([flipped, removed])
    ok = backup_cli(server, target, "backup", "verify", target.url, "--id", summary["id"])
    assert ok.returncode == 0, ok.stdout + ok.stderr

    async def tamper(made: BackupTarget) -> None:
        raw = await made.get_bytes(manifest_key(summary["id"]))
        await made.put_bytes(manifest_key(summary["id"]), raw.replace(b'"objects"', b'"objects" '))

    target.run(tamper)
    tampered = backup_cli(server, target, "backup", "verify", target.url, "--id", summary["id"])
    assert tampered.returncode == 1 and "does not match manifest.sha256" in tampered.stdout
    missing = backup_cli(
        server, target, "backup", "verify", target.url, "--id", "20000101T000000Z-00000000"
    )
    assert missing.returncode == 3 and missing.stderr.startswith("Error: NotFound")


def test_prune_keeps_n_backups_and_removes_only_unreferenced_blobs(
    server: Server, target: Target
) -> None:
    tenant = unique_name()
    auth = server.admin_headers()
    kept_body, dropped_body, later_body = (os.urandom(80_000) for _ in range(3))
    kept = upload(server.client, auth, tenant, "ns", "kept", kept_body).json()["id"]
    dropped = upload(server.client, auth, tenant, "ns", "dropped", dropped_body).json()["id"]
    first = create(server, target)
    response = server.client.delete(f"/v1/objects/{dropped}", headers={**auth, "X-Tenant": tenant})
    assert response.status_code == 204
    assert upload(server.client, auth, tenant, "ns", "later", later_body).status_code == 201
    second = create(server, target)
    third = create(server, target)
    digests = {
        name: hashlib.sha256(b).hexdigest()
        for name, b in (("kept", kept_body), ("dropped", dropped_body), ("later", later_body))
    }

    dry = backup_cli(
        server, target, "backup", "prune", target.url, "--keep", "2", "--dry-run", "--json"
    )
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["removed"] == [first["id"]]
    assert digests["dropped"] in target.run(blob_hashes)  # a dry run removes nothing

    pruned = backup_cli(server, target, "backup", "prune", target.url, "--keep", "2", "--json")
    assert pruned.returncode == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert report["removed"] == [first["id"]] and report["kept"] == [second["id"], third["id"]]
    left = target.run(blob_hashes)
    assert digests["dropped"] not in left
    assert {digests["kept"], digests["later"]} <= left.keys()
    for backup_id in report["kept"]:
        verified = backup_cli(server, target, "backup", "verify", target.url, "--id", backup_id)
        assert verified.returncode == 0, verified.stdout
    assert kept  # referenced by both kept backups


def test_backup_commands_have_help_and_one_line_errors(server: Server, target: Target) -> None:
    for args in (
        ["backup"],
        ["backup", "create"],
        ["backup", "list"],
        ["backup", "verify"],
        ["backup", "prune"],
    ):
        result = run_cli([*args, "--help"], server.env)
        assert result.returncode == 0 and "Usage:" in result.stdout
    bad = run_cli(["backup", "prune", target.url], {**server.env, **target.env})
    assert bad.returncode == 2 and "--keep" in bad.stderr
    empty = run_cli(
        ["backup", "list", target.url + "-empty", "--json"], {**server.env, **target.env}
    )
    assert empty.returncode == 0 and json.loads(empty.stdout) == []
    nothing = run_cli(["backup", "verify", target.url + "-empty"], {**server.env, **target.env})
    assert nothing.returncode == 3
    assert nothing.stderr.strip().startswith("Error: NotFound: no complete backup")
    assert "Traceback" not in nothing.stderr
    # A target that cannot be one: exit 2 and one line, never a directory ./http:/…
    afile = server.data_dir / f"afile-{unique_name()}"
    afile.write_bytes(b"x")
    for unusable in (str(afile), str(afile / "below"), "http://127.0.0.1:1/x", "ftp://x"):
        refused = run_cli(["backup", unusable], server.env)
        assert refused.returncode == 2, (unusable, refused.stderr)
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:"), refused.stderr
    if target.url.startswith("s3://"):
        wrong = {**server.env, **target.env, "JUSTSTORAGE_BACKUP_AWS_SECRET_ACCESS_KEY": "wrong"}
        denied = run_cli(["backup", "list", target.url], wrong)
        lines = denied.stderr.strip().splitlines()
        assert denied.returncode in (11, 13) and len(lines) == 1, denied.stderr
        assert "wrong" not in denied.stderr


def test_backup_shows_progress_on_stderr_and_a_summary_on_stdout(
    server: Server, target: Target
) -> None:
    tenant = unique_name()
    data = os.urandom(300_000)
    assert upload(server.client, server.admin_headers(), tenant, "ns", "p", data).status_code == 201
    result = backup_cli(server, target, "backup", target.url, "--progress", "--parallel", "2")
    assert result.returncode == 0, result.stderr
    assert "blobs (" in result.stderr and "to copy" in result.stderr
    assert "transferred at" in result.stderr  # the progress line's last word
    [summary] = result.stdout.splitlines()
    assert summary.startswith("backup ") and "already present" in summary
