"""Fuzz the real server from its own OpenAPI description (schemathesis).

Every operation gets a bounded, derandomized set of generated requests (valid and
invalid), sent with an admin credential: no answer may be a 500, and every answer
must match the document (status, headers, content type, JSON schema).
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from e2e.support import upload
from juststorage.testing import Server, StartServer

pytestmark = pytest.mark.e2e

EXAMPLES_PER_OPERATION = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(start_server: StartServer) -> Server:
    server = start_server(JUSTSTORAGE_MAX_OBJECT_BYTES="65536")
    # Something to find, so reads and deletes reach more than 404s.
    for key in ("a", "b/c"):
        assert upload(server.client, server.admin_headers(), "a", "a", key).status_code == 201
    return server


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    document = server.client.get("/openapi.json")
    assert document.status_code == 200
    assert "authorization" not in {k.lower() for k in document.request.headers}
    return schemathesis.openapi.from_dict(document.json())


def test_every_answer_matches_the_openapi_document(api_schema: Any, server: Server) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12
    statuses: Counter[int] = Counter()
    for operation, mode in itertools.product(operations, GenerationMode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(
                base_url=server.url, headers=server.admin_headers(), checks=CHECKS, timeout=10
            )
            statuses[response.status_code] += 1

        try:
            fuzz()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing to break: no parameters
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
    assert server.client.get("/health").status_code == 200
    # The run reached the handlers: successes and refusals both happened.
    assert statuses[200] and statuses[201] and statuses[400] and statuses[404], statuses
