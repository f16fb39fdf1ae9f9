"""Time to first byte (`just_storage_time_to_first_byte_seconds`) against the real
server: a download read slowly lasts as long as its reader takes, its first byte
does not; the latency alert (deploy/prometheus/alerts.yml) reads GETs from it."""

from __future__ import annotations

import os
import time

import pytest

from juststorage.testing import Server, StartServer

from .prometheus_text import parse_samples, value
from .support import by_key_path, unique_name, upload

pytestmark = pytest.mark.e2e

# More than the socket buffers of both ends and the server's queue of messages hold:
# the app's last sends wait for the reader.
SIZE = 48 * 1024 * 1024
READER_PAUSE_S = 1.5


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    return start_server()


def test_a_slowly_read_download_is_long_but_its_first_byte_is_not(server: Server) -> None:
    auth, client = server.admin_headers(), server.client
    tenant, namespace = unique_name(), unique_name("ns")
    assert upload(client, auth, tenant, namespace, "model", os.urandom(SIZE)).status_code == 201
    received = 0
    # A range: the app streams it (a whole file's bytes may go by the server's
    # pathsend, which leaves the app before they are sent, as S3's do not).
    ranged = {**auth, "Range": f"bytes=0-{SIZE - 2}"}
    with client.stream("GET", by_key_path(namespace, tenant, "model"), headers=ranged) as response:
        assert response.status_code == 206
        for chunk in response.iter_bytes():
            if not received:
                time.sleep(READER_PAUSE_S)  # a slow network, or a slow disk at the client
            received += len(chunk)
    assert received == SIZE - 1
    samples = parse_samples(client.get("/metrics").text)
    labels = {"method": "GET", "namespace": namespace}
    assert value(samples, "just_storage_request_duration_seconds_count", **labels) == 1
    assert value(samples, "just_storage_request_duration_seconds_sum", **labels) >= READER_PAUSE_S
    assert value(samples, "just_storage_time_to_first_byte_seconds_count", **labels) == 1
    assert value(samples, "just_storage_time_to_first_byte_seconds_sum", **labels) < 0.5
    # The upload is timed to its answer too, which comes once its body is in.
    posted = {"method": "POST", "namespace": namespace}
    assert value(samples, "just_storage_time_to_first_byte_seconds_count", **posted) == 1
