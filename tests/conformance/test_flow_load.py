"""500 runs of a two-step function at once: all complete, none duplicated."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from devserver.testing import ENDED, wait_until
from tests.conformance.conftest import App, Executor, serve_app

RUNS = 500


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("flow_load", executor, tmp_path_factory.mktemp("flow_load"))
    yield served
    served.process.stop()


def test_five_hundred_runs_lose_none(app: App, key: Callable[[], str]) -> None:
    batch = key()
    events = [
        {"name": "flow_load/go", "data": {"batch": batch, "n": n}} for n in range(RUNS)
    ]
    response = httpx.post(f"{app.executor.url}/e/test", json=events, timeout=30)
    response.raise_for_status()
    ids = response.json()["ids"]
    assert len(ids) == RUNS
    wait_until(
        lambda: len(app.marks(batch, "two")) >= RUNS,
        60,
        "all second steps",
        interval=0.5,
    )
    # One keep-alive client: 500 lookups through fresh connections would
    # take longer than the runs themselves.
    with httpx.Client(base_url=app.executor.url, timeout=10) as client:

        def runs_of(event_id: str) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = client.get(
                f"/v1/events/{event_id}/runs"
            ).json()["data"]
            return found

        def final_runs() -> list[list[dict[str, Any]]] | None:
            runs = [runs_of(i) for i in ids]
            ended = all(r and r[0]["status"] in ENDED for r in runs)
            return runs if ended else None

        runs = wait_until(final_runs, 30, "every run to end", interval=0.5)
    assert all(len(r) == 1 for r in runs)
    assert all(r[0]["status"] == "Completed" for r in runs)
    assert sorted(r[0]["output"]["n"] for r in runs) == list(range(RUNS))
    # Every step body ran exactly once per run.
    for step in ("one", "two"):
        counts = collections.Counter(app.marks(batch, step))
        assert sorted(counts) == sorted(str(n) for n in range(RUNS))
        assert set(counts.values()) == {1}
