"""`step.wait_for_event` (match, `if`, timeout, ordering) and `step.invoke`
(result, error, unknown function, timeout)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from devserver.testing import wait_for_run, wait_until
from tests.conformance.conftest import App, Executor, serve_app


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("waits", executor, tmp_path_factory.mktemp("waits"))
    yield served
    served.process.stop()


def _start(app: App, k: str, timeout: float) -> str:
    event_id = app.send("waits/start", {"key": k, "id": k, "timeout": timeout})
    wait_until(lambda: app.marks(k, "waiting") or None, 10, "the run to reach its wait")
    return event_id


def test_wait_resumes_within_a_second_with_the_matching_event(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    event_id = _start(app, k, 30)
    # Let the wait be registered, then send a non-matching event first.
    time.sleep(1.0)
    app.send("waits/approve", {"id": "someone-else"})
    sent_at = time.time()
    app.send("waits/approve", {"id": k, "by": "alice"})
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Completed", run
    assert run["output"]["approved"] == {"id": k, "by": "alice"}
    assert run["output"]["name"] == "waits/approve"
    assert run["output"]["at"] - sent_at < 1.0


def test_wait_times_out_with_null(app: App, key: Callable[[], str]) -> None:
    k = key()
    event_id = _start(app, k, 1)
    app.send("waits/approve", {"id": "not-" + k})
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Completed", run
    assert run["output"]["approved"] is None


def test_event_sent_before_the_wait_does_not_match(
    app: App, key: Callable[[], str]
) -> None:
    # The matching event arrives before the run even starts; as on the
    # official dev server, only events received after the wait began count.
    k = key()
    app.send("waits/approve", {"id": k})
    event_id = app.send("waits/start", {"key": k, "id": k, "timeout": 2})
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Completed", run
    assert run["output"]["approved"] is None


def test_invoke_returns_the_child_result(app: App, key: Callable[[], str]) -> None:
    run = wait_for_run(
        app.executor.url, app.send("waits/parent", {"key": key(), "n": 21})
    )
    assert run["status"] == "Completed", run
    assert run["output"] == {"doubled": 42, "name": "inngest/function.invoked"}


def test_invoke_raises_the_child_error_in_the_parent(
    app: App, key: Callable[[], str]
) -> None:
    run = wait_for_run(
        app.executor.url, app.send("waits/parent", {"key": key(), "mode": "fail"})
    )
    assert run["status"] == "Completed", run
    assert run["output"] == {"error": "NonRetriableError", "message": "child refuses"}


def test_invoke_of_an_unknown_function_fails_the_step(
    app: App, key: Callable[[], str]
) -> None:
    run = wait_for_run(
        app.executor.url, app.send("waits/parent", {"key": key(), "unknown": True})
    )
    assert run["status"] == "Completed", run
    assert "no-such-function" in run["output"]["message"]


def test_invoke_times_out(app: App, key: Callable[[], str]) -> None:
    event = {"key": key(), "mode": "slow", "timeout": 1}
    run = wait_for_run(app.executor.url, app.send("waits/parent", event))
    assert run["status"] == "Completed", run
    assert run["output"] == {
        "error": "InngestInvokeTimeoutError",
        "message": "Timed out waiting for invoked function to complete",
    }
