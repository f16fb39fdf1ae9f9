"""Backups (SPEC §8.9): the format, the targets and one run of `create_backup` on a
real SQLite file and a real PostgreSQL, with real blob roots, into a real directory
and a real S3 bucket (SeaweedFS)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from juststorage.adapters.metadata.dump import database_row
from juststorage.application.apikeys import create_api_key, revoke_api_key
from juststorage.application.backup import BackupFailed, create_backup, repair_blobs
from juststorage.application.backup_format import (
    COLUMNS,
    BackupCorrupt,
    Manifest,
    MetadataHeader,
    MetadataRef,
    TenantUsage,
    blob_key,
    decode_row,
    encode_row,
    hash_of_blob_key,
    is_backup_id,
    list_backups,
    manifest_key,
    new_backup_id,
    read_manifest,
    read_metadata,
)
from juststorage.application.backup_ports import BackupTarget
from juststorage.application.backup_upkeep import (
    PRUNE_MARKER,
    STALE_AFTER_S,
    BackupBusy,
    metadata_damage,
    prune_backups,
    verify_backup,
)
from juststorage.application.deletes import delete_object
from juststorage.application.uploads import UploadRequest, UploadResult
from juststorage.bootstrap import Services, build, build_backup_target, build_metadata_dumper
from juststorage.config import Settings
from juststorage.domain.errors import NotFound
from juststorage.domain.model import Namespace, ObjectKey, StorageClass, TenantId
from juststorage.domain.timestamps import utc_text
from support.s3_servers import S3Server

pytestmark = pytest.mark.anyio

FILES = Namespace("files")
LIMIT = 1000  # the inline threshold of these tests


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = build(
        Settings(data_dir=tmp_path / "data", database_url=database_url, inline_max_bytes=LIMIT)
    )
    await built.metadata.migrate()
    await built.blobs.prepare()
    try:
        yield built
    finally:
        await built.metadata.close()


@pytest.fixture(
    params=[
        "directory",
        pytest.param("seaweedfs", marks=pytest.mark.s3),
        pytest.param("radosgw", marks=pytest.mark.s3),
    ]
)
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BackupTarget]:
    if request.param == "directory":
        made = build_backup_target(Settings(data_dir=tmp_path), str(tmp_path / "backups" / "t"))
    else:
        weed: S3Server = request.getfixturevalue(request.param)
        settings = Settings(
            data_dir=tmp_path,
            backup_aws_endpoint_url=weed.endpoint_url,
            backup_aws_access_key_id=weed.env()["AWS_ACCESS_KEY_ID"],
            backup_aws_secret_access_key=weed.env()["AWS_SECRET_ACCESS_KEY"],
            backup_aws_region=weed.env()["AWS_REGION"],
            backup_aws_allow_http=True,
        )
        made = build_backup_target(settings, weed.root())
    try:
        yield made
    finally:
        await made.close()


async def upload(
    services: Services, tenant: str, key: str, data: bytes, storage_class: str = "hot"
) -> UploadResult:
    async def body() -> AsyncIterator[bytes]:
        yield data

    request = UploadRequest(
        TenantId(tenant), FILES, ObjectKey(key), storage_class=StorageClass(storage_class)
    )
    return await services.uploader.upload(request, body())


async def backup(services: Services, target: BackupTarget) -> Manifest:
    manifest, _ = await create_backup(
        target=target,
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=services.blobs,
        clock=services.clock,
        parallel=3,
    )
    return manifest


async def stored_blobs(target: BackupTarget) -> dict[str, bytes]:
    found = {}
    async for page in target.list_keys("blobs/"):
        for key in page:
            digest = hash_of_blob_key(key)
            assert digest is not None, key
            found[digest] = await target.get_bytes(key)
    return found


def test_rows_survive_the_json_codec() -> None:
    row = {
        "id": "a",
        "key_hash": "h",
        "tenants": ["t1", "*"],
        "scopes": [],
        "created_at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        "revoked_at": None,
    }
    encoded = encode_row("api_keys", row)
    assert encoded["created_at"] == "2026-01-02T03:04:05.678901+00:00"
    assert decode_row("api_keys", json.loads(json.dumps(encoded))) == row
    with pytest.raises(ValueError, match="columns"):
        encode_row("api_keys", {**row, "extra": 1})
    with pytest.raises(ValueError, match="timestamp"):
        decode_row("api_keys", {**encoded, "created_at": 5})


async def test_a_backup_holds_the_committed_rows_and_one_copy_of_each_blob(
    services: Services, target: BackupTarget
) -> None:
    small, large = b"small bytes" * 3, bytes(range(256)) * 40  # inline / a file
    kept = [
        await upload(services, "acme", "small", small),
        await upload(services, "acme", "small-cold", small, "cold"),  # same hash, other class
        await upload(services, "acme", "large", large),
        await upload(services, "beta", "large", large),  # dedup: one blob row
    ]
    gone = await upload(services, "acme", "gone", b"deleted before the backup")
    await delete_object(services.metadata, TenantId("acme"), gone.version.id)
    key = await create_api_key(services.metadata, services.clock, ["acme"], ["admin"])
    revoked = await create_api_key(services.metadata, services.clock, ["beta"], ["objects:read"])
    await revoke_api_key(services.metadata, revoked.record.id)

    manifest = await backup(services, target)

    assert (manifest.objects, manifest.blobs, manifest.copied_blobs) == (4, 2, 2)
    assert manifest.object_bytes == 2 * len(small) + 2 * len(large)
    assert manifest.blob_bytes == len(small) + len(large)
    assert manifest.usage["acme"].objects == {"hot": 2, "cold": 1}
    assert manifest.usage["beta"].size_bytes == {"hot": len(large)}
    assert await stored_blobs(target) == {
        hashlib.sha256(small).hexdigest(): small,
        hashlib.sha256(large).hexdigest(): large,
    }
    assert await read_manifest(target, manifest.id) == manifest
    items = [item async for item in read_metadata(target, manifest)]
    header = items[0]
    assert isinstance(header, MetadataHeader) and header.snapshot_at >= manifest.started_at
    rows: dict[str, list[dict[str, object]]] = {}
    for item in items[1:]:
        assert isinstance(item, tuple)
        rows.setdefault(item[0], []).append(item[1])
    assert {r["id"] for r in rows["objects"]} == {str(k.version.id) for k in kept}
    assert {r["state"] for r in rows["objects"]} == {"COMMITTED"}
    assert sorted((r["storage_class"], r["size_bytes"]) for r in rows["blobs"]) == [
        ("cold", len(small)),
        ("hot", len(small)),
        ("hot", len(large)),
    ]
    keys = {r["id"]: r for r in rows["api_keys"]}
    assert keys.keys() == {key.record.id, revoked.record.id}
    assert keys[revoked.record.id]["revoked_at"] is not None
    assert keys[key.record.id]["tenants"] == ["acme"]
    [info] = await list_backups(target)
    assert info.complete and info.manifest == manifest
    assert not await target.exists(f"backups/{manifest.id}/in-progress")

    again = await backup(services, target)
    assert (again.copied_blobs, again.skipped_blobs, again.objects) == (0, 2, 4)
    assert [b.id for b in await list_backups(target)] == sorted([manifest.id, again.id])


async def test_a_tampered_manifest_or_metadata_fails_its_hash(
    services: Services, target: BackupTarget
) -> None:
    await upload(services, "acme", "k", b"some bytes")
    manifest = await backup(services, target)
    raw = await target.get_bytes(manifest_key(manifest.id))
    await target.put_bytes(manifest_key(manifest.id), raw.replace(b'"objects": 1', b'"objects": 2'))
    with pytest.raises(BackupCorrupt, match="does not match manifest.sha256"):
        await read_manifest(target, manifest.id)
    [info] = await list_backups(target)
    assert not info.complete and "manifest.sha256" in (info.problem or "")

    await target.put_bytes(manifest_key(manifest.id), raw)
    plain = gzip.decompress(await target.get_bytes(manifest.metadata.path))
    await target.put_bytes(manifest.metadata.path, gzip.compress(plain.replace(b"acme", b"acmf")))
    with pytest.raises(BackupCorrupt, match="does not match the manifest"):
        _ = [item async for item in read_metadata(target, manifest)]
    with pytest.raises(NotFound):
        await read_manifest(target, "20000101T000000Z-00000000")


async def test_a_stream_that_fails_leaves_nothing_at_its_key(target: BackupTarget) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        raise RuntimeError("source failed")

    key = blob_key("ab" * 32)
    with pytest.raises(RuntimeError, match="source failed"):
        await target.put_stream(key, failing())
    assert not await target.exists(key)
    assert [k async for page in target.list_keys("") for k in page] == []
    await target.put_bytes(key, b"done")
    assert await target.get_bytes(key) == b"done"
    assert b"".join([c async for c in target.get_stream(key)]) == b"done"
    await target.delete(key)
    await target.delete(key)  # a missing key is no error
    assert not await target.exists(key)


def test_backup_ids_sort_by_their_start_within_a_second_too() -> None:
    base = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    moments = [base.replace(microsecond=m) for m in (0, 1, 999, 500_000, 999_999)]
    ids = [new_backup_id(m) for m in moments]
    assert sorted(ids) == ids and all(is_backup_id(i) for i in ids)
    assert ids[0].startswith("20260102T030405Z-00000")


async def test_prune_and_a_backup_refuse_to_run_beside_each_other(
    services: Services, target: BackupTarget
) -> None:
    await upload(services, "acme", "k", bytes(range(256)) * 40)  # a file: read through open
    refusals: list[str] = []

    class PruneOnFirstOpen:
        def __getattr__(self, name: str) -> Any:
            return getattr(services.blobs, name)

        async def open(self, location: Any, **kwargs: Any) -> Any:
            if not refusals:
                with pytest.raises(BackupBusy, match="in progress") as refused:
                    await prune_backups(target, services.clock, keep=1)
                refusals.append(refused.value.message)
            return await services.blobs.open(location, **kwargs)

    manifest, _ = await create_backup(
        target=target,
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=PruneOnFirstOpen(),  # type: ignore[arg-type]
        clock=services.clock,
    )
    assert refusals and manifest.copied_blobs == 1

    # A prune's fresh marker: a backup refuses to start, and leaves nothing behind.
    beat = utc_text(services.clock.now(), fraction_digits=6)
    marker = json.dumps({"started_at": beat, "heartbeat": beat}).encode()
    await target.put_bytes(PRUNE_MARKER, marker)
    with pytest.raises(BackupBusy, match="a prune is running"):
        await backup(services, target)
    assert [b.id for b in await list_backups(target)] == [manifest.id]
    await target.delete(PRUNE_MARKER)
    report = await prune_backups(target, services.clock, keep=1)
    assert report.kept == [manifest.id] and report.blobs_removed == 0
    assert not await target.exists(PRUNE_MARKER)


async def test_database_row_gives_back_what_each_database_stores(
    services: Services, target: BackupTarget
) -> None:
    """What a restore binds (`database_row`) is what the source database held."""
    await upload(services, "acme", "k", b"bytes")
    await create_api_key(services.metadata, services.clock, ["acme", "beta"], ["objects:read"])
    manifest = await backup(services, target)
    header = None
    restored: dict[str, list[tuple[object, ...]]] = {"objects": [], "api_keys": []}
    async for item in read_metadata(target, manifest):
        if isinstance(item, MetadataHeader):
            header = item
        elif item[0] in restored:
            assert header is not None
            restored[item[0]].append(database_row(header.backend, item[0], item[1]))
    assert header is not None
    async with services.metadata.snapshot() as view:
        for table, order in (("objects", "commit_seq"), ("api_keys", "id")):
            columns = ", ".join(COLUMNS[table])
            stored = await view.session.fetchall(  # type: ignore[attr-defined]
                f"SELECT {columns} FROM {table} ORDER BY {order}", ()
            )
            assert [tuple(r) for r in stored] == restored[table], table


def test_blob_keys_and_manifests_round_trip() -> None:
    digest = "ab" + "0" * 62
    assert hash_of_blob_key(blob_key(digest)) == digest
    for bad in ("blobs/ac/" + digest, "blobs/ab/" + digest.upper(), "blobs/ab", "x/ab/" + digest):
        assert hash_of_blob_key(bad) is None
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    manifest = Manifest(
        id=new_backup_id(moment),
        started_at=moment,
        snapshot_at=moment,
        snapshot_taken_by=moment,
        finished_at=moment,
        backend="postgresql",
        schema=11,
        objects=3,
        object_bytes=30,
        blobs=2,
        blob_bytes=20,
        usage={"acme": TenantUsage({"hot": 3}, {"hot": 30})},
        metadata=MetadataRef("backups/x/metadata.jsonl.gz", "0" * 64, 10),
        copied_blobs=1,
        copied_bytes=10,
        skipped_blobs=1,
    )
    raw = manifest.to_bytes()
    assert Manifest.from_bytes(raw, expected_sha256=hashlib.sha256(raw).hexdigest()) == manifest
    assert json.loads(raw)["usage"] == {"acme": {"objects": {"hot": 3}, "bytes": {"hot": 30}}}
    with pytest.raises(BackupCorrupt, match="malformed"):
        Manifest.from_bytes(raw.replace(b'"objects": 3', b'"objects": "x"'))


class _Later:
    """A clock `delta` ahead of another: a prune on a host whose clock runs ahead, or
    one that judges a backup's heartbeat after the backup stalled that long."""

    def __init__(self, inner: Any, delta: timedelta) -> None:
        self.inner, self.delta = inner, delta

    def now(self) -> datetime:
        return self.inner.now() + self.delta  # type: ignore[no-any-return]


