"""/metrics with several server processes (`serve` with 3 workers): every scrape,
whichever process answers it, reports the totals of all of them."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.mmap_dict import MmapedDict

import juststorage
from juststorage.testing import Server, child_pids, start, wait_until
from support.debian_tools import debian_tool
from support.pg_databases import fresh_database

from .prometheus_text import family_names, parse_samples, value
from .support import by_key_path

pytestmark = pytest.mark.e2e

WORKERS = 3
KEY = "metrics-mp-test-key-0123456789abcdef"
TENANT, NAMESPACE, SLOW = "mp", "mpns", "slow"
UPLOADS = 48
DISTINCT = 6  # upload i stores body i % DISTINCT: the rest are dedup hits
THROTTLE_TRIES = 12


def _body(i: int) -> bytes:
    return hashlib.sha256(str(i % DISTINCT).encode()).digest() * (10 + i % DISTINCT)


_DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextlib.contextmanager
def _serving(request: pytest.FixtureRequest, root: Path, gc_grace_s: str) -> Iterator[Server]:
    """`serve` with WORKERS processes, once every one of them is up."""
    config = root / "limits.toml"
    # Tenant `slow` gets one request per process, then 429 for a long while.
    config.write_text(f"[tenants.{SLOW}]\nrate_limit_rps = 0.001\n", "utf-8")
    with contextlib.ExitStack() as stack:
        database = {}
        if request.param == "postgres":
            url = stack.enter_context(
                fresh_database(request.getfixturevalue("postgres_server_url"))
            )
            database["DATABASE_URL"] = url
        server = start(root, {**database, **_server_env(root, config, gc_grace_s)})
        try:
            # /health answered by one worker says nothing of the others: wait until
            # each has started sampling its gauges (a file per process), so requests
            # on fresh connections spread over all of them.
            workers_up = wait_until(lambda: len(_worker_gauge_files(root, server)) >= WORKERS, 60)
            assert workers_up, _worker_gauge_files(root, server)
            yield server
        finally:
            server.stop()


def _worker_gauge_files(root: Path, server: Server) -> list[str]:
    own = f"gauge_livesum_{server.process.pid}.db"  # `serve` itself, not a worker
    return [p.name for p in (root / "prom").glob("gauge_livesum_*.db") if p.name != own]


@pytest.fixture(scope="module", params=_DATABASES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """For the exact totals: GC runs (every 0.2 s) but its grace outlasts the tests, so no
    pass takes a file an upload has published and not yet committed (with grace 0
    one may: the commit links it back, but that upload then counts as a fresh copy
    instead of a dedup hit)."""
    with _serving(request, tmp_path_factory.mktemp(f"metrics-mp-{request.param}"), "600") as s:
        yield s


@pytest.fixture(scope="module", params=_DATABASES)
def gc_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """For GC's counters: no grace, so garbage goes at the next pass."""
    with _serving(request, tmp_path_factory.mktemp(f"metrics-gc-{request.param}"), "0") as s:
        yield s


def _server_env(root: Path, config: Path, gc_grace_s: str) -> dict[str, str]:
    return {
        "API_KEYS": f"{KEY}:*:admin",
        "JUSTSTORAGE_WORKERS": str(WORKERS),
        "JUSTSTORAGE_CONFIG": str(config),
        "JUSTSTORAGE_GC_INTERVAL_S": "0.2",
        "JUSTSTORAGE_GC_GRACE_S": gc_grace_s,
        "PROMETHEUS_MULTIPROC_DIR": str(root / "prom"),
    }


def _fresh_connection(
    server: Server,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    content: bytes | None = None,
) -> httpx.Response:
    """One request on its own connection, so the kernel hands it to any worker."""
    all_headers = {"Authorization": f"Bearer {KEY}", "Connection": "close", **(headers or {})}
    with httpx.Client(base_url=server.url, timeout=30.0, trust_env=False) as client:
        return client.request(method, path, headers=all_headers, params=params, content=content)


