"""Several JustStorage hosts over one PostgreSQL and one blob store (issue #10, part 5).

Every host, the database, the blob store and the clients live in network
namespaces of their own on a bridge this module creates (see README.md here).
"""

from __future__ import annotations

import pytest
from load import Load, verify

from conftest import MakeStore

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
