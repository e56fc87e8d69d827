"""`step.run` in depth: what user code sees, how often side effects run, and
how errors, retries, retry-after and size limits end a step or a run."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devserver.testing import wait_for_run
from tests.conformance.conftest import App, Executor, serve_app

MB = 1_000_000


@pytest.fixture(scope="module")
def app(executor: Executor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    served = serve_app("steps", executor, tmp_path_factory.mktemp("steps"))
    yield served
    served.process.stop()


def test_typed_outputs_look_the_same_on_every_replay(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("steps/typed", {"key": k}))
    assert run["status"] == "Completed", run
    assert run["output"] == {
        "at": "2026-01-02T03:04:05.600000+00:00",
        "model": {"sensor": "s1", "at": "2026-01-02T00:00:00Z", "value": 1.5},
    }
    seen = app.marks(k, "seen")
    # Seen after the typed steps on the call that ran `flaky` (which failed),
    # on its retry, and on the final replay: always the same value.
    assert len(seen) == 3
    assert len(set(seen)) == 1
    assert app.marks(k, "flaky") == ["ran", "ran"]


@pytest.mark.parametrize("race", [False, True], ids=["wait", "race"])
def test_parallel_steps_run_once_each(
    app: App, key: Callable[[], str], race: bool
) -> None:
    k = key()
    run = wait_for_run(
        app.executor.url, app.send("steps/parallel", {"key": k, "race": race})
    )
    assert run["status"] == "Completed", run
    assert run["output"] == {"values": [1, 2, 3], "total": 6}
    for step in ("a", "b", "c", "total"):
        assert app.marks(k, step) == ["ran"], step


def test_reused_step_ids_are_distinct_steps(app: App, key: Callable[[], str]) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("steps/repeat", {"key": k}))
    assert run["status"] == "Completed", run
    assert run["output"] == {"loop": [0, 1, 2], "twins": [10, 20]}
    assert app.marks(k, "wait") == ["0", "1", "2"]
    assert sorted(app.marks(k, "twin")) == ["1", "2"]


def test_sleep_and_sleep_until_wait_at_least_as_asked(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("steps/sleeps", {"key": k}))
    assert run["status"] == "Completed", run
    # Two one-second sleeps; the sleep into the past does not wait.
    assert 2.0 <= run["output"]["elapsed"] < 10
    assert app.marks(k, "done") == ["ran"]


def test_send_event_from_a_step_is_sent_once(app: App, key: Callable[[], str]) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("steps/sender", {"key": k}))
    assert run["status"] == "Completed", run
    (sent_id,) = run["output"]
    # The id the step got is the executor's id of the sent event, which
    # started its own run; the replay after the failing step did not resend.
    received = wait_for_run(app.executor.url, sent_id)
    assert received["status"] == "Completed"
    assert received["output"] == "got it"
    assert app.marks(k, "received") == ["ran"]


def test_step_error_is_retried_then_raised_into_the_function(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("steps/failing", {"key": k}))
    assert run["status"] == "Completed", run
    assert run["output"] == "caught ValueError: attempt 3 failed"
    assert len(app.marks(k, "doomed")) == 3  # retries=2


def test_uncaught_step_error_fails_the_run(app: App, key: Callable[[], str]) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("steps/uncaught", {"key": k}))
    assert run["status"] == "Failed", run
    assert run["output"]["name"] == "KeyError"
    assert len(app.marks(k, "doomed")) == 2  # retries=1, none after the step


def test_non_retriable_error_in_a_step_runs_it_once(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    run = wait_for_run(app.executor.url, app.send("steps/fatal", {"key": k}))
    assert run["status"] == "Failed", run
    assert run["output"]["name"] == "NonRetriableError"
    assert run["output"]["message"] == "no point retrying"
    assert app.marks(k, "refuse") == ["ran"]


@pytest.mark.parametrize("kind", ["timedelta", "datetime", "milliseconds"])
def test_retry_after_waits_as_long_as_asked(
    app: App, key: Callable[[], str], kind: str
) -> None:
    k = key()
    event = {"key": k, "kind": kind, "seconds": 1.2, "fail_times": 1}
    run = wait_for_run(app.executor.url, app.send("steps/later", event))
    assert run["status"] == "Completed", run
    first, second = (float(t) for t in app.marks(k, "attempt"))
    # Never earlier than asked, although the executor retries after 0.2 s.
    assert second - first >= 1.2


def test_retry_after_counts_as_an_attempt(app: App, key: Callable[[], str]) -> None:
    k = key()
    event = {"key": k, "kind": "timedelta", "seconds": 1, "fail_times": 5}
    run = wait_for_run(app.executor.url, app.send("steps/later", event))
    assert run["status"] == "Failed", run
    assert run["output"]["name"] == "RetryAfterError"
    assert len(app.marks(k, "attempt")) == 2  # retries=1


def test_step_output_just_under_the_limit_works(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    event = {"key": k, "size": int(3.9 * MB), "count": 1}
    run = wait_for_run(app.executor.url, app.send("steps/big", event))
    assert run["status"] == "Completed", run
    assert run["output"] == {"total": int(3.9 * MB)}


def test_step_output_over_4_mib_fails_the_run_without_retry(
    app: App, key: Callable[[], str]
) -> None:
    k = key()
    event = {"key": k, "size": 5 * MB, "count": 1}
    run = wait_for_run(app.executor.url, app.send("steps/big", event))
    assert run["status"] == "Failed", run
    message = run["output"]["message"]
    assert "blob0" in message
    assert "4 MiB" in message
    assert app.marks(k, "blob0") == ["ran"]


def test_run_state_over_32_mib_fails_once(app: App, key: Callable[[], str]) -> None:
    k = key()
    event = {"key": k, "size": int(3.5 * MB), "count": 10}
    run = wait_for_run(app.executor.url, app.send("steps/big", event), timeout=30)
    assert run["status"] == "Failed", run
    assert "32 MiB" in run["output"]["message"]
    assert "blob9" in run["output"]["message"]
    for i in range(10):
        assert app.marks(k, f"blob{i}") == ["ran"], i


def test_more_than_1000_steps_fails_clearly(app: App, key: Callable[[], str]) -> None:
    event_id = app.send("steps/many", {"key": key(), "count": 1001})
    run = wait_for_run(app.executor.url, event_id)
    assert run["status"] == "Failed", run
    assert "1000 steps" in run["output"]["message"]