async def test_a_prune_that_takes_a_running_backup_for_dead_makes_it_fail_not_complete(
    services: Services, target: BackupTarget
) -> None:
    await upload(services, "acme", "first", b"first " * 4000)
    first = await backup(services, target)
    # A killed run copied these blobs and left no manifest: only it references them.
    for i in range(3):
        data = f"later {i} ".encode() * 4000
        await upload(services, "acme", f"later{i}", data)
        await target.put_bytes(blob_key(hashlib.sha256(data).hexdigest()), data)

    pruned: list[Any] = []
    listing = target.list_sizes

    async def slow_listing(prefix: str) -> AsyncIterator[list[tuple[str, int]]]:
        async for page in listing(prefix):
            yield page
        if prefix == "blobs/" and not pruned:
            # The listing outlasts a prune's patience (a minute): prune runs now.
            later = _Later(services.clock, timedelta(seconds=STALE_AFTER_S + 1))
            pruned.append(await prune_backups(target, later, keep=1))  # type: ignore[arg-type]

    target.list_sizes = slow_listing  # type: ignore[method-assign]
    with pytest.raises(BackupFailed, match="a prune removed"):
        await backup(services, target)
    assert pruned and pruned[0].blobs_removed == 3
    infos = await list_backups(target)
    assert [i.id for i in infos if i.complete] == [first.id]
    # Run again: it copies the blobs the prune removed, and is complete and whole.
    again = await backup(services, target)
    assert again.copied_blobs == 3
    assert (await verify_backup(target, again.id)).ok


