"""Crashes and stalls: the app dying inside a step, a step blocking its app,
the executor killed with runs in flight, and a locked database at start-up.

Every test starts its own executor (it restarts, kills or configures it).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devserver.testing import event_runs, start_app, wait_for_run, wait_until
from tests.conformance.conftest import HERE, App, Executor, serve_app


class Supervisor:
    """Restarts an app on its port whenever its process exits."""

    def __init__(self, app: App, root: Path) -> None:
        self.app = app
        self.root = root
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            if self.app.process.alive():
                continue
            self.restarts += 1
            try:
                self.app.process = start_app(
                    "apps.resilience:app",
                    cwd=HERE,
                    log_dir=self.root,
                    port=self.app.process.port,
                    env={
                        "EXECUTOR_URL": self.app.executor.url,
                        "MARKER_DIR": str(self.app.markers),
                        "PYTHONPATH": str(HERE),
                    },
                )
            except RuntimeError:
                # The executor reached the new app, and a step killed it,
                # before the readiness probe did: restart it again, as a
                # process supervisor would.
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.app.process.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., App]]:
    apps: list[App] = []

    def serve(executor: Executor, module: str = "resilience") -> App:
        apps.append(serve_app(module, executor, tmp_path / module))
        return apps[-1]

    yield serve
    for item in apps:
        item.process.stop()


def _run_id(app: App, event_id: str) -> str:
    runs = wait_until(lambda: event_runs(app.executor.url, event_id) or None, 10, "run")
    return str(runs[0]["run_id"])


def test_app_dying_in_a_step_costs_one_attempt(
    own_executor: Callable[..., Executor],
    served: Callable[..., App],
    key: Callable[[], str],
    tmp_path: Path,
) -> None:
    # The retry waits for the supervisor to bring the app back.
    app = served(own_executor(retry_interval=2.5))
    supervisor = Supervisor(app, tmp_path / "respawned")
    try:
        k = key()
        run = wait_for_run(
            app.executor.url, app.send("resilience/crash", {"key": k, "mode": "once"})
        )
        assert run["status"] == "Completed", run
        assert run["output"] == "survived"
        assert app.marks(k, "boom") == ["ran", "ran"]
        assert supervisor.restarts == 1
    finally:
        supervisor.stop()


def test_step_killing_the_app_every_time_fails_after_its_retries(
    own_executor: Callable[..., Executor],
    served: Callable[..., App],
    key: Callable[[], str],
    tmp_path: Path,
) -> None:
    app = served(own_executor(retry_interval=0.3))
    supervisor = Supervisor(app, tmp_path / "respawned")
    try:
        k = key()
        event_id = app.send("resilience/crash", {"key": k, "mode": "always"})
        run = wait_for_run(app.executor.url, event_id, timeout=25)
        assert run["status"] == "Failed", run
        # Three attempts (retries=2); some may find the app still restarting.
        assert 1 <= len(app.marks(k, "boom")) <= 3
        time.sleep(2)
        assert len(app.marks(k, "boom")) <= 3  # no crash loop
        assert httpx.get(f"{app.executor.url}/health").status_code == 200
    finally:
        supervisor.stop()


def test_failed_step_is_retried_soon_and_logged_once(
    own_executor: Callable[..., Executor],
    served: Callable[..., App],
    key: Callable[[], str],
) -> None:
    executor = own_executor(retry_interval=0.1)
    app = served(executor)
    k = key()
    run = wait_for_run(executor.url, app.send("resilience/flaky", {"key": k}))
    assert run["status"] == "Completed", run
    first, second = (float(t) for t in app.marks(k, "wobbly"))
    assert second - first < 1.0
    # The cause stays on the run ...
    assert run["last_error"]["name"] == "ConnectionResetError"
    assert "Traceback" in run["last_error"]["stack"]
    # ... and one log line names run, function, step, attempt, type, traceback.
    assert executor.process is not None
    lines = [
        line
        for line in executor.process.log().splitlines()
        if "attempt failed" in line and run["run_id"] in line
    ]
    assert len(lines) == 1, lines
    assert re.search(
        r"function=resilience-flaky step=wobbly attempt=1/4 "
        r"error=ConnectionResetError .*traceback=Traceback",
        lines[0],
    ), lines[0]


def test_blocking_step_does_not_stall_other_runs(
    own_executor: Callable[..., Executor],
    served: Callable[..., App],
    key: Callable[[], str],
) -> None:
    executor = own_executor("--slow-call-warning", "1")
    blocking = served(executor)
    peer = served(executor, "resilience_peer")
    k = key()
    slow_event = blocking.send("resilience/blocker", {"key": k, "seconds": 4})
    wait_until(lambda: blocking.marks(k, "hog") or None, 10, "the step to block")
    quick = wait_for_run(executor.url, peer.send("resilience/quick", {}), timeout=3)
    assert quick["output"] == "quick"
    assert event_runs(executor.url, slow_event)[0]["status"] == "Running"
    run_id = _run_id(blocking, slow_event)
    assert executor.process is not None
    wait_until(
        lambda: (
            f"slow call: run={run_id} function=resilience-blocker"
            in executor.process.log()
        ),  # type: ignore[union-attr]
        5,
        "the slow call warning",
    )
    assert wait_for_run(executor.url, slow_event)["output"] == "done hogging"


def _start_phases(
    app: App, phases: list[str], copies: int
) -> list[tuple[str, str, str]]:
    """Start `copies` runs of each phase; (phase, key, event id) for each."""
    started = []
    for phase in phases:
        for _ in range(copies):
            k = f"{phase}-{time.monotonic_ns()}"
            event_id = app.send("resilience/durable", {"key": k, "phase": phase})
            started.append((phase, k, event_id))
    for phase, k, _ in started:
        wait_until(lambda k=k: app.marks(k, "begin") or None, 10, f"{phase} begins")
        if phase == "mid-step":
            wait_until(lambda k=k: app.marks(k, "slow") or None, 10, "a slow step")
    time.sleep(0.5)  # sleeps, waits and the invokes are registered
    return started


def test_runs_resume_after_the_executor_is_killed(
    own_executor: Callable[..., Executor], served: Callable[..., App]
) -> None:
    """20 runs in flight (mid-step, sleeping, waiting, waiting on an invoke,
    sleeping for an hour) survive SIGKILL: after the restart each finishes
    once or is cancelled, and no sleep or step fires twice."""
    executor = own_executor()
    app = served(executor)
    phases = ["mid-step", "sleep", "wait", "invoke", "forever"]
    started = _start_phases(app, phases, copies=4)
    assert executor.process is not None
    executor.process.kill()
    executor.restart()
    for phase, k, _ in started:
        if phase == "wait":
            app.send("resilience/resume", {"key": k, "note": "go on"})
        elif phase == "forever":
            run_id = _run_id(app, _event_of(started, k))
            answer = httpx.delete(f"{executor.url}/v1/runs/{run_id}")
            assert answer.status_code == 200
    expected = {
        "mid-step": "slow done",
        "sleep": "slept",
        "wait": "go on",
        "invoke": 15,
    }
    for phase, k, event_id in started:
        run = wait_for_run(executor.url, event_id, timeout=30)
        if phase == "forever":
            assert run["status"] == "Cancelled"
            assert app.marks(k, "end") == []
            continue
        assert (run["status"], run["output"]) == ("Completed", expected[phase]), phase
        assert app.marks(k, "end") == ["ran"], phase


def _event_of(started: list[tuple[str, str, str]], key: str) -> str:
    return next(event_id for _, k, event_id in started if k == key)


def test_recovery_waits_out_a_locked_database(
    own_executor: Callable[..., Executor], served: Callable[..., App]
) -> None:
    executor = own_executor()
    app = served(executor)
    started = _start_phases(app, ["sleep", "wait"], copies=1)
    assert executor.process is not None
    assert executor.data_dir is not None
    executor.process.kill()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(2)\n"
            "db.execute('COMMIT')\n",
            str(executor.data_dir / "executor.db"),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"locked"
        executor.restart()
    finally:
        holder.wait(timeout=10)
    outputs = {"sleep": "slept", "wait": "unlocked"}
    for phase, k, _ in started:
        if phase == "wait":
            app.send("resilience/resume", {"key": k, "note": "unlocked"})
    for phase, k, event_id in started:
        run = wait_for_run(executor.url, event_id)
        assert (run["status"], run["output"]) == ("Completed", outputs[phase]), phase
        assert app.marks(k, "end") == ["ran"], phase
