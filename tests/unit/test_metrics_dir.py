"""Setting up the multiprocess metrics directory removes only prometheus-client's files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import values

from juststorage.adapters import metrics


@pytest.fixture
def restore_value_class(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    # Recorded as absent (or its old value): restored after the test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "unused")
    yield


@pytest.mark.usefixtures("restore_value_class")
def test_only_stale_metric_files_are_removed(tmp_path: Path) -> None:
    stale = ["counter_12.db", "histogram_7.db", "gauge_livesum_3.db", "gauge_all_9.db"]
    kept = ["meta.db", "counter.db", "notes.txt", "counter_12.db.bak"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    metrics.enable_multiprocess_metrics(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
