"""The executor killed with SIGKILL mid-run resumes without re-running steps."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from devserver_stack import Stack

from devserver.testing import run_steps, send_event, wait_for_run, wait_until

NewKey = Callable[[], str]


def test_kill_during_a_slow_step_then_restart(own_stack: Stack, key: NewKey) -> None:
    k = key()
    event_id = send_event(own_stack.url, "test/slow", {"key": k, "pause": 1.5})
    wait_until(lambda: own_stack.runs_of(k, "b") == 1, 20, "step b to start")
    own_stack.executor.kill()
    own_stack.restart_executor()

    run = wait_for_run(own_stack.url, event_id)
    assert run["status"] == "Completed"
    assert run["output"] == ["a", "b", "c"]
    # Step a was memoised before the crash and never ran again; step b was
    # in flight, so it may run again (at least once), step c ran once.
    assert own_stack.runs_of(k, "a") == 1
    assert own_stack.runs_of(k, "b") >= 1
    assert own_stack.runs_of(k, "c") == 1
    steps = run_steps(own_stack.url, run["run_id"])
    assert [s["name"] for s in steps] == ["a", "b", "c"]


def test_kill_while_sleeping_between_steps_then_restart(
    own_stack: Stack, key: NewKey
) -> None:
    k = key()
    event_id = send_event(own_stack.url, "test/sleeper", {"key": k, "seconds": 2})
    wait_until(lambda: own_stack.runs_of(k, "before") == 1, 20, "first step")
    own_stack.executor.kill()
    own_stack.restart_executor()

    run = wait_for_run(own_stack.url, event_id)
    assert run["status"] == "Completed"
    assert run["output"]["after"] - run["output"]["before"] >= 2.0
    assert own_stack.runs_of(k, "before") == 1
    assert own_stack.runs_of(k, "after") == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_stop_cleanly(own_stack: Stack, sig: signal.Signals) -> None:
    executor = own_stack.executor
    executor.process.send_signal(sig)
    code = executor.process.wait(timeout=15)
    # uvicorn shuts down gracefully, then exits by the signal it received.
    assert code in (0, -sig, 130)
    assert "executor stopped" in executor.log()
    assert "Traceback" not in executor.log()