async def test_a_blob_of_the_wrong_size_in_the_target_is_copied_again(
    services: Services, target: BackupTarget
) -> None:
    big, small = bytes(range(256)) * 40, b"inline bytes"
    for key, data in (("big", big), ("small", small)):
        await upload(services, "acme", key, data)
    await backup(services, target)
    # Truncated by a bad rsync; emptied: each skipped for good before.
    await target.put_bytes(blob_key(hashlib.sha256(big).hexdigest()), big[:100])
    await target.put_bytes(blob_key(hashlib.sha256(small).hexdigest()), b"")
    again = await backup(services, target)
    assert again.copied_blobs == 2 and again.skipped_blobs == 0
    assert (await verify_backup(target, again.id)).ok
    stored = await stored_blobs(target)
    assert stored[hashlib.sha256(big).hexdigest()] == big


async def test_verify_repair_copies_damaged_and_missing_blobs_from_the_store(
    services: Services, target: BackupTarget
) -> None:
    datas = [bytes([i]) * 5000 for i in range(3)] + [b"tiny"]
    for i, data in enumerate(datas):
        await upload(services, "acme", f"k{i}", data, "cold" if i == 1 else "hot")
    manifest = await backup(services, target)
    flipped, gone = (hashlib.sha256(d).hexdigest() for d in (datas[0], datas[3]))
    damaged = bytearray(datas[0])
    damaged[7] ^= 1
    await target.put_bytes(blob_key(flipped), bytes(damaged))  # same size: only a hash finds it
    await target.delete(blob_key(gone))
    report = await verify_backup(target, manifest.id)
    assert report.corrupt == [flipped] and report.missing == [gone]

    repaired = await repair_blobs(
        target=target,
        manifest=manifest,
        hashes=report.missing + report.corrupt,
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=services.blobs,
    )
    assert sorted(repaired.repaired) == sorted([flipped, gone]) and not repaired.unrepairable
    assert (await verify_backup(target, manifest.id)).ok

    # A blob the store no longer holds cannot be repaired, and says why.
    unknown = hashlib.sha256(b"never stored").hexdigest()
    nothing = await repair_blobs(
        target=target,
        manifest=manifest,
        hashes=[unknown],
        dumper=build_metadata_dumper(services.settings, services.clock),
        blobs=services.blobs,
    )
    assert nothing.unrepairable == {unknown: "the backup's metadata names no such blob"}


