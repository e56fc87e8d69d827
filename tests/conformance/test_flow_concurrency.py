"""Concurrency: calls in flight per function, per key and per env-scoped key."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from devserver.testing import start_app, wait_for_run, wait_until
from tests.conformance.conftest import HERE, App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app(
        "flow_concurrency", executor, tmp_path_factory.mktemp("flow_concurrency")
    )
    yield served
    served.process.stop()


def _max_overlap(spans: list[str]) -> int:
    """The most calls that were in flight at the same moment."""
    edges: list[tuple[float, int]] = []
    for line in spans:
        start, end = map(float, line.split())
        edges += [(start, 1), (end, -1)]
    current = peak = 0
    for _, step in sorted(edges):  # an end sorts before a start at a tie
        current += step
        peak = max(peak, current)
    return peak


def _all_completed(app: App, ids: list[str]) -> None:
    for event_id in ids:
        assert wait_for_run(app.executor.url, event_id, 30)["status"] == "Completed"


def test_limit_counts_calls_in_flight(app: App, key: Callable[[], str]) -> None:
    group = key()
    ids = [app.send("flow_concurrency/limited", {"group": group}) for _ in range(6)]
    _all_completed(app, ids)
    assert _max_overlap(app.marks(group, "span")) == 2


def test_keyed_limit_is_per_key_value(app: App, key: Callable[[], str]) -> None:
    group = key()
    ids = [
        app.send("flow_concurrency/keyed", {"group": group, "user": user})
        for user in ("ann", "bob") * 3
    ]
    _all_completed(app, ids)
    ann, bob = app.marks(f"{group}-ann", "span"), app.marks(f"{group}-bob", "span")
    assert len(ann) == len(bob) == 3
    assert _max_overlap(ann) == _max_overlap(bob) == 1
    # Different users did run side by side.
    assert _max_overlap(ann + bob) == 2


def test_env_scope_shares_the_limit_across_functions(
    app: App, key: Callable[[], str]
) -> None:
    group = key()
    ids = [
        app.send(f"flow_concurrency/{fn}", {"group": group})
        for fn in ("env-a", "env-b") * 2
    ]
    _all_completed(app, ids)
    assert len(app.marks(group, "span")) == 4
    assert _max_overlap(app.marks(group, "span")) == 1


def test_sleeping_runs_do_not_hold_a_slot(app: App, key: Callable[[], str]) -> None:
    group = key()
    first = app.send("flow_concurrency/sleeper", {"group": group, "name": "a"})
    wait_until(lambda: app.marks(group, "a-before") or None, 10, "run a's first step")
    second = app.send("flow_concurrency/sleeper", {"group": group, "name": "b"})
    _all_completed(app, [first, second])
    # b got the slot while a slept 3 s: it started before a woke up.
    assert float(app.marks(group, "b-before")[0]) < float(
        app.marks(group, "a-after")[0]
    )


def test_slot_of_a_run_whose_app_died_mid_step_is_released(
    app: App, key: Callable[[], str]
) -> None:
    group = key()
    stuck = app.send(
        "flow_concurrency/fragile", {"group": group, "name": "a", "hang": True}
    )
    wait_until(lambda: app.marks(group, "a-attempt") or None, 10, "the hanging step")
    queued = app.send("flow_concurrency/fragile", {"group": group, "name": "b"})
    app.process.kill()
    app.process = start_app(
        "apps.flow_concurrency:app",
        cwd=HERE,
        log_dir=app.markers.parent,
        port=app.process.port,
        env={
            "EXECUTOR_URL": app.executor.url,
            "MARKER_DIR": str(app.markers),
            "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        },
    )
    # The step is retried on the new app, and the queued run gets the slot.
    assert wait_for_run(app.executor.url, stuck, 30)["output"] == "a"
    assert wait_for_run(app.executor.url, queued, 30)["output"] == "b"
    assert len(app.marks(group, "a-attempt")) >= 2
    assert app.marks(group, "b-attempt") == ["ran"]