def _upload(server: Server, i: int) -> httpx.Response:
    return _fresh_connection(
        server,
        "POST",
        "/v1/objects",
        headers={"X-Tenant": TENANT, "X-Namespace": NAMESPACE, "X-Key": f"k{i}"},
        content=_body(i),
    )


def _uploads_counted_per_process(directory: Path) -> dict[str, float]:
    """{counter file: uploads of NAMESPACE it counted}, for the files that counted any."""
    counted = {}
    for path in directory.glob("counter_*.db"):
        total = 0.0
        for key, amount, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)
            if sample == "just_storage_requests_total" and labels.get("namespace") == NAMESPACE:
                total += amount if labels.get("method") == "POST" else 0
        if total:
            counted[path.name] = total
    return counted


def _scrape(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = _fresh_connection(server, "GET", "/metrics")
    assert response.status_code == 200
    return parse_samples(response.text)


def test_counters_are_totals_over_all_processes(server: Server) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        uploads = list(pool.map(lambda i: _upload(server, i), range(UPLOADS)))
        assert [r.status_code for r in uploads] == [201] * UPLOADS
        reads = list(
            pool.map(
                lambda i: _fresh_connection(server, "GET", by_key_path(NAMESPACE, TENANT, f"k{i}")),
                range(UPLOADS),
            )
        )
        assert [r.status_code for r in reads] == [200] * UPLOADS
        throttled = list(
            pool.map(
                lambda _: (
                    _fresh_connection(
                        server, "GET", "/v1/usage", params={"tenant": SLOW}
                    ).status_code
                ),
                range(THROTTLE_TRIES),
            )
        )
    assert set(throttled) <= {200, 429} and throttled.count(429) >= THROTTLE_TRIES - WORKERS

    # Several processes served (each counts in its own file) ...
    served = _uploads_counted_per_process(server.data_dir.parent / "prom")
    assert len(served) >= 2 and sum(served.values()) == UPLOADS, served
    # ... and every scrape, whichever process answers it, sees the same totals.
    sizes = [len(_body(i)) for i in range(UPLOADS)]
    saved = sum(sizes[DISTINCT:])
    for _ in range(2 * WORKERS):
        s = _scrape(server)
        assert (
            value(s, "just_storage_requests_total", method="POST", namespace=NAMESPACE) == UPLOADS
        )
        assert (
            value(s, "just_storage_requests_total", method="GET", status="200", namespace=NAMESPACE)
            == UPLOADS
        )
        assert (
            value(
                s, "just_storage_request_duration_seconds_count", method="POST", namespace=NAMESPACE
            )
            == UPLOADS
        )
        for method in ("POST", "GET"):
            assert (
                value(
                    s,
                    "just_storage_time_to_first_byte_seconds_count",
                    method=method,
                    namespace=NAMESPACE,
                )
                == UPLOADS
            )
        assert value(s, "just_storage_uploaded_bytes_total") == sum(sizes)
        assert value(s, "just_storage_downloaded_bytes_total") == sum(sizes)
        assert value(s, "just_storage_dedup_hits_total") == UPLOADS - DISTINCT
        assert value(s, "just_storage_dedup_bytes_saved_total") == saved
        assert value(s, "just_storage_throttled_requests_total", tenant=SLOW) == throttled.count(
            429
        )
        assert value(s, "just_storage_objects_total", tenant=TENANT, status="COMMITTED") == UPLOADS
        assert value(s, "just_storage_storage_bytes", storage_class="hot") == sum(sizes)
        assert value(s, "just_storage_db_connections_max") >= WORKERS  # one pool per process


def _removed_blobs_once_settled(server: Server) -> float:
    """GC's removed-blob total once every pass that began before this call has ended.

    Passes run one at a time (the GC lease): after two more of them end, any pass
    that was running when this was called has been counted.
    """
    runs = value(_scrape(server), "just_storage_gc_runs_total")
    assert wait_until(
        lambda: value(_scrape(server), "just_storage_gc_runs_total") >= runs + 2, timeout=30
    )
    return value(_scrape(server), "just_storage_gc_deleted_blobs_total")


def test_gc_counters_add_up_across_processes(gc_server: Server) -> None:
    server = gc_server
    stored = range(2 * DISTINCT)  # every body twice
    assert [_upload(server, i).status_code for i in stored] == [201] * len(stored)
    # With no grace a pass may take a file an upload has published but not committed
    # yet (the commit links it back): count only the removals the deletes cause.
    removed_before = _removed_blobs_once_settled(server)
    # Delete every version of the keys holding body 0: that one blob becomes garbage.
    doomed = [i for i in stored if i % DISTINCT == 0]
    for i in doomed:
        response = _fresh_connection(server, "DELETE", by_key_path(NAMESPACE, TENANT, f"k{i}"))
        assert response.status_code == 204
    assert wait_until(
        lambda: value(_scrape(server), "just_storage_gc_deleted_blobs_total") > removed_before,
        timeout=20,
    )
    # One blob, removed once (by whichever process ran that pass): another pass's
    # removal would show here as a second one.
    assert _removed_blobs_once_settled(server) == removed_before + 1
    s = _scrape(server)
    assert value(s, "just_storage_gc_runs_total") >= 1
    assert value(s, "just_storage_gc_duration_seconds_count") == value(
        s, "just_storage_gc_runs_total"
    )
    assert value(s, "just_storage_requests_total", method="DELETE", namespace=NAMESPACE) == len(
        doomed
    )


REPO = Path(__file__).resolve().parents[2]
_METRIC_NAME = re.compile(r"\bjust_storage_[a-z0-9_]+")


def _queries() -> dict[str, list[str]]:
    """Every PromQL expression of the dashboard and of the alert rules."""
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/juststorage.json").read_text())
    rules = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text())
    return {
        "dashboard": [t["expr"] for p in dashboard["panels"] for t in p["targets"]],
        "alerts": [r["expr"] for g in rules["groups"] for r in g["rules"]],
    }


