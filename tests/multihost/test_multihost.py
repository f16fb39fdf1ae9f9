"""Several JustStorage hosts over one PostgreSQL and one blob store (issue #10, part 5).

Every host, the database, the blob store and the clients live in network
namespaces of their own on a bridge this module creates (see README.md here).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from cluster import MakeStore, Store
from hosts import StorageHost
from load import AUTH, TENANT, Load, Phases, upload_one, verify
from netns import Host

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


OUTAGE_ANSWER_S = 15.0  # a host must answer (503) this fast while a dependency is cut off


def test_database_unreachable_gives_503_then_recovers(make_store: MakeStore) -> None:
    store = make_store()
    _outage_then_recovery(store, store.cluster.postgres.host, "database")


def test_blob_store_unreachable_gives_503_then_recovers(make_store: MakeStore) -> None:
    store = make_store()
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


def _download(url: str, object_id: str) -> httpx.Response:
    return _get(f"{url}/v1/objects/{object_id}", **AUTH, **{"X-Tenant": TENANT})


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers=headers, timeout=60)
