"""Request metrics counted in plain values first: what a scrape exports is what
prometheus-client's own instruments would show for the same observations, and the
counts reach this process's multiprocess file within one turn of the event loop
(another process's scrape reads only the files)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest, values
from prometheus_client.mmap_dict import MmapedDict

from juststorage.adapters import metrics

DURATIONS = [0.0004, 0.001, 0.0011, 0.003, 0.2, 0.9999, 7.0, 61.0, 120.0]
FIRST_BYTES = [0.0002, 0.0009, 0.001, 0.002, 0.1, 0.5, 2.6, 30.0, 90.0]


def _samples(text: bytes, prefix: str) -> dict[str, float]:
    out = {}
    for line in text.decode().splitlines():
        if line.startswith(prefix):
            name, _, number = line.rpartition(" ")
            out[name] = float(number)
    return out


def test_scrape_equals_prometheus_instruments_fed_directly() -> None:
    m = metrics.Metrics()
    for seconds, first_byte in zip(DURATIONS, FIRST_BYTES, strict=True):
        m.observe_request("POST", 201, "ns", seconds, first_byte)
    m.observe_request("GET", 404, "", 0.002, 0.001)
    m.observe_request("GET", 500, "", 0.003, None)  # no answer started: no first byte
    m.uploaded_bytes.inc(4096)
    m.uploaded_bytes.inc(10)
    m.dedup_hits.inc()
    text = m.render()  # outside an event loop: counted at once; render flushes anyway
    reference = _reference("just_storage_request_duration_seconds")
    for seconds in DURATIONS:
        reference.labels("POST", "ns").observe(seconds)
    reference.labels("GET", "").observe(0.002)
    reference.labels("GET", "").observe(0.003)
    expected = _samples(
        generate_latest(_registry_of(reference)), "just_storage_request_duration_seconds"
    )
    got = _samples(text, "just_storage_request_duration_seconds")
    assert got == expected and got
    first_reference = _reference("just_storage_time_to_first_byte_seconds")
    for first_byte in FIRST_BYTES:
        first_reference.labels("POST", "ns").observe(first_byte)
    first_reference.labels("GET", "").observe(0.001)
    expected = _samples(
        generate_latest(_registry_of(first_reference)), "just_storage_time_to_first_byte_seconds"
    )
    got = _samples(text, "just_storage_time_to_first_byte_seconds")
    assert got == expected and got
    requests = _samples(text, "just_storage_requests_total")
    assert requests == {
        'just_storage_requests_total{method="POST",namespace="ns",status="201"}': len(DURATIONS),
        'just_storage_requests_total{method="GET",namespace="",status="404"}': 1.0,
        'just_storage_requests_total{method="GET",namespace="",status="500"}': 1.0,
    }
    assert _samples(text, "just_storage_uploaded_bytes_total") == {
        "just_storage_uploaded_bytes_total": 4106.0
    }
    assert _samples(text, "just_storage_dedup_hits_total") == {"just_storage_dedup_hits_total": 1}


def _reference(name: str) -> Histogram:
    """prometheus-client's own histogram with the labels and buckets of `name`."""
    return Histogram(
        name,
        "reference",
        ["method", "namespace"],
        buckets=metrics._DURATION_BUCKETS,
        registry=CollectorRegistry(),
    )


def _registry_of(histogram: Histogram) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(histogram)
    return registry


@pytest.fixture
def multiprocess_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unused")  # restored after the test
    metrics.enable_multiprocess_metrics(tmp_path)
    yield tmp_path


def _file_total(directory: Path, sample: str) -> float:
    total = 0.0
    for path in directory.glob("counter_*.db"):
        for key, amount, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if f'"{sample}"' in key:
                total += amount
    return total


def test_counts_reach_the_process_file_within_one_loop_turn(multiprocess_dir: Path) -> None:
    async def serve() -> tuple[float, float]:
        m = metrics.Metrics(multiprocess_dir=multiprocess_dir)
        for _ in range(5):
            m.observe_request("POST", 201, "ns", 0.001, 0.0005)
        m.uploaded_bytes.inc(7)
        await asyncio.sleep(0)  # one turn of the loop: the scheduled flush runs
        return (
            _file_total(multiprocess_dir, "just_storage_requests_total"),
            _file_total(multiprocess_dir, "just_storage_uploaded_bytes_total"),
            _histogram_count(multiprocess_dir, "just_storage_time_to_first_byte_seconds"),
        )

    assert asyncio.run(serve()) == (5.0, 7.0, 5.0)


def _histogram_count(directory: Path, name: str) -> float:
    """Observations of histogram `name` in the files (the sum of its bucket values)."""
    total = 0.0
    for path in directory.glob("histogram_*.db"):
        for key, amount, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            if f'"{name}_bucket"' in key:
                total += amount
    return total


def test_checksum_mismatches_are_exported_from_zero() -> None:
    """Both sources are series before the first mismatch: an alert on increase()
    sees the first one (a series that starts at 1 shows no increase)."""
    m = metrics.Metrics()
    assert _samples(m.render(), "just_storage_checksum_mismatches_total") == {
        'just_storage_checksum_mismatches_total{source="upload"}': 0.0,
        'just_storage_checksum_mismatches_total{source="stored"}': 0.0,
    }
    m.observe_checksum_mismatch("stored")
    assert _samples(m.render(), "just_storage_checksum_mismatches_total") == {
        'just_storage_checksum_mismatches_total{source="upload"}': 0.0,
        'just_storage_checksum_mismatches_total{source="stored"}': 1.0,
    }


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        metrics.Metrics().uploaded_bytes.inc(-1)