def test_dashboard_and_alert_queries_use_only_exposed_metrics(server: Server) -> None:
    # Runs after the tests above: every kind of event (throttling, GC) has happened.
    response = _fresh_connection(server, "GET", "/metrics")
    exposed = family_names(response.text)
    for where, exprs in _queries().items():
        assert exprs, where
        used = {name for expr in exprs for name in _METRIC_NAME.findall(expr)}
        assert used, where
        missing = used - exposed
        assert not missing, f"{where} queries metrics the server does not expose: {missing}"


def test_process_metrics_and_build_info_cover_every_worker(server: Server) -> None:
    """Multiprocess mode registers no process collector: ours reports each live
    server process (CPU, resident memory, open descriptors), whichever answers."""
    text = _fresh_connection(server, "GET", "/metrics").text
    samples = parse_samples(text)
    workers = set(child_pids(server.process.pid))
    for family in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
        pids = {int(dict(labels)["pid"]) for name, labels in samples if name == family}
        assert len(pids & workers) >= WORKERS, (family, pids, workers)
    fds = [labels for name, labels in samples if name == "process_open_fds"]
    assert len(fds) >= WORKERS
    (build,) = [dict(labels) for name, labels in samples if name == "just_storage_build_info"]
    assert build["version"] == juststorage.__version__


def test_exposition_passes_promtool_but_for_the_names_the_spec_fixes(server: Server) -> None:
    """`promtool check metrics` finds nothing but what SPEC §2 fixes (documented in
    docs/operations.md): `just_storage_objects_total` is a gauge with a counter's
    suffix."""
    promtool = debian_tool("promtool", "prometheus")
    text = _fresh_connection(server, "GET", "/metrics").text
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    problems = [line for line in (checked.stdout + checked.stderr).splitlines() if line.strip()]
    unexpected = [line for line in problems if not line.startswith(SPEC_FIXED)]
    assert not unexpected, problems


SPEC_FIXED = ('just_storage_objects_total non-counter metrics should not have "_total" suffix',)
