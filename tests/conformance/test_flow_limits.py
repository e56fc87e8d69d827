"""Throttle delays, rate limit and idempotency drop, singleton skips, priority."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devserver.testing import event_runs, wait_for_run, wait_until
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("flow_limits", executor, tmp_path_factory.mktemp("flow_limits"))
    yield served
    served.process.stop()


def _not_started(app: App, event_id: str) -> bool:
    """No run, or only a "Skipped" one (the official server's record)."""
    return all(r["status"] == "Skipped" for r in event_runs(app.executor.url, event_id))


def test_throttle_delays_starts_and_drops_none(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    ids = [app.send("flow_limits/throttled", {"key": k, "n": n}) for n in range(3)]
    runs = [wait_for_run(app.executor.url, i, 20) for i in ids]
    assert [r["status"] for r in runs] == ["Completed"] * 3
    starts = sorted(r["output"]["started"] for r in runs)
    # One start per 2 s: the three starts span at least about 4 s.
    assert starts[1] - starts[0] >= 1.8
    assert starts[2] - starts[1] >= 1.8


def test_rate_limit_skips_excess_events_per_key(
    app: App, key: Callable[[], str]
) -> None:
    one, other = key(), key()
    first = app.send("flow_limits/rate", {"key": one, "n": 1})
    excess = app.send("flow_limits/rate", {"key": one, "n": 2})
    other_key = app.send("flow_limits/rate", {"key": other, "n": 3})
    assert wait_for_run(app.executor.url, first)["output"] == 1
    assert wait_for_run(app.executor.url, other_key)["output"] == 3
    assert _not_started(app, excess)


def test_idempotency_key_starts_one_run(app: App, key: Callable[[], str]) -> None:
    k = key()
    first = app.send("flow_limits/idempotent", {"key": k, "n": 1})
    again = app.send("flow_limits/idempotent", {"key": k, "n": 2})
    assert wait_for_run(app.executor.url, first)["output"] == 1
    assert _not_started(app, again)


def test_event_id_starts_one_run_per_function(app: App, key: Callable[[], str]) -> None:
    k = key()
    first = app.send("flow_limits/rate", {"key": k, "n": 1}, event_id=f"id-{k}")
    again = app.send("flow_limits/rate", {"key": key(), "n": 2}, event_id=f"id-{k}")
    assert wait_for_run(app.executor.url, first)["output"] == 1
    assert event_runs(app.executor.url, again) == []


def test_singleton_skip_while_a_run_is_active(app: App, key: Callable[[], str]) -> None:
    k = key()
    first = app.send("flow_limits/single", {"key": k, "n": 1})
    skipped = app.send("flow_limits/single", {"key": k, "n": 2})
    assert _not_started(app, skipped)
    assert wait_for_run(app.executor.url, first)["output"] == 1
    later = app.send("flow_limits/single", {"key": k, "n": 3})
    assert wait_for_run(app.executor.url, later)["output"] == 3


def test_higher_priority_starts_first_among_queued_runs(
    app: App, key: Callable[[], str]
) -> None:
    k = key()

    def send(name: str, prio: int) -> str:
        return app.send(
            "flow_limits/prioritised", {"key": k, "name": name, "prio": prio}
        )

    ids = [send("blocker", 0)]
    wait_until(
        lambda: app.marks(k, "order") or None, 10, "the blocker to hold the slot"
    )
    ids += [send("low", 0), send("high", 60)]
    for event_id in ids:
        assert wait_for_run(app.executor.url, event_id, 20)["status"] == "Completed"
    assert app.marks(k, "order") == ["blocker", "high", "low"]
