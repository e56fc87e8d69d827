"""Liveness and readiness of a backend whose executor is down."""

from __future__ import annotations

import httpx

from digest import stack
from tests.databases import ON_BOTH_DATABASES

pytestmark = ON_BOTH_DATABASES("lone_backend")


def test_alive_but_not_ready_without_executor(lone_backend: stack.Service) -> None:
    assert httpx.get(f"{lone_backend.url}/healthz", timeout=10).json() == {
        "status": "ok"
    }
    answer = httpx.get(f"{lone_backend.url}/readyz", timeout=10)
    assert answer.status_code == 503
    checks = answer.json()["checks"]
    assert checks["database"] == "ok"
    assert checks["executor"].startswith("unreachable")
