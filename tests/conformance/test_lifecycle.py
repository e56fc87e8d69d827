"""Lifecycle events (`function.failed`, `.finished`, `.cancelled`), failure
handlers, cancelling runs (REST and `cancel` events) and run timeouts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from devserver.testing import event_runs, wait_for_run, wait_until
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("lifecycle", executor, tmp_path_factory.mktemp("lifecycle"))
    yield served
    served.process.stop()


def _watched(app: App, k: str, count: int) -> list[list[str]]:
    lines = wait_until(
        lambda: m if len(m := app.marks(k, "watched")) >= count else None,
        10,
        f"{count} lifecycle event(s)",
    )
    return sorted(line.split("|") for line in lines)


def test_failed_run_runs_its_failure_handler(app: App, key: Callable[[], str]) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("lifecycle/breaks", {"key": k}))
    assert run["status"] == "Failed", run
    assert len(app.marks(k, "breaks")) == 2  # retries=1
    (handled,) = wait_until(
        lambda: app.marks(k, "on-failure") or None, 10, "the failure handler"
    )
    assert handled.split("|") == [
        "inngest/function.failed",
        run["run_id"],
        "lifecycle/breaks",
        "ValueError",
        "broken on purpose",
    ]
    (finished,) = _watched(app, k, 1)
    assert finished[:4] == [
        "inngest/function.finished",
        "lifecycle-breaks",
        run["run_id"],
        "Failed",
    ]


def test_finished_event_carries_the_result_once(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("lifecycle/works", {"key": k}))
    assert run["output"] == {"answer": 42}
    (finished,) = _watched(app, k, 1)
    assert finished == [
        "inngest/function.finished",
        "lifecycle-works",
        run["run_id"],
        "Completed",
        "{'answer': 42}",
    ]
    # The watcher's own runs, started by lifecycle events, emit nothing more.
    time.sleep(1)
    assert len(app.marks(k, "watched")) == 1


@pytest.mark.parametrize("how", ["sleep", "wait"])
def test_cancel_through_the_api_while_sleeping_or_waiting(
    app: App, key: Callable[[], str], how: str
) -> None:
    k = key()
    event_id = app.send("lifecycle/patient", {"key": k, "how": how})
    wait_until(lambda: app.marks(k, "begin") or None, 10, "the run to begin")
    time.sleep(0.5)  # now sleeping or waiting
    (running,) = event_runs(app.executor.url, event_id)
    url = f"{app.executor.url}/v1/runs/{running['run_id']}"
    assert httpx.delete(url).status_code == 200
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Cancelled"
    watched = _watched(app, k, 2)
    assert [w[0] for w in watched] == [
        "inngest/function.cancelled",
        "inngest/function.finished",
    ]
    assert {w[3] for w in watched} == {"Cancelled"}
    time.sleep(0.5)
    assert app.marks(k, "end") == []
    assert app.marks(k, "on-failure") == []


def test_cancel_of_an_unknown_run_is_404(app: App) -> None:
    url = f"{app.executor.url}/v1/runs/01J00000000000000000000000"
    assert httpx.delete(url).status_code == 404


def test_cancel_event_with_matching_if_cancels(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    event_id = app.send("lifecycle/patient", {"key": k})
    wait_until(lambda: app.marks(k, "begin") or None, 10, "the run to begin")
    app.send("lifecycle/stop", {"key": "someone-else"})
    time.sleep(0.5)
    assert event_runs(app.executor.url, event_id)[0]["status"] == "Running"
    app.send("lifecycle/stop", {"key": k})
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Cancelled"


def test_cancel_listener_stops_after_its_timeout(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    event_id = app.send("lifecycle/patient", {"key": k, "sleep": 4})
    wait_until(lambda: app.marks(k, "begin") or None, 10, "the run to begin")
    time.sleep(3.2)  # the listener lives 3 s
    app.send("lifecycle/stop", {"key": k})
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Completed"
    assert app.marks(k, "end") == ["ran"]


def test_finish_timeout_cancels_a_run_still_going(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("lifecycle/deadline", {"key": k}))
    assert run["status"] == "Cancelled"
    time.sleep(2)  # past the end of the 3 s nap
    assert app.marks(k, "after-nap") == []


def test_start_timeout_cancels_a_run_that_never_started(
    app: App, key: Callable[[], str]
) -> None:
    first, second = key(), key()
    blocker = app.send("lifecycle/blocked-start", {"key": first, "hold": 3})
    wait_until(lambda: app.marks(first, "hold") or None, 10, "the first run to hold")
    late = app.send("lifecycle/blocked-start", {"key": second})
    assert wait_for_run(app.executor.url, late)["status"] == "Cancelled"
    assert app.marks(second, "hold") == []
    assert wait_for_run(app.executor.url, blocker)["status"] == "Completed"
