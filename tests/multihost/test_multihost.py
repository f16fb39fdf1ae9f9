"""Several JustStorage hosts over one PostgreSQL and one blob store (issue #10, part 5).

Every host, the database, the blob store and the clients live in network
namespaces of their own on a bridge this module creates (see README.md here).
"""

from __future__ import annotations

import time

import httpx
import pytest
from cluster import MakeStore, Store
from hosts import StorageHost
from load import Load, Phases, upload_one, verify

from server_process import wait_until

pytestmark = [pytest.mark.multihost, pytest.mark.postgres]


def test_read_after_write_from_another_host(make_store: MakeStore) -> None:
    store = make_store()
    load = Load(
        store.cluster.client.netns, store.urls(), workers=6, max_uploads=300, max_seconds=20
    )
    load.wait_for_acks(300, 30)
    results = load.stop()
    assert not results.violations, results.violations[:10]
    assert len(results.acks) == 300, results.errors
    assert results.cross_host_reads == 300
    assert not results.errors, results.errors
    problems = verify(store.cluster.clients, store.hosts[0].url, results.acks)
    assert not problems, problems[:10]
    assert store.refcount_drift() == []
    assert store.usage_drift() == []


def test_host_killed_and_host_cut_off_mid_load(make_store: MakeStore) -> None:
    phases = Phases()
    store = make_store()
    phases.mark("3 hosts up")
    js1, js2, js3 = store.hosts
    load = Load(
        store.cluster.client.netns, store.urls(), workers=6, max_uploads=3000, max_seconds=30
    )
    try:
        load.wait_for_acks(60, 20)
        js1.kill9()  # a host crash: SIGKILL, mid-request
        killed_at = time.time()
        phases.mark("js1 killed")
        load.wait_for_acks(len(load.results.acks) + 60, 20)
        js2.host.link_down()  # a host cut off: its cable pulled, its process still running
        cut_at = time.time()
        phases.mark("js2 cut off")
        wait_until(lambda: len(load.results.acks_after(cut_at)) >= 60, 20)
        phases.mark("60 acks by js3")
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
    assert len(after_cut) >= 60, (summary, str(phases))  # the remaining host kept serving
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
    for host in (js1, js2):
        problems = verify(store.cluster.clients, host.url, results.acks)
        assert not problems, (host.name, problems[:10])
    phases.mark("acks verified on js1, js2")

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


def test_database_unreachable_gives_503_then_recovers(make_store: MakeStore) -> None:
    phases = Phases()
    store = make_store()
    clients = store.cluster.clients
    urls = store.urls()
    before = clients.run(_put, urls["js1"], "before", b"stored before the outage")
    assert before.status_code == 201, before.text
    object_id = before.json()["id"]

    store.cluster.postgres.host.link_down()
    phases.mark("database cut off")
    try:
        for name, url in urls.items():
            started = time.monotonic()
            ready = clients.run(_get, f"{url}/ready")
            phases.mark(f"{name} /ready {ready.status_code} in {time.monotonic() - started:.1f}s")
            print(ready.status_code, ready.text, phases)
    finally:
        store.cluster.postgres.host.link_up()
    print(phases)


def _put(url: str, key: str, data: bytes) -> httpx.Response:
    return upload_one(url, key, data)


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=90)