async def test_no_blob_is_written_to_the_target_while_the_snapshot_is_open(
    services: Services, target: BackupTarget
) -> None:
    inline = [f"inline {i}".encode() for i in range(5)]  # under LIMIT: in the database
    for i, data in enumerate(inline):
        await upload(services, "acme", f"i{i}", data)
    await upload(services, "acme", "file", b"f" * (LIMIT + 1))
    dumper = build_metadata_dumper(services.settings, services.clock)
    events: list[str] = []
    opened = dumper.snapshot

    @contextlib.asynccontextmanager
    async def watched() -> AsyncIterator[Any]:
        async with opened() as snapshot:
            events.append("snapshot open")
            yield snapshot
        events.append("snapshot closed")

    dumper.snapshot = watched  # type: ignore[method-assign]
    put = target.put_stream

    async def recorded(key: str, chunks: AsyncIterator[bytes]) -> int:
        if key.startswith("blobs/"):
            events.append("blob put")
        return await put(key, chunks)

    target.put_stream = recorded  # type: ignore[method-assign]

    class Reads:
        def __init__(self) -> None:
            self.seen: list[tuple[str, int]] = []

        def planned(self, blobs: int, size: int) -> None:
            self.seen.append(("planned", blobs))

        def copied(self, size: int) -> None:
            return None

        def read(self, rows: int) -> None:
            self.seen.append(("read", rows))

    observer = Reads()
    manifest, _ = await create_backup(
        target=target, dumper=dumper, blobs=services.blobs, clock=services.clock, observer=observer
    )
    assert manifest.copied_blobs == 6
    assert events.index("snapshot closed") < events.index("blob put")
    assert events.count("blob put") == 6
    # The rows read are reported before the plan (a long snapshot shows progress).
    assert observer.seen[0] == ("read", 6 + 6) and observer.seen[1] == ("planned", 6)
    assert (await stored_blobs(target))[hashlib.sha256(inline[0]).hexdigest()] == inline[0]


async def test_list_finds_a_complete_backup_whose_metadata_file_is_cut_or_gone(
    services: Services, target: BackupTarget
) -> None:
    await upload(services, "acme", "k", b"metadata damage" * 100)
    first, second = await backup(services, target), await backup(services, target)
    assert await metadata_damage(target, await list_backups(target)) == {}
    raw = await target.get_bytes(first.metadata.path)
    await target.put_bytes(first.metadata.path, raw[:-10])
    await target.delete(second.metadata.path)
    damage = await metadata_damage(target, await list_backups(target))
    assert damage == {
        first.id: f"its metadata file has {len(raw) - 10} bytes, the manifest says {len(raw)}",
        second.id: f"its metadata file {second.metadata.path} is missing",
    }
