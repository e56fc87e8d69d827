"""Runs driven end to end: the official SDK app on the executor."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from devserver_stack import APP_ID, Stack

from devserver.testing import (
    get_json,
    run_steps,
    send_event,
    wait_for_run,
    wait_for_runs,
    wait_until,
)

NewKey = Callable[[], str]


def test_multi_step_function_completes_with_output(
    shared_stack: Stack, key: NewKey
) -> None:
    k = key()
    event_id = send_event(shared_stack.url, "test/multi", {"key": k})
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Completed"
    assert run["output"] == {"a": 1, "b": 11, "c": {"data": 5}}
    assert run["function_slug"] == f"{APP_ID}-multi"
    for step in ("first", "second", "third"):
        assert shared_stack.runs_of(k, step) == 1
    steps = run_steps(shared_stack.url, run["run_id"])
    assert [s["name"] for s in steps] == ["first", "second", "third"]
    assert all(s["status"] == "Completed" and s["attempts"] == 1 for s in steps)
    assert [s["output"] for s in steps] == [1, 11, {"data": 5}]


def test_parallel_steps_are_separate_steps(shared_stack: Stack, key: NewKey) -> None:
    for race in (False, True):
        k = key()
        event_id = send_event(
            shared_stack.url, "test/parallel", {"key": k, "race": race}
        )
        run = wait_for_run(shared_stack.url, event_id)
        assert run["status"] == "Completed", run
        assert run["output"] == {"squares": [0, 1, 4], "total": 5}
        steps = run_steps(shared_stack.url, run["run_id"])
        names = [s["name"] for s in steps]
        assert sorted(names[:3]) == ["chunk-0", "chunk-1", "chunk-2"]
        assert names[3:] == ["total"]
        assert len({s["id"] for s in steps}) == 4
        assert all(s["status"] == "Completed" for s in steps)
        for i in range(3):
            assert shared_stack.runs_of(k, f"chunk{i}") == 1
        assert shared_stack.runs_of(k, "total") == 1


def test_step_fails_twice_then_succeeds(shared_stack: Stack, key: NewKey) -> None:
    k = key()
    event_id = send_event(shared_stack.url, "test/flaky", {"key": k})
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Completed"
    assert run["output"] == "ok after 3"
    assert shared_stack.runs_of(k, "shaky") == 3
    # The function body failed once at function level and was retried; the
    # memoised step did not run again.
    assert shared_stack.runs_of(k, "body") == 2
    (step,) = run_steps(shared_stack.url, run["run_id"])
    assert step["status"] == "Completed"
    assert step["attempts"] == 3


def test_exhausted_retries_fail_the_run_and_run_on_failure(
    shared_stack: Stack, key: NewKey
) -> None:
    k = key()
    event_id = send_event(shared_stack.url, "test/doomed", {"key": k})
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Failed"
    assert run["output"]["name"] == "ValueError"
    assert run["output"]["message"] == "hopeless attempt 3"
    # retries=2 means three attempts.
    assert shared_stack.runs_of(k, "hopeless") == 3
    (step,) = run_steps(shared_stack.url, run["run_id"])
    assert step["status"] == "Failed"
    assert step["error"]["message"] == "hopeless attempt 3"

    # The failure handler is triggered by inngest/function.failed.
    wait_until(lambda: shared_stack.runs_of(k, "on_failure") >= 1, 20, "on_failure")
    failure_lines = (shared_stack.markers / f"{k}.on_failure").read_text()
    assert failure_lines == "ValueError: hopeless attempt 3\n"
    failed_event = get_json(
        f"{shared_stack.url}/v1/events?name=inngest/function.failed"
    )
    mine = [e for e in failed_event if e["id"] == run["run_id"]]
    assert len(mine) == 1
    assert mine[0]["data"]["function_id"] == f"{APP_ID}-doomed"
    (handler_run,) = wait_for_runs(shared_stack.url, mine[0]["internal_id"])
    assert handler_run["status"] == "Completed"
    assert handler_run["function_slug"] == f"{APP_ID}-doomed-failure"


def test_non_retriable_error_fails_at_once(shared_stack: Stack, key: NewKey) -> None:
    k = key()
    event_id = send_event(shared_stack.url, "test/fatal", {"key": k})
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Failed"
    assert run["output"]["name"] == "NonRetriableError"
    assert run["output"]["message"] == "no point in retrying"
    assert shared_stack.runs_of(k, "refuse") == 1


def test_a_refusal_is_one_log_line_without_a_traceback(
    shared_stack: Stack, key: NewKey
) -> None:
    # NonRetriableError is the app refusing on purpose (Digest's functions
    # raise it when a model answers 401): its message says why; the SDK's
    # traceback stays on the run, out of the executor's log.
    event_id = send_event(shared_stack.url, "test/fatal", {"key": key()})
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Failed"
    assert "Traceback" in run["output"]["stack"]
    lines = [
        line
        for line in shared_stack.executor.log().splitlines()
        if run["run_id"] in line and "WARNING" in line
    ]
    (attempt,) = [line for line in lines if "attempt failed" in line]
    assert "error=NonRetriableError message='no point in retrying'" in attempt
    assert attempt.endswith("traceback=-"), attempt
    assert not any("Traceback" in line for line in lines), lines


def test_sleep_resumes_after_the_wake_time(shared_stack: Stack, key: NewKey) -> None:
    k = key()
    event_id = send_event(shared_stack.url, "test/sleeper", {"key": k, "seconds": 1})
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Completed"
    assert run["output"]["after"] - run["output"]["before"] >= 1.0
    assert shared_stack.runs_of(k, "before") == 1
    assert shared_stack.runs_of(k, "after") == 1
    steps = run_steps(shared_stack.url, run["run_id"])
    assert [(s["name"], s["op"]) for s in steps] == [
        ("before", "StepRun"),
        ("nap", "Sleep"),
        ("after", "StepRun"),
    ]


def test_wait_for_event_times_out_with_null(shared_stack: Stack, key: NewKey) -> None:
    event_id = send_event(shared_stack.url, "test/waits", {"key": key()})
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Completed"
    assert run["output"] == "timed out"


def test_user_event_id_starts_one_run_per_function(
    shared_stack: Stack, key: NewKey
) -> None:
    k = key()
    first = send_event(shared_stack.url, "test/count", {"key": k}, event_id=f"dup-{k}")
    second = send_event(shared_stack.url, "test/count", {"key": k}, event_id=f"dup-{k}")
    assert first != second
    (run,) = wait_for_runs(shared_stack.url, first)
    assert run["status"] == "Completed"
    # The duplicate is stored but starts nothing.
    assert get_json(f"{shared_stack.url}/v1/events/{second}")["id"] == f"dup-{k}"
    assert get_json(f"{shared_stack.url}/v1/events/{second}/runs") == []
    # Without a user id every send is distinct.
    third = send_event(shared_stack.url, "test/count", {"key": k})
    wait_for_runs(shared_stack.url, third)
    assert shared_stack.runs_of(k, "count") == 2


def test_cancel_a_sleeping_run(shared_stack: Stack, key: NewKey) -> None:
    k = key()
    event_id = send_event(shared_stack.url, "test/sleeper", {"key": k, "seconds": 60})
    wait_until(lambda: shared_stack.runs_of(k, "before") == 1, 20, "first step")
    run_id = wait_until(
        lambda: next(
            iter(get_json(f"{shared_stack.url}/v1/events/{event_id}/runs")), None
        ),
        20,
        "run",
    )["run_id"]
    response = httpx.delete(f"{shared_stack.url}/v1/runs/{run_id}")
    assert response.status_code == 200
    assert response.headers["x-inngest-server-kind"] == "dev"
    run = wait_for_run(shared_stack.url, event_id)
    assert run["status"] == "Cancelled"
    assert shared_stack.runs_of(k, "after") == 0
