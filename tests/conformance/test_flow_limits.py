"""Throttle delays, rate limit and idempotency drop, singleton skips, priority."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devserver.testing import (
    event_runs,
    get_json,
    wait_for_run,
    wait_for_runs,
    wait_until,
)
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("flow_limits", executor, tmp_path_factory.mktemp("flow_limits"))
    yield served
    served.process.stop()


def _skipped(app: App, event_id: str) -> dict[str, Any]:
    """The event's one run, which a limit dropped: status "Skipped", no output.

    The official server records such a run (protocol 6.5, 6.9, 6.11); it ends
    at once, so it never calls the app (the callers check the markers) and,
    having never run, emits no inngest/function.finished.
    """
    url = app.executor.url
    [run] = wait_for_runs(url, event_id)
    assert run["status"] == "Skipped"
    assert run.get("output") is None
    assert get_json(f"{url}/v1/runs/{run['run_id']}")["status"] == "Skipped"
    finished = get_json(f"{url}/v1/events?name=inngest/function.finished&limit=1000")
    assert run["run_id"] not in {e["data"].get("run_id") for e in finished}
    return run


def test_throttle_delays_starts_and_drops_none(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    ids = [app.send("flow_limits/throttled", {"key": k, "n": n}) for n in range(3)]
    runs = [wait_for_run(app.executor.url, i, 20) for i in ids]
    assert [r["status"] for r in runs] == ["Completed"] * 3
    # One start per 2 s: the three starts span at least about 4 s. The
    # executor's own start times are used, not the step bodies' clocks, which
    # a slow first call on a busy machine would bring closer together.
    starts = sorted(
        datetime.datetime.fromisoformat(r["run_started_at"]).timestamp() for r in runs
    )
    assert starts[1] - starts[0] >= 1.8, starts
    assert starts[2] - starts[1] >= 1.8, starts


def test_rate_limit_skips_excess_events_per_key(
    app: App, key: Callable[[], str]
) -> None:
    one, other = key(), key()
    first = app.send("flow_limits/rate", {"key": one, "n": 1})
    excess = app.send("flow_limits/rate", {"key": one, "n": 2})
    other_key = app.send("flow_limits/rate", {"key": other, "n": 3})
    assert wait_for_run(app.executor.url, first)["output"] == 1
    assert wait_for_run(app.executor.url, other_key)["output"] == 3
    _skipped(app, excess)
    assert app.marks(one, "rate") == ["1"]
    assert app.marks(other, "rate") == ["3"]


def test_idempotency_key_starts_one_run(app: App, key: Callable[[], str]) -> None:
    k = key()
    first = app.send("flow_limits/idempotent", {"key": k, "n": 1})
    again = app.send("flow_limits/idempotent", {"key": k, "n": 2})
    assert wait_for_run(app.executor.url, first)["output"] == 1
    _skipped(app, again)
    assert app.marks(k, "idempotent") == ["1"]


def test_event_id_starts_one_run_per_function(app: App, key: Callable[[], str]) -> None:
    k, other = key(), key()
    first = app.send("flow_limits/rate", {"key": k, "n": 1}, event_id=f"id-{k}")
    again = app.send("flow_limits/rate", {"key": other, "n": 2}, event_id=f"id-{k}")
    assert wait_for_run(app.executor.url, first)["output"] == 1
    # Unlike a limit, a repeated event id records no run at all (3.4).
    assert event_runs(app.executor.url, again) == []
    assert app.marks(k, "rate") == ["1"]
    assert app.marks(other, "rate") == []


def test_singleton_skip_while_a_run_is_active(app: App, key: Callable[[], str]) -> None:
    k = key()
    first = app.send("flow_limits/single", {"key": k, "n": 1})
    skipped = app.send("flow_limits/single", {"key": k, "n": 2})
    _skipped(app, skipped)
    assert wait_for_run(app.executor.url, first)["output"] == 1
    later = app.send("flow_limits/single", {"key": k, "n": 3})
    assert wait_for_run(app.executor.url, later)["output"] == 3
    assert set(app.marks(k, "single")) == {"1", "3"}


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
