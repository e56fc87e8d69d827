"""Property-based: schemathesis against the backend's own OpenAPI document.

Every operation, with a valid token and without one, must answer no 5xx
and nothing its documented responses (status, content type, body schema)
do not allow. The backend runs with no executor, so no job ever runs and a
generated URL is never fetched: nothing leaves loopback.

`/api/inngest` is left out: it is the Inngest SDK's protocol endpoint,
which answers executors by the SDK's own contract, not this API's.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from backend.app import create_app
from digest import stack

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
BOUNDED = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


# The operations, from the app's own document; the test loads that document
# again from the running backend, which is what it checks.
OPERATIONS = [
    (method.upper(), path)
    for path, item in create_app().openapi()["paths"].items()
    for method in item
    if path != "/api/inngest"
]


@pytest.mark.parametrize("with_token", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_operation_keeps_to_its_schema(
    lone_backend: stack.Service, method: str, path: str, with_token: bool
) -> None:
    loaded = schemathesis.openapi.from_url(f"{lone_backend.url}/openapi.json")
    operation = loaded[path][method]
    headers = {}
    if with_token:
        token = stack.dev_token(lone_backend.url, "schemathesis")
        headers = {"Authorization": f"Bearer {token}"}

    # With no executor, /readyz rightly answers its documented 503.
    checks = CHECKS[1:] if path == "/readyz" else CHECKS

    @BOUNDED
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        if not with_token and case.headers:
            case.headers.pop("Authorization", None)
        answer = case.call_and_validate(
            base_url=lone_backend.url, headers=headers, checks=checks, timeout=30
        )
        if path == "/readyz":
            assert answer.status_code == 503

    check()
