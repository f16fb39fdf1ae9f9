"""Fixtures of the multi-host test: the network and its hosts, and a fresh store per test.

One network per module (namespaces for PostgreSQL, SeaweedFS, three JustStorage
hosts and the clients, on a bridge of their own); per test a fresh database, a
fresh blob prefix and three freshly started `juststorage serve` processes.
Without root or `ip netns` the module skips locally and fails under CI=true.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
from mh_cluster import (
    SERVER_HOSTS,
    Cluster,
    MakeStore,
    Store,
    blob_backend,
    close_network,
    in_ci,
    in_namespace,
    problem,
    server_env,
)
from mh_hosts import PostgresHost, SeaweedHost, StorageHost, stop_all, wait_all
from mh_netns import NamespaceThreads, Network


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    found = problem()
    if found is not None:
        if in_ci():
            pytest.fail(f"CI=true: {found}", pytrace=False)
        pytest.skip(found)
    log_dir = tmp_path_factory.mktemp("multihost")
    backend = blob_backend()
    with contextlib.ExitStack() as stack:
        network = Network()
        stack.callback(close_network, network)
        pg_host = network.add_host("pg")
        s3_host = network.add_host("s3")
        for name in SERVER_HOSTS:
            network.add_host(name)
        client = network.add_host("client")
        clients = NamespaceThreads(client.netns, 8)
        stack.callback(clients.close)
        postgres = PostgresHost.start(pg_host, clients, log_dir)
        stack.callback(postgres.stop)
        seaweed = None
        if backend == "s3":
            seaweed = SeaweedHost.start(s3_host, clients, log_dir)
            stack.callback(seaweed.stop)
        yield Cluster(network, clients, client, postgres, seaweed, log_dir, backend)


@pytest.fixture
def make_store(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[MakeStore]:
    """`make_store(JUSTSTORAGE_X="1", ...)`: a fresh database and blob root, three hosts up."""
    with contextlib.ExitStack() as stack:

        def factory(**extra_env: str) -> Store:
            clients = cluster.clients
            database_url = stack.enter_context(in_namespace(clients, cluster.postgres.admin_url))
            run = uuid.uuid4().hex[:8]
            env = server_env(cluster, database_url, run, request.node.name)
            env.update(extra_env)
            hosts = []
            for name in SERVER_HOSTS:
                data_dir = cluster.log_dir / f"{run}-{name}"
                data_dir.mkdir()
                host_env = {**env, "JUSTSTORAGE_DATA_DIR": str(data_dir)}
                hosts.append(
                    StorageHost(cluster.server_host(name), host_env, data_dir / "server.log")
                )
            stack.callback(stop_all, hosts)
            for host in hosts:
                stack.callback(host.host.link_up)  # a test that cut a link leaves it up
            for host in hosts:
                host.launch()
            wait_all(hosts, clients)
            return Store(cluster, database_url, hosts, env)

        yield factory
