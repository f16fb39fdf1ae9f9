"""Several JustStorage hosts over one PostgreSQL and one blob store.

Every host, the database, the blob store and the clients live in network
namespaces of their own on a bridge this module creates (see README.md here).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from mh_cluster import MakeStore, Store
from mh_hosts import StorageHost
from mh_load import (
    AUTH,
    PATIENT,
    TENANT,
    Ack,
    Load,
    Phases,
    download,
    sha256_hex,
    upload,
    upload_one,
    verify,
)
from mh_netns import Host

from juststorage.testing import wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.postgres, pytest.mark.s3]


UPLOADS = 150


def test_read_after_write_from_another_host(make_store: MakeStore) -> None:
    """Six clients upload through every host in turn; each acknowledged upload is read
    back at once from a different host (same bytes, no 404)."""
    phases = Phases()
    store = make_store()
    phases.mark("3 hosts up")
    load = Load(
        store.cluster.client.netns,
        store.urls(),
        workers=6,
        max_uploads=UPLOADS,
        max_seconds=120,
        timeout=PATIENT,  # no host fails here: a slow request is not an error
    )
    try:
        load.wait_for_acks(UPLOADS, 120)
    finally:
        results = load.stop()
    assert not results.violations, results.violations[:10]
    assert len(results.acks) == UPLOADS, results.errors
    assert results.cross_host_reads == UPLOADS
    assert not results.errors, results.errors
    problems = verify(store.cluster.clients, store.hosts[0].url, results.acks)
    assert not problems, problems[:10]
    assert store.refcount_drift() == []
    assert store.usage_drift() == []
    phases.mark("verified")
    print(f"blobs on {store.cluster.backend}: {len(results.acks)} acks, all read back; {phases}")


def test_host_killed_and_host_cut_off_mid_load(make_store: MakeStore) -> None:
    phases = Phases()
    store = make_store()
    phases.mark("3 hosts up")
    js1, js2, js3 = store.hosts
    # Bounded by count and time; stopped as soon as the last phase has its acks. The
    # phases wait generously: a slow hour on a shared machine is not a failure.
    load = Load(
        store.cluster.client.netns, store.urls(), workers=6, max_uploads=3000, max_seconds=240
    )
    try:
        load.wait_for_acks(60, 60)
        js1.kill9()  # a host crash: SIGKILL, mid-request
        killed_at = time.time()
        phases.mark("js1 killed")
        load.wait_for_acks(len(load.results.acks) + 60, 60)
        js2.host.link_down()  # a host cut off: its cable pulled, its process still running
        cut_at = time.time()
        phases.mark("js2 cut off")
        wait_until(lambda: len(load.results.acks_after(cut_at)) >= 40, 90)
        phases.mark("40 acks by js3")
    finally:
        results = load.stop()
        phases.mark("load stopped")
    after_kill = results.acks_after(killed_at)
    after_cut = results.acks_after(cut_at)
    slowest = max((a.seconds for a in after_cut), default=0.0)
    summary = (
        f"{len(results.acks)} acks ({len(after_cut)} after the cut, slowest {slowest:.2f}s),"
        f" errors {dict(results.errors)}"
    )
    assert not results.violations, (results.violations[:10], summary, str(phases))
    assert len(after_cut) >= 40, (summary, str(phases))  # the remaining host kept serving
    assert {a.writer for a in after_kill} <= {"js2", "js3"}, summary
    assert {a.writer for a in after_cut} == {"js3"}, summary

    # No acknowledged object is lost: each one, whoever wrote it, from the survivor.
    problems = verify(store.cluster.clients, js3.url, results.acks)
    assert not problems, (problems[:10], summary)
    phases.mark(f"{len(results.acks)} acks verified on js3")

    # The cut host comes back by itself; the crashed one is restarted.
    js2.host.link_up()
    js1.launch()
    js1.wait_healthy(store.cluster.clients)
    phases.mark("js1 restarted")
    ready = wait_until(lambda: _ready(store, js2), 30)
    assert ready, f"js2 not ready 30 s after its link came back\n{js2.log()}"
    phases.mark("js2 ready again")
    for host in (js1, js2):  # both serve again (every ack was checked on js3 above)
        problems = verify(store.cluster.clients, host.url, results.acks[::10])
        assert not problems, (host.name, problems[:10])
    phases.mark("every 10th ack verified on js1, js2")

    # What the crash and the cut left behind, GC cleans; then the store is consistent.
    gc = js3.cli("gc", env={"JUSTSTORAGE_GC_GRACE_S": "0"})
    assert gc.returncode == 0, gc.stderr + gc.stdout
    assert store.refcount_drift() == []
    assert store.usage_drift() == []
    fsck = js3.cli("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert " 0 problems" in fsck.stdout, fsck.stdout
    phases.mark("gc, drift, fsck")
    print(f"{summary}; {phases}")


def _ready(store: Store, host: StorageHost) -> bool:
    def probe() -> bool:
        try:
            return httpx.get(f"{host.url}/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    return store.cluster.clients.run(probe)


OUTAGE_ANSWER_S = 15.0  # a host must answer (503) this fast while a dependency is cut off


def test_database_unreachable_gives_503_then_recovers(make_store: MakeStore) -> None:
    store = make_store()
    _outage_then_recovery(store, store.cluster.postgres.host, "database")


def test_blob_store_unreachable_gives_503_then_recovers(make_store: MakeStore) -> None:
    # A deployment bounds S3 calls too (the default, 60 s, suits multi-GB parts).
    # Inlining off: small objects would live in the database and need no blob store.
    store = make_store(JUSTSTORAGE_S3_TIMEOUT_SECONDS="3", JUSTSTORAGE_INLINE_MAX_BYTES="0")
    seaweed = store.cluster.seaweed
    if seaweed is None:
        pytest.skip("blobs on the shared file system: there is no blob-store link to cut")
    _outage_then_recovery(store, seaweed.host, "blob store")


def _outage_then_recovery(store: Store, dependency: Host, check: str) -> None:
    """Cut `dependency` off: every host answers 503 (not a hang, not a 500) to /ready,
    uploads and downloads; then put it back: every host recovers by itself."""
    phases = Phases()
    clients = store.cluster.clients
    urls = store.urls()
    before = clients.run(upload_one, urls["js1"], "before", b"stored before the outage")
    assert before.status_code == 201, before.text
    object_id = before.json()["id"]

    dependency.link_down()
    phases.mark(f"{dependency.name} cut off")
    try:
        calls = {
            f"{name} {what}": clients.submit(_timed, fn, url, *args)
            for name, url in urls.items()
            for what, fn, args in (
                ("ready", _ready_status, ()),
                ("upload", _upload_status, (f"during-{name}",)),
                ("download", _download_status, (object_id,)),
            )
        }
        answers = {what: call.result(timeout=60) for what, call in calls.items()}
        phases.mark("all answered")
    finally:
        dependency.link_up()
    slow = {what: a for what, a in answers.items() if a[1] > OUTAGE_ANSWER_S}
    wrong = {what: a for what, a in answers.items() if a[0] != 503}
    assert not wrong and not slow, (answers, str(phases))

    def all_ready() -> bool:
        return all(clients.run(_ready_status, url) == 200 for url in urls.values())

    assert wait_until(all_ready, 30, interval=0.3), (store.logs(), str(phases))
    phases.mark("all ready again")
    for name, url in urls.items():
        after = clients.run(upload_one, url, f"after-{name}", name.encode())
        assert after.status_code == 201, (name, after.text)
        read = clients.run(_download, url, object_id)
        assert read.status_code == 200 and read.content == b"stored before the outage"
    phases.mark("uploads and downloads on every host")
    print(f"{check} outage: {answers}; {phases}")


def _timed(fn: Callable[..., int], *args: str) -> tuple[int, float]:
    started = time.monotonic()
    status = fn(*args)
    return status, round(time.monotonic() - started, 2)


def _ready_status(url: str) -> int:
    return _get(f"{url}/ready").status_code


def _upload_status(url: str, key: str) -> int:
    response = upload_one(url, key, b"written during the outage", timeout=60)
    if response.status_code >= 400:
        assert response.json()["error"]["code"] == "Unavailable", response.text
    return response.status_code


def _download_status(url: str, object_id: str) -> int:
    return _download(url, object_id).status_code


def _statuses(url: str, object_ids: list[str]) -> set[int]:
    """The statuses of downloading each object (one connection for them all)."""
    with httpx.Client(trust_env=False, timeout=30) as client:
        return {download(client, url, oid).status_code for oid in object_ids}


def _download(url: str, object_id: str) -> httpx.Response:
    return _get(f"{url}/v1/objects/{object_id}", **AUTH, **{"X-Tenant": TENANT})


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=60)


def test_dedup_and_gc_races_across_hosts(make_store: MakeStore) -> None:
    """The same bytes uploaded at once through different hosts, deletes, and GC passes
    (each host's background loop with no grace, plus `juststorage gc` runs) racing
    them: reference counts stay exact and fsck finds nothing."""
    phases = Phases()
    store = make_store(JUSTSTORAGE_GC_INTERVAL_S="0.5", JUSTSTORAGE_GC_GRACE_S="0")
    phases.mark("3 hosts up")
    clients = store.cluster.clients
    urls = store.urls()
    names = sorted(urls)
    contents = [os.urandom(2048 + n) for n in range(5)]
    workers = 6
    start_together = threading.Barrier(workers)
    deadline = time.monotonic() + 8
    done = threading.Event()
    raced = threading.Event()  # GC ran RACING_PASSES passes during the load

    def worker(number: int) -> tuple[dict[str, Ack], set[str]]:
        live: dict[str, Ack] = {}
        deleted: set[str] = set()
        rng = random.Random(number)
        with httpx.Client(trust_env=False) as client:
            start_together.wait(timeout=30)
            for attempt in itertools.count():
                # 30 rounds each, and on until GC has raced them (on a fast machine
                # 30 rounds are over before the hosts' GC loops have run much).
                if time.monotonic() > deadline or (attempt >= 30 and raced.is_set()):
                    break
                data = contents[0] if attempt == 0 else rng.choice(contents)
                writer = names[(number + attempt) % len(names)]
                response = upload(
                    client, urls[writer], f"d{number}/{attempt}", data, timeout=PATIENT
                )
                assert response.status_code == 201, (writer, response.text)
                body = response.json()
                live[body["id"]] = Ack(
                    body["id"], body["key"], sha256_hex(data), len(data), writer, 0, 0
                )
                if live and rng.random() < 0.4:
                    victim = rng.choice(sorted(live))
                    via = rng.choice(names)
                    gone = client.delete(
                        f"{urls[via]}/v1/objects/{victim}",
                        headers={**AUTH, "X-Tenant": TENANT},
                        timeout=30,
                    )
                    assert gone.status_code == 204, (via, gone.text)
                    deleted.add(victim)
                    del live[victim]
        return live, deleted

    def gc_runs() -> int:
        passes = 0
        for turn in itertools.count():
            if done.is_set():
                return passes
            result = store.hosts[turn % 3].cli("gc", timeout=60)
            busy = "another process is running a GC pass" in result.stderr
            assert result.returncode == 0 or busy, result.stderr
            passes += not busy
            loops = sum(clients.run(_gc_runs, url) for url in urls.values())
            if passes + loops >= RACING_PASSES:
                raced.set()
        return passes

    gc_thread = ThreadPoolExecutor(1)
    gc_future = gc_thread.submit(gc_runs)
    try:
        futures = [clients.submit(worker, n) for n in range(workers)]
        outcomes = [f.result(timeout=90) for f in futures]
    finally:
        done.set()
        gc_passes = gc_future.result(timeout=90)
        gc_thread.shutdown()
    phases.mark("load and gc runs done")
    live = {oid: ack for kept, _ in outcomes for oid, ack in kept.items()}
    deleted = {oid for _, gone in outcomes for oid in gone}
    assert deleted and live

    assert store.refcount_drift() == [], store.logs()
    assert store.usage_drift() == []
    counts = "SELECT content_hash, ref_count FROM blobs"
    referenced = [h for h, ref in store.query(counts) if int(ref) > 0]
    assert len(referenced) == len({a.sha256 for a in live.values()}), referenced

    # The hosts' GC loops (no grace) remove every blob the deletes left unreferenced.
    def collected() -> bool:
        return all(int(ref) > 0 for _, ref in store.query(counts))

    assert wait_until(collected, 60, interval=0.3), store.query(counts)
    phases.mark("counts exact, garbage collected")

    # Every host serves live objects (each a third of them) and none of the deleted.
    acks, gone = list(live.values()), sorted(deleted)
    for n, host in enumerate(store.hosts):
        problems = verify(clients, host.url, acks[n::3])
        assert not problems, (host.name, problems[:10])
        statuses = clients.run(_statuses, host.url, gone[n::3])
        assert statuses <= {404}, (host.name, statuses)
    fsck = store.hosts[2].cli("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert " 0 problems" in fsck.stdout, fsck.stdout
    phases.mark("verified, fsck clean")
    loop_passes = sum(clients.run(_gc_runs, url) for url in urls.values())
    assert loop_passes + gc_passes >= RACING_PASSES, (loop_passes, gc_passes)  # GC raced
    print(
        f"{len(live)} live, {len(deleted)} deleted, {loop_passes} background GC passes,"
        f" {gc_passes} `juststorage gc` passes; {phases}"
    )


RACING_PASSES = 3


def _gc_runs(url: str) -> int:
    """GC passes a host's background loop ran (from its /metrics)."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    lines = [line for line in text.splitlines() if line.startswith("just_storage_gc_runs_total")]
    return sum(int(float(line.split()[-1])) for line in lines)
